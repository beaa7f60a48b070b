"""Byte-level text corpora for language-model scaling experiments, offline.

Built in: `stdlib`, the Python standard library's own source (code, comments
and docstrings), read from the running interpreter's stdlib directory, so
every machine with Python has it and nothing is downloaded. On CPython 3.11.7
(Linux) it is 734 files, 12.1 MB; building it takes about 0.3 s.

    corpus = build_corpus()                    # Corpus(train, validation, meta)
    corpus.meta["sha256"], corpus.meta["python_version"]
    for step, batch in enumerate(batches(corpus.train, batch_size=64, seq_len=256, seed=0)):
        inputs, targets = batch[:, :-1], batch[:, 1:]          # int32 [64, 256] each
    windows = eval_windows(corpus.validation, seq_len=256, max_windows=512)

What is read: every `.py` file under `sysconfig.get_paths()['stdlib']` except
third-party packages (`site-packages`, `dist-packages`), test suites (any
directory named `test`, `tests` or `idle_test`, e.g. `test/`,
`lib2to3/tests/`, `idlelib/idle_test/`), files generated for one build of the
interpreter (`_sysconfigdata_*.py` and the `config-*` directory, which hold
the build machine's paths and compiler flags, so two installations of one
version would differ) and any file that is not valid UTF-8.

The corpus is a pure function of the files it reads:

  * files in sorted order of their relative POSIX paths, each file's bytes
    unchanged, documents joined by one separator byte (0x1C, ASCII's "file
    separator", which no stdlib source contains);
  * a file belongs to the validation split when the SHA-256 of its relative
    path falls in the lowest VALIDATION_FRACTION (2%) of the hash range: the
    assignment of a file never depends on which other files exist, so it is
    the same on every Python version that has that file;
  * `meta["sha256"]` is the SHA-256 of the training bytes followed by the
    validation bytes; meta also records the Python version, the files of each
    split and the files skipped as undecodable.

`build_corpus` keeps a copy (`train.npy`, `validation.npy`, `meta.json`)
under `<corpora>/stdlib-<python version>-<sha256[:16]>`, where `<corpora>` is
`corpora/` beside the TFDS data directory ($VISION_JAX_DATA_DIR/../corpora,
by default ~/.cache/vision_jax/corpora); `load_corpus(path)` reads such a copy
back, so a run can train on the bytes another interpreter produced.

`tfds_corpus(name)` makes the same kind of corpus from any TFDS text dataset
prepared in array_record format (lm1b, tiny_shakespeare, ...): the text
feature of every example, encoded as UTF-8 and joined by the separator.

Training windows are random offsets drawn from a generator seeded by
(seed, step): batch k is a pure function of (tokens, seed, k), so resuming at
step k needs nothing but k. Each window holds seq_len + 1 bytes: inputs are
window[:-1], targets window[1:].
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import sysconfig
import tempfile
import time
from typing import Any, Iterator, Mapping

import numpy as np

SEPARATOR = 0x1C                  # between documents; ASCII "file separator"
VALIDATION_FRACTION = 0.02
# Directory names skipped at any depth: third-party packages and test suites.
EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test",
                           "__pycache__"})
TEXT_KEY = "text"


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A byte corpus: uint8 arrays of the two splits and what they were made from."""

    train: np.ndarray
    validation: np.ndarray
    meta: Mapping[str, Any]

    def text(self, split: str = "train") -> str:
        """A split as text (documents joined by chr(SEPARATOR))."""
        return decode(getattr(self, split))


def decode(tokens: np.ndarray) -> str:
    """Bytes back to text; a window cut mid-character decodes with U+FFFD there."""
    return np.asarray(tokens, dtype=np.uint8).tobytes().decode("utf-8", errors="replace")


