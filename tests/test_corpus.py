"""The byte-level corpora: the stdlib builder, TFDS text datasets and training windows."""

import hashlib
import os
import platform

import numpy as np
import pytest
import tensorflow_datasets as tfds

from vision_jax.data import DatasetNotFoundError
from vision_jax.data import corpus as C

SEP = chr(C.SEPARATOR)


@pytest.fixture(scope="module")
def stdlib(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("corpora"))
    return C.build_corpus(cache), C.build_corpus(cache, cache=False)


def _read(root, relpath):
    with open(os.path.join(root, *relpath.split("/")), "rb") as f:
        return f.read().decode("utf-8")


# ----------------------------------------------------------------------------- the stdlib corpus

def test_stdlib_corpus_is_deterministic_and_hashed(stdlib):
    first, second = stdlib
    assert first.train.dtype == np.uint8 and first.validation.dtype == np.uint8
    np.testing.assert_array_equal(first.train, second.train)
    np.testing.assert_array_equal(first.validation, second.validation)
    meta = first.meta
    assert meta["sha256"] == second.meta["sha256"] == hashlib.sha256(
        first.train.tobytes() + first.validation.tobytes()).hexdigest()
    assert meta["python_version"] == platform.python_version()
    assert meta["bytes"] == len(first.train) + len(first.validation) > 1_000_000
    # the cached copy is named by version and hash, and reads back verified
    assert os.path.basename(meta["path"]) == f"stdlib-{meta['python_version']}-{meta['sha256'][:16]}"
    loaded = C.load_corpus(meta["path"])
    np.testing.assert_array_equal(loaded.train, first.train)
    assert loaded.meta["sha256"] == meta["sha256"]


def test_stdlib_splits_are_disjoint_by_file_and_exclude_tests(stdlib):
    meta = stdlib[0].meta
    train, validation = set(meta["train_files"]), set(meta["validation_files"])
    assert not train & validation
    assert train | validation == set(C.stdlib_files()) - set(meta["skipped_not_utf8"])
    assert meta["train_files"] == sorted(meta["train_files"])   # deterministic order
    assert all(C.is_validation(f) for f in validation)
    assert not any(C.is_validation(f) for f in train)
    assert 0.005 < len(validation) / meta["files"] < 0.05
    for f in train | validation:
        parts = f.split("/")
        assert not C.EXCLUDED_DIRS & set(parts[:-1]), f
        assert f.endswith(".py") and not parts[-1].startswith("_sysconfigdata_")
    assert "argparse.py" in train | validation
    assert not any(f.startswith(("test/", "idlelib/idle_test/", "lib2to3/tests/")) for f in train)


def test_stdlib_bytes_round_trip_to_the_files(stdlib):
    corpus = stdlib[0]
    root = corpus.meta["root"]
    for split in ("train", "validation"):
        files = corpus.meta[f"{split}_files"]
        assert corpus.text(split) == SEP.join(_read(root, f) for f in files)


def test_fake_tree_exclusions_and_undecodable_files(tmp_path):
    files = {
        "a.py": "é = '✓'\n",
        "pkg/__init__.py": '"""A docstring."""\n',
        "bad.py": b"# caf\xe9 in latin-1\n",
        "notes.txt": "not python\n",
        "test/test_a.py": "x\n", "pkg/tests/t.py": "x\n", "idlelib/idle_test/i.py": "x\n",
        "lib2to3/tests/l.py": "x\n", "site-packages/s.py": "x\n",
        "_sysconfigdata__linux.py": "x\n", "config-3.11-x86_64-linux-gnu/python-config.py": "x\n",
    }
    held_out = next(f"m{i}.py" for i in range(10_000) if C.is_validation(f"m{i}.py"))
    files[held_out] = "held out\n"
    for name, content in files.items():
        path = tmp_path / "lib" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    corpus = C.build_corpus(root=str(tmp_path / "lib"), cache=False)
    assert corpus.meta["train_files"] == ["a.py", "pkg/__init__.py"]
    assert corpus.meta["validation_files"] == [held_out]
    assert corpus.meta["skipped_not_utf8"] == ["bad.py"]
    assert corpus.text("train") == "é = '✓'\n" + SEP + '"""A docstring."""\n'
    assert C.decode(corpus.validation) == "held out\n"


# ----------------------------------------------------------------------------- windows

