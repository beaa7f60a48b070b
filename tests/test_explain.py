"""Attribution maps (vision_jax/explain.py): the methods' defining properties, the
checks on inputs with known answers, and `vision-jax explain` on a trained model."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import train_tiny_classifier
from PIL import Image

from vision_jax import explain
from vision_jax.models.cnn import CNN
from vision_jax.models.layers import guided_relu


@pytest.fixture(scope="module")
def tiny_cnn():
    """An untrained two-stage CNN, its variables, images and labels."""
    model = CNN(num_classes=3, channels=(4, 8))
    images = jax.random.uniform(jax.random.key(0), (4, 8, 8, 3), minval=-1, maxval=1)
    variables = nn.unbox(model.init(jax.random.key(1), images, train=False))
    return model, variables, images, jnp.array([0, 1, 2, 0])


def test_integrated_gradients_are_complete():
    """sum(IG) = f(x) - f(baseline) up to the quadrature error, which shrinks with steps."""
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    w1, w2 = jax.random.normal(k1, (48, 16)), jax.random.normal(k2, (16, 3))
    logits_fn = lambda x: jnp.tanh(x.reshape(len(x), -1) @ w1 / 4) @ w2
    images = jax.random.uniform(k3, (5, 4, 4, 3), minval=-1, maxval=1)
    labels = jnp.array([0, 1, 2, 0, 1])
    f = lambda x: jnp.take_along_axis(logits_fn(x), labels[:, None], -1)[:, 0]
    change = np.abs(np.asarray(f(images) - f(-jnp.ones_like(images))))
    ig_fn = jax.jit(explain.integrated_gradients, static_argnums=0, static_argnames="steps")
    ig, gap = ig_fn(logits_fn, images, labels, steps=64)
    assert ig.shape == images.shape
    assert np.all(np.abs(gap) < 0.01 * change), (gap, change)
    _, coarse = ig_fn(logits_fn, images, labels, steps=1)
    assert np.abs(coarse).mean() > 10 * np.abs(gap).mean()  # the gap measures quadrature


def test_guided_relu_passes_only_positive_gradients_at_positive_inputs(tiny_cnn):
    x = jnp.array([-1.0, 2.0, 3.0, -4.0, 0.0])
    g = jnp.array([5.0, -6.0, 7.0, 8.0, 9.0])
    out, back = jax.vjp(guided_relu, x)
    plain_out, plain_back = jax.vjp(nn.relu, x)
    np.testing.assert_array_equal(out, plain_out)
    np.testing.assert_array_equal(back(g)[0], [0.0, 0.0, 7.0, 0.0, 0.0])
    np.testing.assert_array_equal(plain_back(g)[0], [0.0, -6.0, 7.0, 0.0, 0.0])
    # The guided network computes the same logits with other gradients.
    model, variables, images, labels = tiny_cnn
    guided = explain.guided_model(model)
    both = jax.jit(lambda v, x, y: [
        guided.apply(v, x, train=False), model.apply(v, x, train=False),
        explain.attribution("guided", model, v, x, y, None),
        explain.attribution("gradient", model, v, x, y, None)])
    guided_logits, logits, guided_map, plain_map = both(variables, images, labels)
    np.testing.assert_allclose(guided_logits, logits, rtol=1e-6)
    assert not np.allclose(guided_map, plain_map)


def test_grad_cam_is_a_non_negative_image_sized_map(tiny_cnn):
    model, variables, images, labels = tiny_cnn
    assert "perturbations" not in model.init(jax.random.key(1), images, train=False)
    assert explain.last_feature_layer(model, variables, images) == "conv1_0_act"
    cam = jax.jit(lambda v, x, y: explain.attribution("gradcam", model, v, x, y, None))(
        variables, images, labels)
    assert cam.shape == images.shape[:3] and float(cam.min()) >= 0.0 and float(cam.max()) > 0


def test_mask_share_and_deletion_insertion_on_known_answers():
    mask = np.zeros((1, 8, 8), bool)
    mask[0, :2] = True  # a quarter of the image
    maps = mask.astype(np.float32)
    assert float(explain.mask_share(maps, mask)[0]) == 1.0
    assert float(explain.mask_share(np.ones_like(maps), mask)[0]) == pytest.approx(0.25)
    assert float(explain.mask_share(np.zeros_like(maps), mask)[0]) == 0.0
    # The label's "probability" is the intact share of the masked region, so the
    # mask is the perfect map: deleting it first drops the curve fastest.
    images = jnp.ones((1, 8, 8, 3))
    prob_fn = lambda x, y: ((x + 1) / 2).mean(-1)[:, :2].mean(axis=(1, 2))
    labels = jnp.zeros(1, jnp.int32)
    curves = jax.jit(lambda m: explain.deletion_insertion(prob_fn, images, labels, m, k=16))
    deletion, insertion = curves(maps)
    assert float(deletion[0]) == pytest.approx(0.125) and float(insertion[0]) == pytest.approx(0.875)
    deletion, insertion = curves(1 - maps)
    assert float(deletion[0]) == pytest.approx(0.875) and float(insertion[0]) == pytest.approx(0.125)


def test_randomised_parameters_cascade_from_the_top(tiny_cnn):
    _, variables, _, _ = tiny_cnn
    params = variables["params"]
    assert explain.cascade_layers(params) == ["head", "conv1_0", "conv0_0"]
    fresh = jax.tree.map(jnp.zeros_like, params)
    mixed = explain.randomised_params(params, fresh, ["head"])
    assert mixed["conv0_0"] is params["conv0_0"] and mixed["head"] is fresh["head"]


def test_explain_command_on_a_trained_model(tmp_path_factory, capsys):
    """The real trainer for 20 steps on tiny 16x16 `shapes` (a narrow CNN, no attack
    in eval), then `vision-jax explain` with every option small."""
    workdir = train_tiny_classifier(tmp_path_factory)
    out = tmp_path_factory.mktemp("explain")
    assert explain.main(["--workdir", workdir, "--num", "8", "--figure", "3",
                         "--cascade", "--smooth-n", "4", "--ig-steps", "8",
                         "--deletion-steps", "8", "--out", str(out)]) == 0
    result = json.loads((out / "explain.json").read_text())
    assert list(result["methods"]) == list(explain.METHODS) and result["examples"] == 8
    assert 0.0 < result["chance"] < 1.0
    assert 0.0 <= result["random_order"]["deletion_auc"] <= 1.0
    for method, row in result["methods"].items():
        assert 0.0 <= row["mask_share"] <= 1.0, method
        assert 0.0 <= row["deletion_auc"] <= 1.0 and 0.0 <= row["insertion_auc"] <= 1.0
        # Maps of the re-initialised model differ; a map correlates 1 with itself.
        assert row["randomisation"]["all"] < 0.99, method
        assert list(row["randomisation"]["cascade"]) == ["head", "conv2_0", "conv1_0", "conv0_0"]
    maps = np.random.default_rng(0).random((2, 4, 4))
    assert explain.rank_correlation(maps, maps) == pytest.approx(1.0)
    grid = np.asarray(Image.open(out / "explain.png"))
    scale = 96 // 16  # rows = images, columns = input + 5 methods
    assert grid.shape == ((3 * 17 + 1) * scale, (6 * 17 + 1) * scale, 3)
    assert "gradcam" in capsys.readouterr().out