def encode(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


# ----------------------------------------------------------------------------- where corpora live

def default_cache_dir() -> str:
    """`corpora/` beside the TFDS data directory of `vision_jax.data.pipeline`."""
    from vision_jax.data.pipeline import DEFAULT_DATA_DIR
    data_dir = os.path.abspath(os.path.expanduser(DEFAULT_DATA_DIR))
    return os.path.join(os.path.dirname(data_dir), "corpora")


def _save(corpus: Corpus, path: str) -> None:
    """Writes the three files into a fresh directory, renamed into place: a reader never
    sees a half-written corpus, and two concurrent writers of one key write equal bytes."""
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    np.save(os.path.join(tmp, "train.npy"), corpus.train)
    np.save(os.path.join(tmp, "validation.npy"), corpus.validation)
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(dict(corpus.meta), f, indent=1)
    try:
        os.rename(tmp, path)
    except OSError:  # another process got there first
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)


def load_corpus(path: str, *, verify: bool = True) -> Corpus:
    """A corpus saved by `build_corpus`/`tfds_corpus`, memory-mapped; `verify` checks
    its SHA-256 against meta.json."""
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    train = np.load(os.path.join(path, "train.npy"), mmap_mode="r")
    validation = np.load(os.path.join(path, "validation.npy"), mmap_mode="r")
    if (len(train), len(validation)) != (meta["train_bytes"], meta["validation_bytes"]):
        raise ValueError(f"corpus {path}: array sizes differ from meta.json")
    if verify and _sha256(train, validation) != meta["sha256"]:
        raise ValueError(f"corpus {path}: content does not match its sha256 in meta.json")
    return Corpus(train, validation, meta)