TOKENS = (np.arange(50_000) % 256).astype(np.uint8)   # a window's bytes count up by one


def test_batches_are_deterministic_resumable_and_shifted():
    fresh = C.batches(TOKENS, batch_size=8, seq_len=32, seed=3)
    first = [next(fresh) for _ in range(6)]
    assert first[0].shape == (8, 33) and first[0].dtype == np.int32
    again = C.batches(TOKENS, 8, 32, seed=3)
    for a in first:
        np.testing.assert_array_equal(a, next(again))
    resumed = C.batches(TOKENS, 8, 32, seed=3, start_step=4)
    np.testing.assert_array_equal(next(resumed), first[4])
    np.testing.assert_array_equal(next(resumed), first[5])
    np.testing.assert_array_equal(C.batch_at(TOKENS, 2, 8, 32, seed=3), first[2])
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(next(C.batches(TOKENS, 8, 32, seed=4)), first[0])
    # each row is a contiguous slice: targets (row[1:]) are the inputs shifted by one
    assert np.all((first[0][:, 1:] - first[0][:, :-1]) % 256 == 1)
    # processes take contiguous slices of the same global batch
    halves = [C.batch_at(TOKENS, 2, 8, 32, seed=3, process_index=p, process_count=2)
              for p in range(2)]
    np.testing.assert_array_equal(np.concatenate(halves), first[2])
    with pytest.raises(ValueError, match="seq_len"):
        C.batch_at(TOKENS[:10], 0, 8, 32)


def test_eval_windows_predict_every_byte_once():
    windows = C.eval_windows(TOKENS[:1001], seq_len=100)
    assert windows.shape == (10, 101) and windows.dtype == np.int32
    np.testing.assert_array_equal(windows[:, 1:].ravel(), TOKENS[1:1001])   # targets tile
    np.testing.assert_array_equal(windows[:-1, -1], windows[1:, 0])
    every = C.eval_windows(TOKENS, seq_len=100)
    assert len(every) == (len(TOKENS) - 1) // 100 == 499
    # a cap keeps windows spread over the whole split, first and last included
    spread = C.eval_windows(TOKENS, seq_len=100, max_windows=7)
    np.testing.assert_array_equal(spread, every[[0, 83, 166, 249, 332, 415, 498]])


def test_windows_of_text_decode_back(stdlib):
    corpus = stdlib[0]
    for window in C.eval_windows(corpus.validation, seq_len=256, max_windows=20):
        assert window.astype(np.uint8).tobytes() in corpus.validation.tobytes()
    first = C.eval_windows(corpus.validation, seq_len=256)[0]   # the split's first bytes
    assert corpus.text("validation").startswith(C.decode(first[:200]).rstrip("\ufffd"))
    text = "def f(x):\n    return x  # ✓\n"
    assert C.decode(C.encode(text)) == text


# ----------------------------------------------------------------------------- TFDS text datasets

class TinyText(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Three sentences in two splits; never registered, so it is found by name on disk only,
    as lm1b or tiny_shakespeare prepared elsewhere would be."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            disable_shuffling=True)

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples(["héllo wörld", "second line ✓"]),
                "test": self._generate_examples(["held out"])}

    def _generate_examples(self, texts):
        for i, text in enumerate(texts):
            yield i, {"text": text}


def test_tfds_text_corpus_by_name(tmp_path):
    data_dir, cache = str(tmp_path / "tfds"), str(tmp_path / "corpora")
    TinyText(data_dir=data_dir).download_and_prepare(file_format="array_record")
    corpus = C.tfds_corpus("tiny_text", data_dir=data_dir, cache_dir=cache)
    assert corpus.text("train") == "héllo wörld" + SEP + "second line ✓"
    assert corpus.text("validation") == "held out"           # 'test': there is no 'validation'
    assert corpus.meta["validation_split"] == "test" and corpus.meta["train_examples"] == 2
    cached = C.tfds_corpus("tiny_text", data_dir=data_dir, cache_dir=cache)
    np.testing.assert_array_equal(cached.train, corpus.train)
    assert cached.meta["sha256"] == corpus.meta["sha256"]
    with pytest.raises(DatasetNotFoundError, match="tfds build"):
        C.tfds_corpus("tiny_text", data_dir=str(tmp_path / "empty"), cache=False)
