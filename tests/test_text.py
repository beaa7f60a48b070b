"""The caption tokeniser (data/captions.py) and the small text encoder (models/text.py)
that text-to-image, CLIP and captioning share."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.data import captions, shapes
from vision_jax.models import text


def test_every_generated_caption_round_trips_within_the_fixed_length():
    params = shapes.ShapesParams(resolution=16, max_objects=8, train_size=64, test_size=8)
    longest = 0
    for i in range(64):
        example = shapes.render_example(params, "train", i)
        ids = captions.encode(example["caption"])
        assert ids.shape == (captions.CAPTION_LENGTH,) and ids.dtype == np.int32
        assert captions.UNK not in ids.tolist()  # the grammar's words are all in the vocabulary
        assert captions.decode(ids) == example["caption"]
        np.testing.assert_array_equal(shapes.ATTRIBUTES["caption_tokens"](example), ids)
        shape, color = captions.main_object(ids)
        assert shape == example["label"] and color == example["objects"]["color"][0]
        longest = max(longest, len(captions.split(example["caption"])))
    assert longest <= captions.words_needed(8)
    # The bound is tight: eight objects with a one-word relation fill it but for "of".
    assert captions.words_needed(1) == 3 and captions.words_needed(3) == 12


def test_unknown_words_and_overlong_captions():
    ids = captions.encode("a photo of a golden circle")
    assert captions.decode(ids) == "a photo of a <unk> circle"
    assert captions.main_object(ids) == (shapes.SHAPES.index("circle"), -1)
    with pytest.raises(ValueError, match="does not fit length=6"):
        captions.encode("a red circle left of a blue square", length=6)


def test_text_encoder_ignores_padding_and_maps_the_null_caption_to_its_vector():
    embed = text.CaptionEmbed(features=16, size="T")
    tokens = jnp.asarray(captions.encode_batch(["a red circle left of a blue square", "a star"]))
    params = embed.init(jax.random.key(0), tokens)
    out = embed.apply(params, tokens)
    # Changing what sits under the padding changes nothing; changing a word does.
    junk = tokens.at[1, 10:].set(7)
    junk_out = embed.apply(params, jnp.where(tokens == 0, 0, junk))
    np.testing.assert_allclose(np.asarray(junk_out), np.asarray(out), atol=1e-6)
    other = embed.apply(params, tokens.at[1, 2].set(captions.INDEX["circle"]))
    assert np.abs(np.asarray(other[1] - out[1])).max() > 1e-4
    np.testing.assert_allclose(np.asarray(other[0]), np.asarray(out[0]), atol=1e-6)
    null = embed.apply(params, text.null_captions(tokens))
    np.testing.assert_array_equal(np.asarray(null[0]), np.asarray(params["params"]["null"].value))
