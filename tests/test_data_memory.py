"""The in-memory data path (vision_jax/data/memory.py) against the Grain pipeline:
the same examples in the same order, exact resumption, clean fall-backs; and the
clock behind the trainer's start-up time."""

import glob
import logging
import time

import numpy as np
import pytest

from helpers import tiny_config
from test_data import _assert_batches_equal as _assert_same
from vision_jax import data
from vision_jax.data import memory

_IMPORTED = time.perf_counter()
AUGMENT = ["data.augment.crop_padding=2", "data.augment.flip=True",
           "data.augment.color_jitter=0.3", "data.augment.cutout=4"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    data.prepare(tiny_config("default.py", path).data)
    return path


def _data(data_dir, in_memory, *overrides):
    return tiny_config("default.py", data_dir, f"data.in_memory={in_memory}", *overrides).data


def _train(cfg, *, batch=32, seed=3, process_index=0, process_count=1):
    return data.make_train_iterator(cfg, global_batch_size=batch, seed=seed,
                                    process_index=process_index, process_count=process_count)


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


@pytest.mark.parametrize("process_count", [1, 2])
def test_same_examples_in_the_same_order_as_grain(data_dir, process_count):
    # 512 scenes in global batches of 32: 18 global batches cross an epoch
    # boundary (Grain reshuffles epoch e with seed + e). Without augmentation
    # the pixels are the Grain path's, bit for bit; label noise is drawn alike.
    noise = "data.label_noise=0.3"
    for p in range(process_count):
        kw = dict(process_index=p, process_count=process_count)
        fast = _train(_data(data_dir, True, noise), **kw)
        assert isinstance(fast, memory.TrainIterator)
        assert glob.glob(f"{data_dir}/**/in_memory-train-image-label-32px.npz", recursive=True)
        _assert_same(_take(fast, 18 // process_count),
                     _take(_train(_data(data_dir, False, noise), **kw), 18 // process_count))


def test_augmented_batches_resume_exactly_and_ignore_the_process_count(data_dir):
    cfg = _data(data_dir, True, *AUGMENT, "data.augment.mixup_alpha=0.4")
    it = _train(cfg)
    before = _take(it, 2)
    state = it.get_state()
    after = _take(it, 2)
    resumed = _train(cfg)
    resumed.set_state(state)
    _assert_same(_take(resumed, 2), after)
    # Augmented, the examples (their labels) still come in the Grain order.
    grain_it = _train(_data(data_dir, False))
    for a, b in zip(before, _take(grain_it, 2)):
        np.testing.assert_array_equal(a["label"], b["label"])
        assert not np.array_equal(a["image"], b["image"])
        assert a["image"].dtype == np.float32 and -1 <= a["image"].min() < a["image"].max() <= 1
    # A Grain checkpoint resumes on the in-memory path (the state format is Grain's).
    fast = _train(_data(data_dir, True))
    fast.set_state(grain_it.get_state())
    _assert_same([next(fast)], [next(grain_it)])
    # Each example's augmentation is keyed by its stream position: two
    # processes' local batches of global batch 64 are batches 0 and 1 of one
    # process at global batch 32.
    cfg = _data(data_dir, True, *AUGMENT)
    whole = _take(_train(cfg), 2)
    halves = [next(_train(cfg, batch=64, process_index=p, process_count=2)) for p in range(2)]
    for one, half in zip(whole, halves):
        np.testing.assert_array_equal(one["image"], half["image"])


def test_eval_batches_equal_grain_and_unsupported_streams_fall_back(data_dir, caplog):
    kw = dict(split="test", global_batch_size=48, process_count=2)  # 128 = 2 x 48 + padding
    for p in range(2):
        fast = data.make_eval_batches(_data(data_dir, True), process_index=p, **kw)
        assert isinstance(fast, memory.EvalBatches)
        _assert_same(list(fast), list(data.make_eval_batches(_data(data_dir, False),
                                                             process_index=p, **kw)))
    with caplog.at_level(logging.WARNING, logger="vision_jax"):
        it = _train(_data(data_dir, True, "data.augment.randaugment_layers=1"))
    assert not isinstance(it, memory.TrainIterator) and next(it)["image"].shape == (32, 32, 32, 3)
    assert "RandAugment" in caplog.text or "randaugment" in caplog.text
    with pytest.raises(ValueError, match="in_memory"):
        _train(_data(data_dir, "sometimes"))


def test_process_age_measures_start_up_from_the_process_start():
    # The trainer's summary reports start-up (process start -> first step) with it.
    from vision_jax import train
    age = train._process_age()
    assert age is not None and age >= time.perf_counter() - _IMPORTED - 0.05
    time.sleep(0.1)
    assert train._process_age() >= age + 0.05
