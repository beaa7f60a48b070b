"""The caption tokeniser: `shapes` captions as fixed-length word ids.

`shapes` captions come from a closed grammar (`data/shapes.py: _caption`):

    a red circle
    a red circle left of a blue square
    a red circle above a blue square and a green star

so the vocabulary is fixed and written down here, not learned from data: an
id never depends on which captions a run happened to see, and text-to-image,
CLIP and captioning models share one table. Words outside it (a user's
prompt, "a photo of a circle") map to `<unk>`, never to an error.

A caption becomes `<bos> w_1 ... w_n <eos>` followed by `<pad>` (id 0) up to
`length`. An all-padding row is the *null caption*: classifier-free guidance
trains and samples with it, the way class-conditional models use a null
class.

    ids = encode("a red circle left of a blue square")       # int32 [CAPTION_LENGTH]
    decode(ids)                                             # the same text
    caption_tokens(features)                                # the pipeline attribute
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

from vision_jax.data.shapes import COLOR_NAMES, SHAPES

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
# The grammar's function words, then the prompt words of zero-shot classification.
FUNCTION_WORDS = ("a", "and", "left", "right", "of", "above", "below", "photo")
VOCAB = SPECIALS + FUNCTION_WORDS + COLOR_NAMES + SHAPES
INDEX = {word: i for i, word in enumerate(VOCAB)}
VOCAB_SIZE = len(VOCAB)


def words_needed(max_objects: int) -> int:
    """Words in the longest caption of a scene with up to `max_objects` objects:
    "a C S" + "left of" + "a C S" + " and a C S" per further object."""
    if max_objects < 1:
        raise ValueError(f"max_objects={max_objects} must be >= 1")
    return 3 if max_objects == 1 else 8 + 4 * (max_objects - 2)


# Room for scenes of up to 8 objects (the detection variant's maximum): 34 ids.
CAPTION_LENGTH = words_needed(8) + 2


def split(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def encode(text: str, length: int = CAPTION_LENGTH) -> np.ndarray:
    """int32 [length]: <bos> words <eos> <pad>...; words outside VOCAB -> <unk>."""
    words = split(text)
    if len(words) + 2 > length:
        raise ValueError(f"caption of {len(words)} words does not fit length={length} "
                         f"(with <bos> and <eos>): {text!r}")
    ids = np.full((length,), PAD, np.int32)
    ids[0] = BOS
    ids[1:len(words) + 1] = [INDEX.get(w, UNK) for w in words]
    ids[len(words) + 1] = EOS
    return ids


def encode_batch(texts: Iterable[str], length: int = CAPTION_LENGTH) -> np.ndarray:
    """int32 [N, length]."""
    return np.stack([encode(t, length) for t in texts]) if texts else \
        np.zeros((0, length), np.int32)


def decode(ids) -> str:
    """The words between <bos> and the first <eos> (or padding)."""
    words = []
    for i in np.asarray(ids).tolist():
        if i == BOS:
            continue
        if i in (EOS, PAD):
            break
        words.append(VOCAB[i] if 0 <= i < VOCAB_SIZE else SPECIALS[UNK])
    return " ".join(words)


def caption_tokens(features: Mapping) -> np.ndarray:
    """The `caption_tokens` attribute of a `shapes` example (see shapes.ATTRIBUTES)."""
    caption = features["caption"]
    if isinstance(caption, bytes):
        caption = caption.decode("utf-8")
    return encode(str(caption))


def main_object(tokens) -> tuple[int, int]:
    """(shape class, colour index) named first in a caption, -1 where absent: what a
    judge of text-to-image samples checks against the image's largest object."""
    words = [VOCAB[i] for i in np.asarray(tokens).tolist() if 0 <= i < VOCAB_SIZE]
    shape = next((SHAPES.index(w) for w in words if w in SHAPES), -1)
    color = next((COLOR_NAMES.index(w) for w in words if w in COLOR_NAMES), -1)
    return shape, color
