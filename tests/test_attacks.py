"""Adversarial examples: the attacks' guarantees, adversarial training through the
one trainer, and `vision-jax attack`."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import tiny_config
from vision_jax import attacks, config as config_lib, robustness, train

EPS = attacks.to_model_units(8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def linear_problem():
    """A fixed random linear classifier on 4x4x3 images and images near the range edges."""
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    w = jax.random.normal(k1, (48, 5))
    images = jnp.clip(jax.random.uniform(k2, (32, 4, 4, 3), minval=-1.2, maxval=1.2), -1, 1)
    labels = jax.random.randint(k3, (32,), 0, 5)
    return (lambda x: x.reshape(x.shape[0], -1) @ w), images, labels


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_perturbations_stay_in_the_ball_and_the_pixel_range(linear_problem, norm):
    logits_fn, images, labels = linear_problem
    eps = EPS if norm == "linf" else 0.5
    run = jax.jit(lambda x, y, r: [
        attacks.fgsm(logits_fn, x, y, eps=eps, norm=norm),
        attacks.pgd(logits_fn, x, y, r, eps=eps, steps=5, norm=norm),
        attacks.pgd(logits_fn, x, y, r, eps=eps, steps=5, norm=norm, targeted=True,
                    step_size=3 * eps)])  # oversized steps: the projection must hold anyway
    for adv in run(images, labels, jax.random.key(1)):
        delta = np.asarray(adv - images).reshape(len(images), -1)
        size = np.abs(delta).max(-1) if norm == "linf" else np.linalg.norm(delta, axis=-1)
        assert size.max() <= eps * (1 + 1e-5)
        assert adv.min() >= -1.0 and adv.max() <= 1.0
        assert size.max() > 0.5 * eps  # it did move


def test_pgd_from_the_fgsm_point_is_at_least_as_strong(linear_problem):
    logits_fn, images, labels = linear_problem
    fgsm = attacks.fgsm(logits_fn, images, labels, eps=EPS)
    pgd = attacks.pgd(logits_fn, images, labels, eps=EPS, steps=5, start="fgsm")
    loss = lambda x: attacks.attack_losses(logits_fn, x, labels, targeted=False)
    assert np.all(np.asarray(loss(pgd)) >= np.asarray(loss(fgsm)) - 1e-6)
    assert np.mean(loss(pgd)) > np.mean(loss(fgsm))  # and strictly stronger on average
    acc = lambda x: float((jnp.argmax(logits_fn(x), -1) == labels).mean())
    assert acc(pgd) <= acc(fgsm) <= acc(images)


def test_bad_attack_settings_are_clear_errors(linear_problem, data_dir):
    logits_fn, images, labels = linear_problem
    with pytest.raises(ValueError, match="norm"):
        attacks.fgsm(logits_fn, images, labels, eps=EPS, norm="l1")
    with pytest.raises(ValueError, match="rng"):
        attacks.pgd(logits_fn, images, labels, eps=EPS)
    c = tiny_config("ddpm.py:runlocal", data_dir, "adversarial.train=True")
    with pytest.raises(config_lib.ConfigError, match="classification"):
        config_lib.validate(c, num_devices=8)


def test_adversarial_training_and_the_attack_command(data_dir, tmp_path, capsys):
    """PGD-AT through the one trainer (sharded over 8 devices), then the robustness
    curve and the fooling images of `vision-jax attack` on the trained model."""
    c = tiny_config("adversarial.py:runlocal,dataset=digits", data_dir, "checkpoint.every_steps=20")
    summary = train.train(c, str(tmp_path))
    assert 0.0 <= summary["eval_robust_accuracy"] <= summary["eval_accuracy"]
    assert summary["eval_accuracy"] > 0.3  # it learnt something (10 classes: chance 10%)

    out = tmp_path / "attacks"
    assert robustness.main(["--workdir", str(tmp_path), "--eps", "0,16,128", "--num", "128",
                            "--steps", "5", "--fooling", "--fooling-eps", "32",
                            "--fooling-steps", "10", "--patch-sizes", "8", "--patch-target",
                            "3", "--patch-steps", "20", "--out", str(out)]) == 0
    result = json.load(open(out / "robustness.json"))
    for method in ("fgsm", "pgd"):
        accs = [r["accuracy"] for r in result["rows"] if r["method"] == method]
        assert accs[0] == pytest.approx(result["clean_accuracy"])  # eps 0 changes nothing
        assert all(a >= b for a, b in zip(accs, accs[1:])), (method, accs)  # monotone in eps
        assert accs[-1] < accs[0]
    by = {(r["method"], r["eps"]): r["accuracy"] for r in result["rows"]}
    assert all(by["pgd", e] <= by["fgsm", e] for e in (16.0, 128.0))
    fool = json.load(open(out / "fooling.json"))
    assert 0.0 <= fool["success_rate"] <= 1.0 and fool["linf_max"] <= fool["eps"] + 1e-3
    assert os.path.getsize(out / "robustness.png") > 0 and os.path.getsize(out / "fooling.png")
    assert "fooling:" in capsys.readouterr().out
    # A patch as large as the image replaces it: after training it is the target
    # for every image (the patch's own optimisation is what makes it so).
    patch = json.load(open(out / "patch.json"))["rows"]
    assert patch[0]["area"] == 1.0 and patch[0]["success_rate"] == 1.0
    assert os.path.getsize(out / "patch.png")


def test_patch_is_pasted_where_asked():
    images = jnp.zeros((2, 6, 6, 3))
    patch = jnp.ones((2, 2, 3))
    out = np.asarray(attacks.apply_patch(images, patch, jnp.array([[0, 0], [3, 4]])))
    assert out[0, :2, :2].min() == 1 and out[0].sum() == 12
    assert out[1, 3:5, 4:6].min() == 1 and out[1].sum() == 12
    offsets = attacks.random_offsets(jax.random.key(0), 500, 6, 2)
    assert offsets.min() == 0 and offsets.max() == 4  # every position where it fits
