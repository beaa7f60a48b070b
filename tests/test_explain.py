"""Attribution maps (vision_jax/explain.py) and the learned-feature views
(vision_jax/inspect_features.py): the methods' defining properties, the checks on
inputs with known answers, and `vision-jax explain` and `vision-jax inspect` on one
trained model."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import train_tiny_classifier
from PIL import Image

from vision_jax import explain
from vision_jax import inspect_features as insp
from vision_jax.models.cnn import CNN
from vision_jax.models.layers import guided_relu
from vision_jax.models.vit import ViT


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """The real trainer for 20 steps on tiny 16x16 `shapes` (a narrow CNN, no attack
    in eval): one run for both commands."""
    return train_tiny_classifier(tmp_path_factory)


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


def test_occlusion_finds_the_only_region_the_logit_reads():
    """A two-class model whose logit is a function of one 3x3 region: occluding
    anything else leaves the probability unchanged (map exactly 0 there), and the
    map peaks inside the region."""
    region = np.zeros((12, 12), bool)
    region[2:5, 6:9] = True

    def logits_fn(x):
        s = 3.0 * x[:, 2:5, 6:9, :].mean(axis=(1, 2, 3))
        return jnp.stack([s, -s], -1)

    images = jax.random.uniform(jax.random.key(0), (2, 12, 12, 3), minval=0.2, maxval=1)
    labels = jnp.array([0, 0])
    maps = jax.jit(lambda x, y: explain.occlusion(explain.label_probability(logits_fn), x, y,
                                                  size=3, stride=2))(images, labels)
    maps = np.asarray(maps)
    near = np.zeros_like(region)  # pixels some square covering a region pixel covers
    near[0:7, 4:11] = True
    assert maps.shape == (2, 12, 12) and maps.min() >= 0
    assert np.all(maps[:, ~near] == 0) and np.all(maps[:, region] > 0)
    assert all(region.ravel()[m.argmax()] for m in maps)
    assert explain.occlusion_starts(12, 3, 2) == [0, 2, 4, 6, 8, 9]  # the border is covered
    with pytest.raises(ValueError, match="does not fit"):
        explain.occlusion_starts(8, 9, 1)


def test_nearest_neighbours_on_constructed_features():
    """Cosine and L2 disagree where they should; the search is exact and the label
    share counts neighbours by hand."""
    train = np.array([[1.0, 0.0], [5.0, 5.0], [0.0, 3.0]])
    query = np.array([[0.5, 0.6], [0.1, 2.0]])
    dist, idx = insp.nearest_neighbours(train, query, 2, "l2")
    np.testing.assert_array_equal(idx, [[0, 2], [2, 0]])
    np.testing.assert_allclose(dist[0], [np.hypot(0.5, 0.6), np.hypot(0.5, 2.4)], rtol=1e-5)
    dist, idx = insp.nearest_neighbours(train, query, 2, "cosine")
    np.testing.assert_array_equal(idx, [[1, 2], [2, 1]])  # angle, not length
    cos = 1.1 / np.hypot(0.5, 0.6) / np.sqrt(2)
    np.testing.assert_allclose(dist[0, 0], 1 - cos, atol=1e-5)
    assert insp.label_share(idx, np.array([0, 1, 1]), np.array([1, 0])) == pytest.approx(0.5)
    feats = np.random.default_rng(0).normal(size=(50, 6))
    _, idx = insp.nearest_neighbours(feats[:40], feats[40:], 3, "l2")
    brute = np.argsort(((feats[40:, None] - feats[None, :40]) ** 2).sum(-1), axis=1)[:, :3]
    np.testing.assert_array_equal(idx, brute)
    with pytest.raises(ValueError, match="metric"):
        insp.nearest_neighbours(train, query, 1, "l1")


def test_filter_structure_on_constructed_kernels():
    """A flat red kernel is all colour blob, a vertical ramp in every channel all
    oriented ramp and all luminance; random weights score the stated chances."""
    flat = np.zeros((3, 3, 3, 1))
    flat[:, :, 0] = 1.0
    ramp = np.broadcast_to(np.array([-1.0, 0.0, 1.0])[:, None, None, None], (3, 3, 3, 1))
    s = insp.filter_structure(np.concatenate([flat, ramp], axis=-1))
    assert s["flat"] == pytest.approx(0.5) and s["ramp"] == pytest.approx(0.5)
    assert s["grey"] == pytest.approx((1 / 3 + 1) / 2)
    s = insp.filter_structure(np.random.default_rng(0).normal(size=(3, 3, 3, 4000)))
    for name in ("flat", "ramp", "grey"):
        assert s[name] == pytest.approx(s["chance"][name], rel=0.05), name
    # A ViT's first-layer filters are its patch embedding (traced, not compiled).
    vit = ViT(num_classes=3, variant="Ti/4", width=16, depth=1, num_heads=2, mlp_dim=32)
    params = jax.eval_shape(lambda: nn.unbox(vit.init(jax.random.key(0), jnp.zeros(
        (1, 8, 8, 3)), train=False))["params"])
    layer, kernel = insp.first_conv_kernel(vit, jax.tree.map(
        lambda a: np.zeros(a.shape, a.dtype), params), (8, 8, 3))
    assert (layer, kernel.shape) == ("embedding", (4, 4, 3, 16))


def test_receptive_field_is_where_the_gradient_reaches():
    """On a CNN with tanh and average pooling (every path is live), the gradient of
    one unit of each layer is non-zero exactly on `receptive_field`'s crop (clipped
    to the image)."""
    model = CNN(num_classes=2, channels=(2, 2, 2), convs_per_stage=2, activation="tanh",
                pool="avg")
    images = jax.random.uniform(jax.random.key(0), (1, 32, 32, 3), minval=-1, maxval=1)
    variables = nn.unbox(model.init(jax.random.key(1), images, train=False))
    units = [("conv0_1_act", (5, 9)), ("conv1_0_act", (3, 4)), ("conv2_1_act", (1, 2))]

    def unit_sums(x):  # one scalar per (layer, unit): one Jacobian, one compile
        _, state = model.apply(variables, x, train=False, mutable=["intermediates"])
        return jnp.stack([state["intermediates"][layer][0][0, u, v].sum()
                          for layer, (u, v) in units])

    grads = jax.jit(jax.jacrev(unit_sums))(images)  # [3, 1, H, W, C]
    for (layer, (u, v)), grad in zip(units, grads):
        size, jump, offset = insp.receptive_field(model, layer)
        reach = np.asarray(jnp.abs(grad).sum(-1)[0]) > 0
        window = insp.crop(np.ones((32, 32, 1)), (jump * u + offset, jump * v + offset), size)
        expected = np.zeros((32, 32), bool)
        top, left = (int(jump * p + offset - (size - 1) / 2) for p in (u, v))  # integers
        expected[max(top, 0):top + size, max(left, 0):left + size] = True
        assert window.sum() == expected.sum(), layer
        np.testing.assert_array_equal(reach, expected, err_msg=layer)
    assert insp.receptive_field(model, "conv2_1_act") == (32, 4, 1.5)
    with pytest.raises(explain.config_lib.ConfigError, match="receptive field"):
        insp.receptive_field(model, "head")


def test_explain_command_on_a_trained_model(trained_run, tmp_path_factory, capsys):
    """`vision-jax explain` with every option small on the trained run."""
    workdir = trained_run
    out = tmp_path_factory.mktemp("explain")
    assert explain.main(["--workdir", workdir, "--num", "8", "--figure", "3",
                         "--cascade", "--smooth-n", "4", "--ig-steps", "8",
                         "--deletion-steps", "8", "--occlusion-stride", "2",
                         "--out", str(out)]) == 0
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
    scale = 96 // 16  # rows = images, columns = input + 6 methods
    assert grid.shape == ((3 * 17 + 1) * scale, (7 * 17 + 1) * scale, 3)
    assert result["occlusion_size"] == 2 and result["occlusion_stride"] == 2  # default size
    assert "occlusion" in capsys.readouterr().out
    assert explain.main(["--workdir", workdir, "--methods", "occlusion",
                         "--occlusion-size", "17", "--out", str(out)]) == 2


def test_inspect_command_on_a_trained_model(trained_run, tmp_path_factory, capsys):
    """`vision-jax inspect`: every view of the trained run, small."""
    out = tmp_path_factory.mktemp("inspect")
    assert insp.main(["--workdir", trained_run, "--num", "40", "--train-num", "64",
                      "--k", "4", "--figure", "3", "--channels", "5", "--out", str(out)]) == 0
    result = json.loads((out / "inspect.json").read_text())
    assert (result["filters"]["layer"], result["filters"]["shape"]) == ("conv0_0", [3, 3, 3, 8])
    assert 0 < result["filters"]["structure"]["flat"] < 1
    n = result["neighbours"]
    assert (n["metric"], n["k"], n["train_images"], n["feature_dim"]) == ("cosine", 4, 64, 16)
    assert 0 <= n["label_share"] <= 1 and 0 < n["chance"] < 1
    p = result["patches"]
    assert (p["layer"], p["receptive_field"], p["jump"]) == ("conv1_0_act", 8, 2)
    assert len(p["channels"]) == 5 and p["top_activation"] == sorted(p["top_activation"],
                                                                     reverse=True)
    grid = np.asarray(Image.open(out / "neighbours.png"))  # 3 queries x (query + 4)
    assert grid.shape == ((3 * 17 + 1) * 6, (5 * 17 + 1) * 6, 3)
    grid = np.asarray(Image.open(out / "patches.png"))  # 5 channels x 4 crops of 8 px
    assert grid.shape == ((5 * 9 + 1) * 12, (4 * 9 + 1) * 12, 3)
    assert np.asarray(Image.open(out / "filters.png")).shape[1] == (8 * 4 + 1) * 8
    assert Image.open(out / "tsne.png").size[0] > 100
    assert "share the query's label" in capsys.readouterr().out
    assert insp.main(["--workdir", str(out), "--out", str(out)]) == 2  # not a run
