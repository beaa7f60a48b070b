"""Images optimised through a network (vision_jax/synthesis.py): each method does
what it claims on a tiny CNN, and `vision-jax synthesize` runs on a trained run."""

import functools
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import train_tiny_classifier
from PIL import Image

from vision_jax import synthesis
from vision_jax.models.cnn import CNN


@pytest.fixture(scope="module")
def tiny():
    """A two-stage CNN on 8x8 RGB (random convolutions, a hand-set head), its logits and features functions,
    and two smooth test images."""
    model = CNN(num_classes=4, channels=(8, 16))
    x = jnp.zeros((1, 8, 8, 3))
    variables = nn.unbox(jax.jit(functools.partial(model.init, train=False))(jax.random.key(1), x))
    # Each class reads its own 4 of the 16 channels: with a random head some class
    # may be unreachable (its logit never the largest), which a trained one avoids.
    variables["params"]["head"]["kernel"] = jnp.repeat(jnp.eye(4), 4, 0) - 0.25
    yy, xx = jnp.mgrid[:8, :8] / 7.0
    images = jnp.stack([jnp.stack([xx, yy, xx * yy], -1), jnp.stack([yy, 1 - xx, xx], -1)])
    images = 1.6 * images - 0.8
    logits_fn = lambda v: model.apply(variables, v, train=False)
    return logits_fn, synthesis.layer_features(model, variables), images


def test_gram_matches_hand_computation():
    f = jnp.arange(2 * 2 * 2 * 3, dtype=jnp.float32).reshape(2, 2, 2, 3) / 10
    g = synthesis.gram(f)
    flat = np.asarray(f).reshape(2, 4, 3)
    hand = np.stack([sum(np.outer(p, p) for p in img) / 4 for img in flat])
    np.testing.assert_allclose(g, hand, rtol=1e-6)
    # TV is zero on a constant image, and PSNR of an image against itself is large.
    assert float(synthesis.total_variation(jnp.ones((1, 4, 4, 1)))[0]) == 0.0
    assert float(synthesis.psnr(f, f)[0]) > 100


def test_features_are_named_by_module_path(tiny):
    _, features_fn, images = tiny
    names = synthesis.layer_names(features_fn, images.shape)
    assert names[:3] == ["conv0_0", "conv0_0_act", "conv1_0"] and names[-1] == "logits"
    assert synthesis.activation_layers(features_fn, images.shape) == [
        "conv0_0_act", "conv1_0_act"]


def test_a_network_that_sows_no_activations_offers_its_convolutions():
    """The zoo's VGG (imported ImageNet weights): its convolutions' maps, in depth
    order, serve as the style layers (shapes only: nothing is compiled)."""
    from vision_jax.models.vgg import VGG
    model = VGG(num_classes=3, depth=11, width_mult=1 / 16)
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    abstract = jax.eval_shape(lambda v: model.init(jax.random.key(0), v, train=False), x)
    variables = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), nn.unbox(abstract))
    features_fn = synthesis.layer_features(model, variables)
    content, style = synthesis.style_layers(features_fn, x.shape)
    assert style == ["stage1_conv1", "stage2_conv1", "stage3_conv1", "stage3_conv2",
                     "stage4_conv1", "stage4_conv2", "stage5_conv1", "stage5_conv2"]
    assert content == "stage5_conv2"


def test_class_visualization_raises_the_target_logit(tiny):
    logits_fn, _, _ = tiny
    targets = jnp.arange(4)
    rng = jax.random.key(0)
    x = synthesis.class_visualization(logits_fn, (4, 8, 8, 3), targets, steps=30, lr=0.1,
                                      rng=rng)
    start = logits_fn(synthesis.noise_image(jax.random.split(rng)[0], (4, 8, 8, 3)))
    end = logits_fn(x)
    assert float(jnp.abs(x).max()) <= 1.0
    np.testing.assert_array_less(np.diag(start), np.diag(end))
    np.testing.assert_array_equal(np.argmax(end, -1), np.arange(4))


def test_inversion_from_the_first_layer_beats_a_deeper_one_and_noise(tiny):
    _, features_fn, images = tiny
    rng = jax.random.key(2)
    noise = float(synthesis.psnr(synthesis.noise_image(rng, images.shape), images).mean())
    got = {}
    for layer in ("conv0_0_act", "conv1_0_act"):
        _, p = synthesis.invert_features(lambda v, n=layer: features_fn(v)[n], images,
                                         steps=60, lr=0.05, rng=rng)
        got[layer] = float(p.mean())
    assert got["conv0_0_act"] > got["conv1_0_act"] and got["conv0_0_act"] > noise + 3, (
        got, noise)


