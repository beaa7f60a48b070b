"""Sample evaluation: FID/KID/precision-recall against their definitions, the
feature net's training path, the ADM file layout and `vision-jax evaluate-samples`."""

import json
import os

import numpy as np
import pytest
import scipy.linalg

from vision_jax import config as config_lib, data
from vision_jax.evaluate import features, fid, memorization, samples

from helpers import config_path

TINY = {"train_size": 64, "test_size": 48}


# ---------------------------------------------------------------------------
# Frechet distance: exact on Gaussians.


def _closed_form_commuting(mu1, a, mu2, b):
    """FD of N(mu1, Q diag(a) Q^T) and N(mu2, Q diag(b) Q^T): the covariances
    commute, so (S1 S2)^{1/2} = Q diag(sqrt(ab)) Q^T."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b)))


def test_frechet_distance_is_exact_for_diagonal_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    a, b = rng.uniform(0.1, 3, 16), rng.uniform(0.1, 3, 16)
    got = fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(_closed_form_commuting(mu1, a, mu2, b), rel=1e-12)
    assert fid.frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0, abs=1e-10)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations.
    assert fid.frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9 + 1)


def test_frechet_distance_is_exact_for_full_commuting_covariances():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))  # a random rotation: full matrices
    a, b = rng.uniform(0.01, 2, 12), rng.uniform(0.01, 2, 12)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert np.abs(s1 - np.diag(np.diag(s1))).max() > 0.1
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        _closed_form_commuting(mu1, a, mu2, b), rel=1e-10)


def test_frechet_distance_agrees_with_scipy_sqrtm_on_general_covariances():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 10)), rng.normal(size=(40, 10)) @ rng.normal(size=(10, 10))
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    mu1, mu2 = x.mean(0), y.mean(0)
    ref = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
           - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real))
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)
    assert fid.fid(x, y) == pytest.approx(ref, rel=1e-8)


# ---------------------------------------------------------------------------
# KID: the unbiased MMD^2.


def test_mmd2_unbiased_matches_its_definition():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 4)), rng.normal(size=(5, 4)) + 0.3
    k = lambda u, v: (u @ v / 4 + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / (7 * 5)
    assert fid.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    # KID's subsets, taken whole (a permutation), give the same estimate.
    assert fid.kid(x[:5], y, subsets=3, subset_size=5)[0] == pytest.approx(
        fid.mmd2_unbiased(x[:5], y), rel=1e-10)


def test_kid_is_unbiased_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(4)
    same = [fid.mmd2_unbiased(rng.normal(size=(30, 8)), rng.normal(size=(30, 8)))
            for _ in range(400)]
    # Mean zero within 4 standard errors; a biased (V-statistic) estimator
    # would sit far above: its mean is of the order of the kernel's variance / n.
    assert abs(np.mean(same)) < 4 * np.std(same) / np.sqrt(len(same))
    differ = [fid.mmd2_unbiased(rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) + 0.5)
              for _ in range(50)]
    assert np.mean(differ) > 10 * np.std(same) / np.sqrt(len(same)) and min(differ) > 0
    mean, std = fid.kid(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.5,
                        subsets=10, subset_size=100)
    assert mean > 3 * std > 0


# ---------------------------------------------------------------------------
# Precision and recall (k = 3).


def test_precision_recall_identical_disjoint_and_half_covered():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(100, 5))
    assert fid.precision_recall(real, real.copy()) == {"precision": 1.0, "recall": 1.0}
    far = rng.normal(size=(100, 5)) + 50.0
    assert fid.precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}
    # The generated set covers one of the real set's two clusters: faithful, not diverse.
    two = np.concatenate([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 50.0])
    pr = fid.precision_recall(two, rng.normal(size=(200, 2)))
    assert pr["precision"] > 0.85 and 0.35 < pr["recall"] <= 0.5


# ---------------------------------------------------------------------------
# Files.


def test_adm_npz_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(10) % 8
    path = samples.save_samples(str(tmp_path / "s.npz"), images, labels)
    got, got_labels = samples.load_samples(path)
    assert got.dtype == np.uint8 and np.array_equal(got, images)
    assert np.array_equal(got_labels, labels)
    # `vision-jax sample` writes the file itself with np.savez(arr_0=, arr_1=).
    np.savez(tmp_path / "adm.npz", arr_0=images, arr_1=labels.astype(np.int32))
    assert np.array_equal(samples.load_samples(str(tmp_path / "adm.npz"))[0], images)
    np.savez(tmp_path / "nolabels.npz", images)  # positional: arr_0 only
    assert samples.load_samples(str(tmp_path / "nolabels.npz"))[1] is None
    np.savez(tmp_path / "float.npz", arr_0=images.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        samples.load_samples(str(tmp_path / "float.npz"))


def test_gaussian_baseline_matches_the_pixel_moments():
    rng = np.random.default_rng(7)
    train = np.clip(rng.normal(128, 20, (3000, 4, 4, 1)) + np.arange(16).reshape(4, 4, 1) * 4,
                    0, 255).astype(np.uint8)
    fake = samples.gaussian_samples(train, 3000, seed=1)
    assert fake.shape == train.shape and fake.dtype == np.uint8
    np.testing.assert_allclose(fake.mean(0), train.mean(0), atol=2.0)
    np.testing.assert_allclose(fake.std(0), train.std(0), rtol=0.1)


# ---------------------------------------------------------------------------
# The feature net: trained through the one trainer, then the whole evaluation.


@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory):
    """A few-step feature net on a tiny 16x16 shapes set: the real training path."""
    root = tmp_path_factory.mktemp("evaluate")
    data_dir, net_dir = str(root / "tfds"), str(root / "feature_nets")
    config = features.feature_net_config(16, runlocal=True)
    config_lib.apply_overrides(config, [
        f"data.data_dir={data_dir}", *(f"data.shapes.{k}={v}" for k, v in TINY.items()),
        "total_steps=3", "batch_size=16", "checkpoint.every_steps=3", "log_every_steps=1",
        "eval_every_steps=0"])
    net = features.load_feature_net(16, root=net_dir, config=config)
    return net, data_dir, net_dir


def test_feature_net_trains_records_and_reloads_without_retraining(tiny_net):
    net, _, net_dir = tiny_net
    workdir = os.path.join(net_dir, "shapes_r16")
    with open(os.path.join(workdir, features.RECORD)) as f:
        record = json.load(f)
    assert record["steps"] == 3 and set(record["test_accuracy"]) == {"label", "color", "count"}
    assert all(0.0 <= a <= 1.0 for a in record["test_accuracy"].values())
    assert record["feature_dim"] == 128 and record["test_examples"] == TINY["test_size"]
    # The trainer ran the multi-head task on all 8 devices: one loss per head, summed.
    from vision_jax import metrics as metrics_lib
    rows = metrics_lib.read_metrics(workdir, "train")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["loss"] == pytest.approx(r["loss_label"] + r["loss_color"] + r["loss_count"],
                                          rel=1e-5)
        assert {"accuracy", "accuracy_color", "accuracy_count"} <= set(r)
    mtime = os.path.getmtime(os.path.join(workdir, features.RECORD))
    again = features.load_feature_net(16, root=net_dir, train_if_missing=False)
    assert os.path.getmtime(os.path.join(workdir, features.RECORD)) == mtime
    x = np.random.default_rng(0).integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    (f1, l1), (f2, _) = net(x), again(x)
    assert f1.shape == (7, 128) and l1["color"].shape == (7, 8) and l1["count"].shape == (7, 4)
    np.testing.assert_array_equal(f1, f2)
    with pytest.raises(FileNotFoundError):
        features.load_feature_net(32, root=net_dir, train_if_missing=False)


def test_pipeline_extra_keys_are_the_scene_attributes(tiny_net):
    _, data_dir, _ = tiny_net
    cfg = features.feature_net_config(16).data
    cfg.data_dir = data_dir
    cfg.shapes.train_size, cfg.shapes.test_size = TINY["train_size"], TINY["test_size"]
    batch = next(iter(data.make_eval_batches(cfg, split="test", global_batch_size=8,
                                             process_index=0, process_count=1,
                                             extra_keys=("color", "count"))))
    from vision_jax.data import shapes
    params = shapes.ShapesParams(resolution=16, train_size=TINY["train_size"],
                                 test_size=TINY["test_size"])
    for i in range(8):
        example = shapes.render_example(params, "test", i)
        assert batch["color"][i] == example["objects"]["color"][0]
        assert batch["count"][i] == len(example["objects"]["label"]) == example["counts"].sum()


def test_real_images_as_samples_score_like_the_data(tiny_net):
    """The test images themselves, given as samples: FID 0, precision = recall = 1,
    and the conditional accuracy is the classifier's accuracy on real data."""
    net, data_dir, _ = tiny_net
    cfg = samples.default_data_config(16)
    config_lib.apply_overrides(cfg, [f"data.data_dir={data_dir}",
                                     *(f"data.shapes.{k}={v}" for k, v in TINY.items())])
    test, labels = samples.read_split(cfg.data, "test", 32)
    out = samples.evaluate_samples(test, labels, data_cfg=cfg.data, num=32, net=net)
    assert out["num"] == 32 and out["fid"] == pytest.approx(0.0, abs=1e-6)
    assert out["precision"] == out["recall"] == 1.0
    assert out["class_accuracy"] == pytest.approx(out["real_class_accuracy"])
    assert out["floor"]["fid"] > 0 and out["gaussian_baseline"]["fid"] > 0
    assert sum(out["predicted_class_histogram"]) == 32
    refs = samples.reference_metrics(cfg.data, num=32, net=net)
    assert refs["floor"] == out["floor"] and refs["gaussian_baseline"] == out["gaussian_baseline"]


