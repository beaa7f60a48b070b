"""Issue 13's open problems: spurious backgrounds, subgroup metrics, group
DRO / reweighting / JTT, calibration and OOD detection."""

import hashlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import shortcuts, subgroups
from vision_jax.data import shapes

from helpers import tiny_config


# ---------------------------------------------------------------------------
# The spurious-correlation option of `shapes`.


def test_spurious_correlation_in_train_and_none_in_test():
    p, n = 0.8, 300
    params = shapes.ShapesParams(resolution=8, spurious=p)
    for split, expected in (("train", p), ("test", 0.25)):
        ex = [shapes.render_example(params, split, i) for i in range(n)]
        labels = np.array([e["label"] for e in ex])
        groups = np.array([e["group"] for e in ex])
        aligned = np.mean(groups == shapes.aligned_background(labels))
        assert abs(aligned - expected) < 3 * math.sqrt(expected * (1 - expected) / n), split
    # test: the background is independent of the label (chi-square, 21 dof, p < 0.001 at 46.8)
    table = np.zeros((8, 4))
    np.add.at(table, (labels, groups), 1)
    expect = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    assert ((table - expect) ** 2 / expect).sum() < 46.8


def test_spurious_option_keeps_default_data_bit_identical():
    default = shapes.ShapesParams()
    assert default.config_name == "r32_o3_n50000_t10000_s0_g0.0"  # prepared data stays valid
    assert shapes.ShapesParams(spurious=0.9).config_name.endswith("_c0.9")
    # digests of the generator before the option existed
    for split, i, digest in (
            ("train", 0, "8e15933044866c84693e4a406eb927f22d9d065b15442143120bc046897680e9"),
            ("test", 7, "0c589be0829da9f680bddd0592895b2249b0a705c957a83505be33c9da2965e3")):
        assert hashlib.sha256(shapes.render_example(default, split, i)["image"]).hexdigest() \
            == digest
    with pytest.raises(ValueError, match="spurious"):
        shapes.ShapesParams(spurious=0.1)
    with pytest.raises(ValueError, match="both set"):
        shapes.ShapesParams(spurious=0.9, group_skew=0.5)


# ---------------------------------------------------------------------------
# Subgroup metrics.


def test_subgroup_metrics_are_exact_on_a_constructed_batch():
    names = {"group": ("a", "b"), "color": ("r", "g", "u"), "label": ("x", "y")}
    batch = {"group": jnp.array([0, 0, 0, 1, 1, 1, 1, 0]),
             "color": jnp.array([0, 1, 1, 2, 2, 0, 0, 2]),
             "label": jnp.array([0, 1, 0, 1, 1, 0, 1, 1]),
             "mask": jnp.array([1, 1, 1, 1, 1, 1, 1, 0], jnp.float32)}  # last: padding
    correct = jnp.array([1, 0, 1, 1, 0, 1, 1, 0])
    sums = subgroups.eval_sums(correct, batch, names)
    # accumulated over two identical batches, as eval does
    totals = {k: 2 * float(v) for k, v in sums.items()}
    out = subgroups.report(totals, names)
    # background a: examples 0,1,2 -> 2/3; b: 3..6 -> 3/4
    assert out["accuracy/background/a"] == pytest.approx(2 / 3)
    assert out["accuracy/background/b"] == pytest.approx(3 / 4)
    assert out["worst_group_accuracy/background"] == pytest.approx(2 / 3)
    assert out["group_gap/background"] == pytest.approx(3 / 4 - 2 / 3)
    # intersectional: a+r 1/1, a+g 1/2, b+u 1/2, b+r 2/2; a+u only padding, b+g empty
    inter = {k.split("/")[-1]: v for k, v in out.items()
             if k.startswith("accuracy/background_x_color/")}
    assert inter == pytest.approx({"a+r": 1.0, "a+g": 0.5, "b+u": 0.5, "b+r": 1.0})
    assert out["groups/background_x_color"] == 4
    assert out["group_gap/background_x_color"] == pytest.approx(0.5)
    # (label, background): x+a 2/2, y+a 0/1, y+b 2/3, x+b 1/1 -> worst 0, gap 1
    assert out["accuracy/label_x_background/y+a"] == 0.0
    assert out["accuracy/label_x_background/y+b"] == pytest.approx(2 / 3)
    assert out["worst_group_accuracy"] == 0.0 and out["group_gap"] == 1.0


