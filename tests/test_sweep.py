"""The sweep: expansion, a tiny sweep end to end with resume, the store, label noise."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, config_path
from ml_collections import ConfigDict

from vision_jax import config as config_lib
from vision_jax import data
from vision_jax.data import pipeline
from vision_jax.scaling import store, sweep

TRAIN, TEST = 256, 64
TINY = [f"data.shapes.train_size={TRAIN}", f"data.shapes.test_size={TEST}"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    data.prepare(dict(name="shapes", data_dir=path, shapes=dict(train_size=TRAIN, test_size=TEST)))
    return path


def _sweep(**fields) -> ConfigDict:
    c = ConfigDict()
    c.base = config_path("default.py")
    c.overrides = []
    c.axes = (("model.channels", [(4, 8), (8, 8)]), ("seed", [0, 1, 2]))
    c.mode = "grid"
    for k, v in fields.items():
        c[k] = v
    return c


# ---------------------------------------------------------------------------
# Expansion.


def test_grid_is_the_cartesian_product_in_axis_order():
    trials = sweep.expand(_sweep())
    assert [t.name for t in trials] == [
        "channels=4x8,seed=0", "channels=4x8,seed=1", "channels=4x8,seed=2",
        "channels=8x8,seed=0", "channels=8x8,seed=1", "channels=8x8,seed=2"]
    assert trials[4].values == {"model.channels": (8, 8), "seed": 1}
    assert trials[4].overrides[-2:] == ("model.channels=(8, 8)", "seed=1")
    config = sweep.trial_config(_sweep(), trials[4])
    assert tuple(config.model.channels) == (8, 8) and config.seed == 1


def test_random_mode_draws_distinct_grid_points_reproducibly():
    grid = {t.name for t in sweep.expand(_sweep())}
    first = sweep.expand(_sweep(mode="random", num_trials=4, seed=3))
    again = sweep.expand(_sweep(mode="random", num_trials=4, seed=3))
    other = sweep.expand(_sweep(mode="random", num_trials=4, seed=4))
    names = [t.name for t in first]
    assert names == [t.name for t in again] and len(set(names)) == 4
    assert set(names) <= grid and names != [t.name for t in other]
    with pytest.raises(sweep.SweepError, match="num_trials <= 6"):
        sweep.expand(_sweep(mode="random", num_trials=7))


def test_grouped_axis_sets_several_keys_together():
    axes = (("model", [{"model.channels": (4, 8), "model.convs_per_stage": 2},
                       {"model.channels": (8, 16), "model.convs_per_stage": 1}]),)
    trials = sweep.expand(_sweep(axes=axes))
    assert trials[0].name == "channels=4x8,convs_per_stage=2"
    config = sweep.trial_config(_sweep(axes=axes), trials[1])
    assert tuple(config.model.channels) == (8, 16) and config.model.convs_per_stage == 1


def test_bad_axis_key_is_named():
    with pytest.raises(sweep.SweepError, match="'model.chanels'"):
        sweep.expand(_sweep(axes=(("model.chanels", [(4, 8)]),)))
    with pytest.raises(sweep.SweepError, match="mode 'grd'"):
        sweep.expand(_sweep(mode="grd"))


@pytest.fixture
def label_noise_key(monkeypatch):
    """base_config() with data.label_noise, which the label-noise sweeps set,
    whether or not vision_jax/config.py declares it yet."""
    original = config_lib.base_config

    def with_key():
        c = original()
        if "label_noise" not in c.data:
            c.data.label_noise, c.data.label_noise_seed = 0.0, 0
        return c

    monkeypatch.setattr(config_lib, "base_config", with_key)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "scaling", "*.py"))))
def test_sweep_configs_expand(path, label_noise_key):
    for arg in ("", ":runlocal"):
        trials = sweep.expand(sweep.load_sweep(path + arg))
        assert len({t.name for t in trials}) == len(trials) > 0
    if path.endswith("demo.py"):
        assert len(sweep.expand(sweep.load_sweep(path))) >= 12


# ---------------------------------------------------------------------------
# A tiny sweep end to end: interrupted after one trial, then resumed.


def _write_tiny_sweep(tmp_path, data_dir) -> str:
    path = tmp_path / "tiny_sweep.py"
    overrides = [f"data.data_dir={data_dir}", *TINY, "total_steps=4", "batch_size=64",
                 "schedule.warmup_steps=1", "log_every_steps=2", "eval_every_steps=2",
                 "checkpoint.every_steps=2", "checkpoint.async_save=False", "progress_bar=False"]
    path.write_text(
        "from ml_collections import ConfigDict\n\n"
        "def get_config(arg=None):\n"
        "    c = ConfigDict()\n"
        f"    c.base = {config_path('default.py')!r}\n"
        f"    c.overrides = {overrides!r}\n"
        "    c.axes = (('model.channels', [(4,), (8,)]), ('data.num_train_examples', [128, 256]))\n"
        "    c.fit = dict(x='params', y='final_eval_loss', groupby='data.num_train_examples')\n"
        "    return c\n")
    return str(path)


def test_tiny_sweep_runs_resumes_and_stores(tmp_path, data_dir):
    spec, sweepdir = _write_tiny_sweep(tmp_path, data_dir), str(tmp_path / "sweep")
    args = [f"--config={spec}", f"--sweepdir={sweepdir}"]

    # "Interrupted": only the first trial ran.
    assert sweep.main(args + ["--only-index", "0", "--no-analysis"]) == 0
    first = store.trial_dir(sweepdir, "channels=4,num_train_examples=128")
    metrics = os.path.join(first, "metrics.jsonl")
    before = os.stat(metrics).st_mtime_ns
    assert len(store.load(sweepdir)) == 1

    assert sweep.main(args) == 0
    assert os.stat(metrics).st_mtime_ns == before  # the finished trial did not run again

    df = pd.read_json(os.path.join(sweepdir, "results.jsonl"), lines=True)
    assert list(df.trial) == ["channels=4,num_train_examples=128", "channels=4,num_train_examples=256",
                              "channels=8,num_train_examples=128", "channels=8,num_train_examples=256"]
    for column in ("model.channels", "data.num_train_examples", "params", "non_embedding_params",
                   "forward_flops_per_example", "train_flops_per_example", "examples_seen",
                   "compute_flops", "final_train_loss", "final_train_accuracy",
                   "final_eval_loss", "final_eval_accuracy", "final_eval_error",
                   "wall_seconds", "examples_per_second", "mfu", "train_curve", "eval_curve"):
        assert column in df.columns, column
    row = df.iloc[2]
    # CNN (8,) on 3 channels, 8 classes: 3*3*3*8 + 8 conv, 8*8 + 8 head.
    assert row.params == 224 + 72 and row.non_embedding_params == 224
    assert row.examples_seen == 4 * 64
    assert row.compute_flops == pytest.approx(row.examples_seen * row.train_flops_per_example)
    assert row.final_eval_error == pytest.approx(1 - row.final_eval_accuracy)
    assert [p[0] for p in row.eval_curve] == [2, 4] and [p[0] for p in row.train_curve] == [2, 4]
    assert len(pd.read_csv(os.path.join(sweepdir, "results.csv"))) == 4
    assert list(store.load(sweepdir).trial) == list(df.trial)
    assert os.path.exists(os.path.join(sweepdir, "plots", "final_eval_loss_vs_params.png"))
    with open(os.path.join(sweepdir, "fits.json")) as f:
        assert json.load(f)["trials"] == 4

    # Deleting a summary makes that trial unfinished: it drops out of the
    # store and the next call finishes it (resuming from its checkpoint).
    os.remove(os.path.join(first, "summary.json"))
    assert len(store.load(sweepdir)) == 3
    assert sweep.main(args + ["--only", "channels=4,num_train_examples=128", "--no-analysis"]) == 0
    assert len(store.load(sweepdir)) == 4


def test_parameter_counts_exclude_vit_embeddings():
    shape = lambda *s: np.zeros(s)  # noqa: E731
    params = {"embedding": {"kernel": shape(4, 4, 3, 16)}, "pos_embedding": shape(1, 4, 16),
              "cls": shape(1, 1, 16), "encoder": {"w": shape(16, 16)}, "head": {"kernel": shape(16, 8)}}
    counts = store.parameter_counts(params, "vit")
    assert counts["params"] == 768 + 64 + 16 + 256 + 128
    assert counts["non_embedding_params"] == 16 + 256
    assert store.parameter_counts(params, "cnn")["non_embedding_params"] == 768 + 64 + 16 + 256


# ---------------------------------------------------------------------------
# Label noise.


def test_noisy_labels_fraction_determinism_and_prefixes():
    labels = np.arange(20_000, dtype=np.int32) % 8
    noisy = pipeline.noisy_labels(labels, np.arange(20_000), fraction=0.4, num_classes=8, seed=1)
    # Resampled uniformly: 40% are redrawn, 7/8 of those change.
    assert np.mean(noisy != labels) == pytest.approx(0.4 * 7 / 8, abs=0.015)
    again = pipeline.noisy_labels(labels[:500], np.arange(500), fraction=0.4, num_classes=8, seed=1)
    np.testing.assert_array_equal(again, noisy[:500])  # a prefix keeps its labels
    other = pipeline.noisy_labels(labels, np.arange(20_000), fraction=0.4, num_classes=8, seed=2)
    assert np.mean(other != noisy) > 0.2
    full = pipeline.noisy_labels(labels, np.arange(20_000), fraction=1.0, num_classes=8, seed=1)
    assert np.mean(full == labels) == pytest.approx(1 / 8, abs=0.01)  # independent of the truth
    np.testing.assert_array_equal(
        pipeline.noisy_labels(labels, np.arange(20_000), fraction=0.0, num_classes=8, seed=1), labels)


def test_label_noise_reaches_training_but_not_the_test_split(data_dir):
    clean = dict(name="shapes", data_dir=data_dir, shapes=dict(train_size=TRAIN, test_size=TEST))
    noisy = {**clean, "label_noise": 0.5, "label_noise_seed": 3}

    def eval_labels(cfg, split):
        batches = data.make_eval_batches(cfg, split=split, global_batch_size=64,
                                         process_index=0, process_count=1)
        return [(b["image"], b["label"]) for b in batches]

    truth = np.concatenate([lab for _, lab in eval_labels(clean, "train")])
    trained_on = np.concatenate([lab for _, lab in eval_labels(noisy, "train")])
    expected = pipeline.noisy_labels(truth, np.arange(TRAIN), fraction=0.5, num_classes=8, seed=3)
    np.testing.assert_array_equal(trained_on, expected)
    assert 0.2 < np.mean(trained_on != truth) < 0.65
    for (_, a), (_, b) in zip(eval_labels(clean, "test"), eval_labels(noisy, "test")):
        np.testing.assert_array_equal(a, b)

    # The shuffled training stream carries the same noisy label for each example.
    by_image = {img.tobytes(): lab for imgs, labs in eval_labels(noisy, "train")
                for img, lab in zip(imgs, labs)}
    it = data.make_train_iterator(noisy, global_batch_size=64, seed=0, process_index=0,
                                  process_count=1)
    for _ in range(5):  # past the first epoch: the noise does not change between epochs
        batch = next(it)
        assert [by_image[img.tobytes()] for img in batch["image"]] == list(batch["label"])
    with pytest.raises(ValueError, match="label_noise=1.5"):
        next(data.make_train_iterator({**clean, "label_noise": 1.5}, global_batch_size=64,
                                      seed=0, process_index=0, process_count=1))


def test_sweeps_share_a_persistent_compile_cache(tmp_path):
    # Outside the tests (which set their own cache), a sweep points JAX at
    # <sweepdir>/jax_cache and hands it on to subprocess trials.
    # Every program is cached (init_state's and the eval step's too, which
    # compile in under JAX's default second on a CPU), in subprocesses as well.
    thresholds = ("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                  "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES")
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", *thresholds)}
    code = ("import os, jax; from vision_jax.scaling import sweep; "
            f"sweep.use_compile_cache({str(tmp_path)!r}); "
            "print(jax.config.jax_compilation_cache_dir, os.environ['JAX_COMPILATION_CACHE_DIR'], "
            "jax.config.jax_persistent_cache_min_compile_time_secs, "
            f"*(os.environ[k] for k in {thresholds!r}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(tmp_path), str(tmp_path), "0.0", "0.0", "-1"]
    env["JAX_COMPILATION_CACHE_DIR"] = "/elsewhere"  # a cache the user chose wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[:2] == ["/elsewhere", "/elsewhere"]