def test_memorization_finds_copies():
    rng = np.random.default_rng(8)
    train = rng.integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    copies = train[:20].copy()
    out = memorization.memorization_check(copies, train, test, k=2)
    assert out["pixel"]["generated"]["median"] == pytest.approx(0.0, abs=1e-3)
    assert out["pixel"]["copy_rate"] == 1.0 and out["pixel"]["median_ratio"] < 1e-3
    fresh = memorization.memorization_check(rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8),
                                            train, test, k=2)
    assert fresh["pixel"]["copy_rate"] < 0.3 and fresh["pixel"]["median_ratio"] > 0.8


def test_evaluate_samples_command_writes_summary_and_figures(tiny_net, tmp_path, monkeypatch,
                                                             capsys):
    from vision_jax import cli
    _, data_dir, net_dir = tiny_net
    monkeypatch.setenv("VISION_JAX_FEATURE_NET_DIR", net_dir)
    rng = np.random.default_rng(9)
    npz = samples.save_samples(str(tmp_path / "samples_5.npz"),
                               rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8),
                               np.arange(40) % 8)
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "summary.json").write_text(json.dumps({"steps": 5}))
    code = cli.main(["evaluate-samples", f"--samples={npz}", "--num=24",
                     f"--workdir={workdir}", "--memorization", "--pool=40",
                     f"--dataset-config={config_path('gan.py')}",
                     f"--config.data.data_dir={data_dir}",
                     *(f"--config.data.shapes.{k}={v}" for k, v in TINY.items()),
                     "--config.data.shapes.max_objects=3"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num"] == 24 and out["fid"] > out["floor"]["fid"]
    assert out["class_accuracy"] is not None and 0.0 <= out["precision"] <= 1.0
    assert out["memorization"]["pool"] == 40
    assert os.path.isfile(out["memorization"]["figure"])
    assert os.path.isfile(out["memorization"]["histogram"])
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["steps"] == 5 and summary["samples"]["fid"] == out["fid"]
    # A resolution the dataset does not have is refused with a message.
    bad = samples.save_samples(str(tmp_path / "bad.npz"), np.zeros((4, 8, 8, 3), np.uint8))
    assert cli.main(["evaluate-samples", f"--samples={bad}",
                     f"--config.data.data_dir={data_dir}", "--config.data.image_size=16"]) == 2