# ---------------------------------------------------------------------------
# Mitigations: the pure pieces.


def test_group_dro_step_and_balanced_weights_are_exact():
    q = jnp.array([0.25, 0.25, 0.5])
    losses = jnp.array([1.0, 2.0, 3.0, 4.0])
    group_losses, present = shortcuts.group_mean_losses(losses, jnp.array([0, 0, 2, 2]), 3)
    np.testing.assert_allclose(group_losses, [1.5, 0.0, 3.5])
    assert present.tolist() == [True, False, True]
    new = shortcuts.dro_step(q, group_losses, present, 0.1)
    raw = np.array([0.25 * math.exp(0.15), 0.25, 0.5 * math.exp(0.35)])
    np.testing.assert_allclose(new, raw / raw.sum(), rtol=1e-6)
    w = shortcuts.balanced_weights([30, 0, 10])  # N=40, 2 non-empty groups
    np.testing.assert_allclose(w, [40 / 60, 0.0, 40 / 20])
    assert (np.array([30, 0, 10]) * w).sum() == pytest.approx(40)  # mean weight 1


def test_image_keys_tell_images_apart_and_find_listed_ones():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 8, 8, 3))
    images = jnp.asarray(pixels / 127.5 - 1.0, jnp.float32)
    keys = np.asarray(shortcuts.image_keys(images))
    assert len(set(keys.tolist())) == 64
    table = jnp.asarray(np.sort(keys[::3]))
    listed = np.asarray(shortcuts.is_listed(shortcuts.image_keys(images), table))
    assert listed.tolist() == [i % 3 == 0 for i in range(64)]


# ---------------------------------------------------------------------------
# The real trainer with group DRO on tiny spurious shapes.


@pytest.fixture(scope="module")
def dro_run(tmp_path_factory):
    from vision_jax import train
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    workdir = str(tmp_path_factory.mktemp("dro"))
    c = tiny_config("shortcuts.py:strength=0.9,method=group_dro", data_dir,
                    "data.shapes.resolution=8", "data.image_size=8",
                    "data.shapes.train_size=256", "data.shapes.test_size=64",
                    "model.channels=(4,8)", "batch_size=64", "total_steps=3",
                    "checkpoint.every_steps=3", "schedule.warmup_steps=0")
    summary = train.train(c, workdir)
    return c, workdir, summary


def test_group_dro_trains_keeps_its_weights_in_the_checkpoint(dro_run):
    from vision_jax import train
    config, workdir, summary = dro_run
    _, step, state = train.restore_workdir(config, workdir)
    q = np.asarray(jax.device_get(state.model_state["group_dro"]["q"]))
    assert step == 3 and q.shape == (32,)
    assert q.sum() == pytest.approx(1.0, abs=1e-5)
    assert q.max() > 1 / 32 + 1e-4  # three ascent steps moved weight onto the worst groups
    # the summary carries the subgroup metrics: worst (label, background) group
    per_group = [v for k, v in summary.items()
                 if k.startswith("eval_accuracy/label_x_background/")]
    assert summary["eval_worst_group_accuracy"] == min(per_group)
    assert summary["eval_group_gap"] == pytest.approx(max(per_group) - min(per_group))
    assert len(per_group) == summary["eval_groups/label_x_background"] <= 32