def test_deepdream_raises_the_layer_activation(tiny):
    _, features_fn, images = tiny
    one = lambda v: features_fn(v)["conv1_0_act"]
    dreamed = synthesis.deepdream(one, images, octaves=2, octave_scale=1.4, steps=5, lr=0.05)
    assert dreamed.shape == images.shape
    norm = synthesis.layer_norm_of(one)
    np.testing.assert_array_less(norm(images), norm(dreamed))


def test_style_transfer_lowers_the_style_loss_and_lbfgs_beats_adam(tiny):
    _, features_fn, images = tiny
    style = jnp.asarray(synthesis.textures(8, 3)["stripes"])
    kwargs = {"content_layer": "conv1_0_act",
              "style_layers": ["conv0_0_act", "conv1_0_act"], "steps": 10}
    out, lbfgs = synthesis.style_transfer(features_fn, images[:1], style, optimizer="lbfgs",
                                          **kwargs)
    _, adam = synthesis.style_transfer(features_fn, images[:1], style, optimizer="adam",
                                       lr=0.1, **kwargs)
    assert out.shape == (1, 8, 8, 3)
    for h in (lbfgs, adam):
        assert h["style"][-1] < 0.5 * h["style"][0], h["style"]
        assert h["content"][0] == 0.0  # starts from the content image
    assert lbfgs["total"][-1] < adam["total"][-1], (lbfgs["total"], adam["total"])
    assert adam["evaluations"][-1] == 10 and lbfgs["evaluations"][-1] >= 10


def test_synthesize_command_on_a_trained_model(tmp_path_factory):
    """The real trainer for 20 steps on tiny 8x8 `shapes`, then every --what with
    few steps."""
    workdir = train_tiny_classifier(tmp_path_factory, resolution=8, channels="(8,16)",
                                    train_size=128, test_size=16)
    out = tmp_path_factory.mktemp("synthesis")
    common = ["--workdir", workdir, "--out", str(out), "--num", "2", "--steps", "3"]
    for what in synthesis.WHAT:
        assert synthesis.main([*common, "--what", what, "--size", "8",
                               "--styles", "stripes"]) == 0, what
        result = json.loads((out / f"{what}.json").read_text())
        assert Image.open(out / f"{what}.png").size[0] > 0
        assert result["seconds"] > 0
    invert = json.loads((out / "invert.json").read_text())
    assert list(invert["layers"]) == ["conv0_0_act", "conv1_0_act"]
    style = json.loads((out / "style.json").read_text())
    assert list(style["styles"]) == ["stripes"]
    assert set(style["styles"]["stripes"]) == {"lbfgs", "adam"}
    assert synthesis.main(["--workdir", str(out), "--what", "class"]) == 2  # not a run


# ---------------------------------------------------------------------------
# The default backbone (vision_jax/backbone.py) and Johnson et al.'s task. One
# tiny backbone (1/4 width, 8x8, 3 steps) stands in for the real one: the
# cache root is a temporary directory, so no test trains the real default.


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    """(cache base directory, data directory, the tiny backbone's workdir)."""
    from vision_jax import backbone
    base, data_dir = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("tfds")
    c = backbone.backbone_config(steps=3, width_mult=0.25, resolution=8)
    c.data.data_dir = str(data_dir)
    c.data.shapes.train_size, c.data.shapes.test_size = 128, 16
    c.progress_bar = False
    workdir = backbone.default_workdir(root=str(base / "backbones"), config=c)
    return base, data_dir, workdir


def test_default_backbone_is_trained_once_then_reused(tiny_backbone, monkeypatch):
    from vision_jax import backbone, train
    base, _, workdir = tiny_backbone
    assert workdir == str(base / "backbones" / backbone.NAME)
    record = json.loads((base / "backbones" / backbone.NAME / backbone.MARKER).read_text())
    assert record["steps"] == 3 and 0.0 <= record["test_accuracy"] <= 1.0
    assert not (base / "backbones" / f"{backbone.NAME}.partial").exists()
    monkeypatch.setenv("VISION_JAX_CACHE", str(base))

    def no_training(*args, **kwargs):
        raise AssertionError("the cached backbone was retrained")
    monkeypatch.setattr(train, "train", no_training)
    assert backbone.resolve_workdir(None) == workdir  # found through $VISION_JAX_CACHE
    assert backbone.resolve_workdir("some/run") == "some/run"
    # A directory in the final place without the record (e.g. copied half-way) is
    # refused, never taken for a finished backbone nor trained over.
    (base / "backbones" / "half").mkdir()
    (base / "backbones" / "half" / "config.json").write_text("{}")
    with pytest.raises(backbone.BackboneError, match=backbone.MARKER):
        backbone.default_workdir(name="half")
    with pytest.raises(backbone.BackboneError, match="no default backbone"):
        backbone.default_workdir(name="absent", train_if_missing=False)