def _sha256(train: np.ndarray, validation: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(memoryview(np.ascontiguousarray(train)))
    h.update(memoryview(np.ascontiguousarray(validation)))
    return h.hexdigest()


def _join(documents: list[bytes]) -> np.ndarray:
    return np.frombuffer(bytes([SEPARATOR]).join(documents), dtype=np.uint8)


# ----------------------------------------------------------------------------- the stdlib corpus

def stdlib_dir() -> str:
    return sysconfig.get_paths()["stdlib"]


def is_validation(relpath: str) -> bool:
    """The split of a file: a function of its path alone (see the module docstring)."""
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < VALIDATION_FRACTION * 2**64


def stdlib_files(root: str | None = None) -> list[str]:
    """Relative POSIX paths of the source files the corpus reads, sorted."""
    root = stdlib_dir() if root is None else root
    found = []
    for directory, subdirs, files in os.walk(root):
        rel = os.path.relpath(directory, root)
        parts = [] if rel == "." else rel.split(os.sep)
        subdirs[:] = [d for d in subdirs if d not in EXCLUDED_DIRS
                      and not (not parts and d.startswith("config-"))]
        found += ["/".join(parts + [f]) for f in files
                  if f.endswith(".py") and not f.startswith("_sysconfigdata_")]
    return sorted(found)


def build_corpus(cache_dir: str | None = None, *, root: str | None = None,
                 cache: bool = True) -> Corpus:
    """The stdlib corpus of the running interpreter (or of the tree at `root`).

    The files are always read (0.3 s): the content hash names the cached copy,
    which is then written if absent. cache_dir defaults to `default_cache_dir()`.
    """
    root = stdlib_dir() if root is None else root
    start = time.perf_counter()
    splits: dict[str, list[bytes]] = {"train": [], "validation": []}
    names: dict[str, list[str]] = {"train": [], "validation": []}
    skipped = []
    for relpath in stdlib_files(root):
        with open(os.path.join(root, *relpath.split("/")), "rb") as f:
            data = f.read()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(relpath)
            continue
        split = "validation" if is_validation(relpath) else "train"
        splits[split].append(data)
        names[split].append(relpath)
    train, validation = _join(splits["train"]), _join(splits["validation"])
    if not len(train) or not len(validation):
        raise ValueError(f"stdlib corpus at {root!r}: {len(names['train'])} training and "
                         f"{len(names['validation'])} validation files; both splits need one")
    meta = {
        "name": "stdlib",
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "root": root,
        "files": len(names["train"]) + len(names["validation"]),
        "bytes": len(train) + len(validation),
        "train_bytes": len(train),
        "validation_bytes": len(validation),
        "sha256": _sha256(train, validation),
        "separator": SEPARATOR,
        "validation_fraction": VALIDATION_FRACTION,
        "train_files": names["train"],
        "validation_files": names["validation"],
        "skipped_not_utf8": skipped,
    }
    corpus = Corpus(train, validation, meta)
    if cache:
        cache_dir = default_cache_dir() if cache_dir is None else cache_dir
        path = os.path.join(cache_dir, f"stdlib-{meta['python_version']}-{meta['sha256'][:16]}")
        if not os.path.isdir(path):
            _save(corpus, path)
        meta["path"] = path
    meta["build_seconds"] = time.perf_counter() - start
    return corpus


# ----------------------------------------------------------------------------- TFDS text datasets

def _read_texts(source, text_key: str, limit: int | None, chunk: int = 4096) -> list[bytes]:
    n = len(source) if limit is None else min(limit, len(source))
    texts = []
    for begin in range(0, n, chunk):
        for example in source.__getitems__(list(range(begin, min(begin + chunk, n)))):
            value = example[text_key]
            texts.append(value.encode("utf-8") if isinstance(value, str) else bytes(value))
    return texts


def tfds_corpus(name: str, *, data_dir: str | None = None, text_key: str = TEXT_KEY,
                train_split: str = "train", validation_split: str | None = None,
                max_examples: int | None = None, cache_dir: str | None = None,
                cache: bool = True) -> Corpus:
    """A corpus from a TFDS text dataset prepared in array_record format, by name.

    Reads the random-access source of each split (`builder.as_data_source`,
    what `tfds.data_source` returns; no TensorFlow), takes the `text_key`
    feature of every example (at most `max_examples` per split), encodes it
    as UTF-8 and joins the examples with the separator byte. The validation
    split defaults to 'validation' where the dataset has one, else 'test'
    (lm1b has train/test; tiny_shakespeare train/validation/test, one example
    each). A dataset that is not prepared raises DatasetNotFoundError with the
    command that prepares it. The cached copy is named by the dataset's
    version and these arguments, so a second call reads it instead.
    """
    from vision_jax.data import pipeline

    data_cfg = {"name": name, "data_dir": data_dir}
    builder = pipeline._builder(data_cfg)  # DatasetNotFoundError, with the command, if absent
    splits = list(builder.info.splits)
    if validation_split is None:
        validation_split = next((s for s in ("validation", "test") if s in splits), None)
    for split in (train_split, validation_split):
        if split not in splits:
            raise ValueError(f"dataset {name!r} has no split {split!r}; splits: {sorted(splits)}")
    if text_key not in builder.info.features:
        raise ValueError(f"dataset {name!r} has no feature {text_key!r}; features: "
                         f"{sorted(builder.info.features)}")
    key = "-".join(str(part) for part in (
        "tfds", builder.info.full_name.replace("/", "-"), text_key, train_split,
        validation_split, "all" if max_examples is None else max_examples))
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    path = os.path.join(cache_dir, key)
    if cache and os.path.isdir(path):
        return load_corpus(path, verify=False)
    start = time.perf_counter()
    arrays, examples = {}, {}
    for split in (train_split, validation_split):
        texts = _read_texts(builder.as_data_source(split=split), text_key, max_examples)
        arrays[split], examples[split] = _join(texts), len(texts)
    train, validation = arrays[train_split], arrays[validation_split]
    meta = {
        "name": name,
        "full_name": builder.info.full_name,
        "data_dir": pipeline._data_dir(data_cfg),
        "text_key": text_key,
        "train_split": train_split,
        "validation_split": validation_split,
        "train_examples": examples[train_split],
        "validation_examples": examples[validation_split],
        "bytes": len(train) + len(validation),
        "train_bytes": len(train),
        "validation_bytes": len(validation),
        "sha256": _sha256(train, validation),
        "separator": SEPARATOR,
    }
    corpus = Corpus(train, validation, meta)
    if cache:
        _save(corpus, path)
        meta["path"] = path
    meta["build_seconds"] = time.perf_counter() - start
    return corpus


# ----------------------------------------------------------------------------- windows

def _check(tokens: np.ndarray, seq_len: int) -> None:
    if seq_len < 1:
        raise ValueError(f"seq_len={seq_len} must be positive")
    if len(tokens) < seq_len + 1:
        raise ValueError(f"{len(tokens)} tokens cannot hold one window of seq_len + 1 = "
                         f"{seq_len + 1}")


def batch_at(tokens: np.ndarray, step: int, batch_size: int, seq_len: int, seed: int = 0,
             *, process_index: int = 0, process_count: int = 1) -> np.ndarray:
    """Global batch `step` (int32 [batch_size, seq_len + 1]), or this process's
    contiguous slice of it: a pure function of (tokens, seed, step)."""
    _check(tokens, seq_len)
    if batch_size < 1 or batch_size % process_count or not 0 <= process_index < process_count:
        raise ValueError(f"batch_size={batch_size} must be a positive multiple of "
                         f"process_count={process_count}, and process_index={process_index} "
                         "in [0, process_count)")
    rng = np.random.default_rng([seed, step])
    # Offsets for the whole global batch are drawn on every process, so a process's
    # slice is the same whatever the number of processes.
    offsets = rng.integers(0, len(tokens) - seq_len, size=batch_size)
    local = batch_size // process_count
    offsets = offsets[process_index * local:(process_index + 1) * local]
    windows = np.lib.stride_tricks.sliding_window_view(tokens, seq_len + 1)
    return windows[offsets].astype(np.int32)


def batches(tokens: np.ndarray, batch_size: int, seq_len: int, seed: int = 0,
            start_step: int = 0, *, process_index: int = 0,
            process_count: int = 1) -> Iterator[np.ndarray]:
    """Training windows for steps start_step, start_step + 1, ... (endless).

    Resuming is `batches(..., start_step=k)`: it yields exactly what a fresh
    iterator yields from its k-th batch on."""
    step = start_step
    while True:
        yield batch_at(tokens, step, batch_size, seq_len, seed,
                       process_index=process_index, process_count=process_count)
        step += 1


def eval_windows(tokens: np.ndarray, seq_len: int, max_windows: int | None = None) -> np.ndarray:
    """Windows (int32 [n, seq_len + 1]) starting every seq_len bytes, so that every byte
    after the first is a target exactly once (consecutive windows share only the byte
    where one's targets end and the next one's inputs begin). With `max_windows`, that
    many of them, spread evenly over the split rather than taken from its start."""
    _check(tokens, seq_len)
    n = (len(tokens) - 1) // seq_len
    index = np.arange(n)
    if max_windows is not None and n > max_windows:
        index = np.linspace(0, n - 1, max_windows).round().astype(np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(tokens, seq_len + 1)
    return windows[index * seq_len].astype(np.int32)


# ----------------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    """`python -m vision_jax.data.corpus [--tfds NAME] [--cache-dir D] [--no-cache]`: build a
    corpus and print its meta (without the file lists)."""
    parser = argparse.ArgumentParser(prog="python -m vision_jax.data.corpus",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--tfds", default=None, help="a TFDS text dataset instead of the stdlib")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    if args.tfds:
        corpus = tfds_corpus(args.tfds, data_dir=args.data_dir, cache_dir=args.cache_dir,
                             cache=not args.no_cache)
    else:
        corpus = build_corpus(args.cache_dir, cache=not args.no_cache)
    meta = {k: v for k, v in corpus.meta.items() if not k.endswith("_files")}
    print(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
