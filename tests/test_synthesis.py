"""Images optimised through a network (vision_jax/synthesis.py): each method does
what it claims on a tiny CNN, and `vision-jax synthesize` runs on a trained run."""

import json

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
    variables = nn.unbox(model.init(jax.random.key(1), x, train=False))
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