def test_photographs_load_offline_and_synthesize_uses_the_default_backbone(
        tiny_backbone, tmp_path, monkeypatch):
    """scikit-image's photographs come from the wheel (pooch, its downloader, is
    blocked), and `synthesize` without --workdir dreams on one through the backbone."""
    import sys
    monkeypatch.setitem(sys.modules, "pooch", None)
    for name in synthesis.PHOTOS:
        x = synthesis.load_image(name, 16, 3)
        assert x.shape == (1, 16, 16, 3) and -1.0 <= x.min() < x.max() <= 1.0
    assert synthesis.load_image("coffee", 8, 1).shape == (1, 8, 8, 1)
    with pytest.raises(ValueError, match="neither a file"):
        synthesis.load_image("mona_lisa", 8, 3)
    base, _, workdir = tiny_backbone
    monkeypatch.setenv("VISION_JAX_CACHE", str(base))
    assert synthesis.main(["--what", "dream", "--content", "astronaut", "--size", "8",
                           "--steps", "2", "--out", str(tmp_path)]) == 0
    dream = json.loads((tmp_path / "dream.json").read_text())
    assert dream["workdir"] == workdir and dream["norm_end"] > dream["norm_start"]
    with pytest.raises(SystemExit):  # argparse's error: not a file, texture or photo
        synthesis.main(["--what", "style", "--styles", "mona_lisa"])


def test_instance_norm_makes_the_transform_net_per_image():
    from vision_jax.models.transform_net import TransformNet
    net = TransformNet(widths=(4, 8, 8), residual_blocks=1)
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 10, 6, 3)), jnp.float32)
    params = jax.jit(net.init)(jax.random.key(1), x)  # one compile, not one per op
    apply = jax.jit(net.apply)
    y = apply(params, x)
    assert y.shape == x.shape  # odd sizes too: upsampling returns to the input's size
    # Another second image leaves the first one's output unchanged (batch norm would not).
    y2 = apply(params, x.at[1].multiply(-3.0))
    np.testing.assert_allclose(y[0], y2[0], atol=1e-6)
    assert float(jnp.abs(y[1] - y2[1]).max()) > 1e-3


def test_johnson_task_lowers_its_loss_and_applies_in_one_pass(tiny_backbone, tmp_path):
    """The one trainer runs the style_transfer task (frozen tiny backbone, style
    `chelsea`); its training loss falls, the backbone is untouched, and
    `synthesize --what johnson` applies it beside Gatys et al."""
    from helpers import tiny_config

    from vision_jax import metrics, train
    _, data_dir, backbone_dir = tiny_backbone
    c = tiny_config("style_johnson.py:runlocal,style=chelsea,style_size=16", str(data_dir),
                    f"style.backbone={backbone_dir}", "model.widths=(4,8,8)",
                    "model.residual_blocks=1", "data.shapes.resolution=8",
                    "data.image_size=8", "data.shapes.train_size=128",
                    "data.shapes.test_size=16", "style.eval_examples=16", "batch_size=16",
                    "total_steps=10", "log_every_steps=1", "checkpoint.every_steps=10",
                    "optimizer.learning_rate=0.01")
    def files(d):  # the frozen backbone's files, which training must leave alone
        return {p: open(os.path.join(r, p), "rb").read() for r, _, fs in os.walk(d)
                for p in fs}
    before = files(backbone_dir)
    summary = train.train(c, str(tmp_path / "run"))
    losses = [r["loss"] for r in metrics.read_metrics(str(tmp_path / "run"), "train")]
    assert len(losses) == 10 and np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
    assert {"eval_content", "eval_style", "eval_tv"} <= set(summary)
    assert files(backbone_dir) == before
    out = tmp_path / "out"
    assert synthesis.main(["--what", "johnson", "--workdir", str(tmp_path / "run"),
                           "--content", "coffee", "--size", "12", "--steps", "0",
                           "--out", str(out)]) == 0
    result = json.loads((out / "johnson.json").read_text())
    assert result["style"] == "chelsea" and result["backbone"] == backbone_dir
    assert result["gatys"] == {}  # --steps 0: no Gatys beside it (the style test runs it)
    assert result["johnson"]["train_steps"] == 10 and result["johnson"]["seconds_one_pass"] > 0
    assert Image.open(out / "johnson.png").size[0] == (3 * 13 + 1) * 8  # 3 tiles of 12 px, x8
    # A classifier run is not a style_transfer run.
    assert synthesis.main(["--what", "johnson", "--workdir", backbone_dir,
                           "--out", str(out)]) == 2