def test_image_keys_match_between_training_and_eval_pipelines(dro_run):
    from vision_jax import data
    config = dro_run[0]
    train_batch = next(data.make_train_iterator(config.data, global_batch_size=64, seed=0,
                                                process_index=0, process_count=1))
    keys = set()
    for b in shortcuts._train_batches(config):
        keys |= set(np.asarray(shortcuts.image_keys(b["image"]))[b["mask"] > 0].tolist())
    assert len(keys) == 256  # every training scene has its own key
    assert set(np.asarray(shortcuts.image_keys(train_batch["image"])).tolist()) <= keys


# ---------------------------------------------------------------------------
# Calibration and OOD detection.


def test_ece_is_exact_on_a_constructed_example():
    from vision_jax import calibration
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.35, 0.65], [0.55, 0.45]])
    labels = np.array([0, 1, 1, 1])
    # bin (0.9, 1]: conf .95, acc 1/2; (0.6, 0.7]: .65 vs 1; (0.5, 0.6]: .55 vs 0
    expected = 2 / 4 * 0.45 + 1 / 4 * 0.35 + 1 / 4 * 0.55
    assert calibration.ece(probs, labels, bins=10) == pytest.approx(expected)
    r = calibration.reliability(probs, labels, bins=10)
    assert r["count"].tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 0, 2]
    assert calibration.ece(np.eye(3), np.arange(3)) == 0.0  # confident and right


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_temperature_scaling_never_worsens_nll_on_its_fitting_set(scale):
    from vision_jax import calibration
    rng = np.random.default_rng(int(10 * scale))
    true = rng.normal(0, 2, (2000, 5))
    labels = np.array([rng.choice(5, p=p) for p in calibration.softmax(true)])
    logits = true * scale  # overconfident for scale > 1, underconfident below
    t = calibration.fit_temperature(logits, labels)
    assert calibration.nll(logits, labels, t) <= calibration.nll(logits, labels, 1.0)
    if scale != 1.0:  # it undoes the miscalibration
        assert t == pytest.approx(scale, rel=0.15)
        assert calibration.ece(calibration.softmax(logits, t), labels) < \
            calibration.ece(calibration.softmax(logits), labels)


def test_ood_scores_and_auroc():
    from vision_jax import ood
    assert ood.auroc([1, 2, 3], [0, 2]) == pytest.approx(4.5 / 6)  # one tie counts half
    assert ood.auroc([5, 6], [1, 2]) == 1.0 and ood.auroc([1], [2]) == 0.0
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal(-3, 1, (200, 4)), rng.normal(3, 1, (200, 4))])
    labels = np.repeat([0, 1], 200)
    means, precision = ood.fit_gaussians(feats, labels, [0, 1])
    x = np.array([[-3.0, -3, -3, -3], [0.0, 20, 0, 0]])
    d = [min((xi - m) @ precision @ (xi - m) for m in means) for xi in x]
    np.testing.assert_allclose(ood.neg_mahalanobis(x, means, precision), -np.array(d))
    assert ood.auroc(ood.neg_mahalanobis(feats, means, precision),
                     ood.neg_mahalanobis(rng.normal(0, 8, (200, 4)), means, precision)) > 0.9
    logits = np.array([[2.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(ood.neg_energy(logits), np.log(np.exp(logits).sum(-1)))
    np.testing.assert_allclose(ood.max_softmax(logits), [np.exp(2) / (np.exp(2) + 1), 0.5])


def test_calibrate_command_on_a_real_run(dro_run, tmp_path):
    from vision_jax import calibration
    config, workdir, _ = dro_run
    cal, result = calibration.calibrate(config, workdir, figures=str(tmp_path), bins=5,
                                        num_noise=64, train_examples=256)
    assert cal["fit_nll"]["after"] <= cal["fit_nll"]["before"]
    assert cal["fit_examples"] == cal["report_examples"] == 32
    assert set(result["auroc"]) == {"noise"} and result["examples"]["noise"] == 64
    assert all(0.0 <= v <= 1.0 for v in result["auroc"]["noise"].values())
    for name in ("calibration_reliability.png", "calibration_ood_scores.png"):
        assert (tmp_path / name).stat().st_size > 1000
