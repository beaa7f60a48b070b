"""PixelCNN, VAE and RealNVP (tasks/likelihood.py): one real step each on the
8-device data+FSDP mesh, and the properties their likelihoods rest on: the
PixelCNN's masks are causal in its stated order and its sampler follows that
order, the ELBO is its terms, the discretised logistic is a distribution, and
the flow inverts with the log-determinant of its Jacobian. Tiny ("T") models
on 8x8 (4x4 for Jacobians) images keep the compiles short."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import config as config_lib, data, train
from vision_jax.models import pixelcnn
from vision_jax.tasks import likelihood

from helpers import DATA_AND_FSDP, check_one_train_step, config_path, one_train_step


def tiny(name, *overrides):
    c = config_lib.load_config(config_path(name) + ":variant=T")
    # No warm-up: its first learning rate is 0, and the step must move every parameter.
    config_lib.apply_overrides(c, ["batch_size=16", "schedule.warmup_steps=0", *overrides])
    return c


def tiny_task(name, image_shape, *overrides):
    """The task and its initial (unboxed) parameters, on the host."""
    info = data.DatasetInfo(name="synthetic", num_classes=8, image_shape=image_shape,
                            split_sizes={"train": 160})
    task = train.setup(tiny(name, *overrides), info=info).task
    params, variables = jax.jit(task.init)(jax.random.key(0), task.example_batch(2))
    return task, nn.unbox(params), variables


def grid_images(shape, seed=0):
    """Random images on the 8-bit grid, in [-1, 1]."""
    u = np.random.default_rng(seed).integers(0, 256, shape)
    return jnp.asarray(u / 127.5 - 1.0, jnp.float32)


@pytest.mark.parametrize("name, overrides", [
    ("pixelcnn.py", ["pixelcnn.conditional=True"]), ("vae.py", []), ("realnvp.py", [])])
def test_one_step_on_data_and_fsdp_mesh(name, overrides):
    before, after, metrics, shardings = one_train_step(
        tiny(name, *overrides), DATA_AND_FSDP, num_classes=8, image_shape=(8, 8, 3))
    check_one_train_step(before, after, metrics, shardings)
    # The loss is bits/dim; an untrained model is near (PixelCNN: at) the uniform 8 bits.
    assert metrics["loss"] == pytest.approx(metrics["bits_per_dim"])
    assert 6.0 < metrics["bits_per_dim"] < 12.0
    assert metrics["nll"] == pytest.approx(metrics["bits_per_dim"] * 8 * 8 * 3 * math.log(2),
                                           rel=1e-5)


def raster_index(shape):
    """Each subpixel's position in the order (row, column, channel)."""
    return np.arange(int(np.prod(shape))).reshape(shape)


def test_pixelcnn_masks_are_causal_in_raster_then_rgb_order():
    """d logits(i, j, c) / d input(r, s, k) is exactly 0 for every (r, s, k) at or after
    (i, j, c) in raster order with R -> G -> B inside a pixel, and not 0 for some
    earlier subpixel (always for the same pixel's earlier channels and the pixel to
    the left). Over 4 random images: a ReLU that is off for one image hides a
    dependence that the masks allow."""
    shape = (5, 5, 3)
    model = pixelcnn.PixelCNN(variant="T", channels=3)
    x = grid_images((4, *shape))
    params = model.init(jax.random.key(0), x)
    # A random projection of the 256 logits per subpixel (a sum could cancel).
    proj = jax.random.normal(jax.random.key(1), (256,))
    jac = jax.jit(jax.vmap(jax.jacfwd(lambda v: model.apply(params, v[None])[0] @ proj)))(x)
    d = int(np.prod(shape))
    seen = np.asarray(jac != 0).any(axis=0).reshape(d, d)  # [output, input subpixel]
    order = raster_index(shape).reshape(-1)
    out_i, in_i = np.meshgrid(order, order, indexing="ij")
    assert not seen[in_i >= out_i].any()
    assert all(seen[o, :o].any() for o in range(1, d))
    idx = raster_index(shape)
    for i in range(5):
        for j in range(5):
            for c in range(3):
                assert all(seen[idx[i, j, c], idx[i, j, k]] for k in range(c))
                if j:
                    assert seen[idx[i, j, c], idx[i, j - 1]].all()


def test_pixelcnn_sampler_follows_the_model_order():
    """At temperature ~0 the sampler decodes greedily: each drawn subpixel is the argmax
    of the logits that the finished image gives it (the logits at k see only < k)."""
    task, params, variables = tiny_task("pixelcnn.py", (4, 4, 3), "pixelcnn.conditional=True")
    labels = jnp.array([0, 3, 7])
    images = jax.jit(lambda p, k: task.sample(p, variables, k, num=3, labels=labels,
                                              temperature=1e-6))(params, jax.random.key(0))
    pixels = likelihood.to_pixels(images)
    np.testing.assert_array_equal(likelihood.from_pixels(pixels), images)  # on the 8-bit grid
    greedy = task.logits(params, variables, images, labels).argmax(-1)
    np.testing.assert_array_equal(greedy, pixels)


def test_discretized_logistic_is_a_distribution_over_256_values():
    rng = np.random.default_rng(0)
    loc = jnp.asarray(rng.uniform(-1.2, 1.2, (7, 1)), jnp.float32)
    log_scale = jnp.asarray(rng.uniform(-7.0, 1.0, (7, 1)), jnp.float32)
    u = jnp.arange(256)[None, :]
    logp = likelihood.discretized_logistic_logprob(u, loc, log_scale)
    np.testing.assert_allclose(jax.scipy.special.logsumexp(logp, axis=-1), 0.0, atol=2e-5)
    # Interior bins: sigmoid(a) - sigmoid(b), in float64.
    x, m, s = np.arange(256) / 127.5 - 1.0, np.asarray(loc, np.float64), np.exp(
        np.asarray(log_scale, np.float64))
    sig = lambda v: 0.5 * (1.0 + np.tanh(0.5 * v))  # noqa: E731
    ref = sig((x + 1 / 255 - m) / s) - sig((x - 1 / 255 - m) / s)
    ok = ref[:, 1:-1] > 1e-30
    # rtol: x = u / 127.5 - 1 rounded to float32, times 1 / s up to e^7, moves a and b.
    np.testing.assert_allclose(np.exp(np.asarray(logp, np.float64))[:, 1:-1][ok],
                               ref[:, 1:-1][ok], rtol=5e-4, atol=1e-7)


def test_elbo_is_its_terms_and_bits_per_dim_its_formula(tmp_path):
    task, params, variables = tiny_task("vae.py", (8, 8, 3))
    batch = {"image": grid_images((4, 8, 8, 3)), "label": jnp.zeros(4, jnp.int32),
             "mask": jnp.array([1.0, 1, 1, 0])}
    key = jax.random.key(3)

    @jax.jit  # one compile for all of it
    def compute(params):
        per = task.per_example(params, variables, batch, key, train=False)
        # The recon term by hand: the decoder's log-likelihood at z = mean + std eps.
        mean, log_var = task.encode(params, variables, batch["image"])
        eps = jax.random.normal(key, mean.shape)
        loc, log_scale = task.decode(params, variables, mean + jnp.exp(0.5 * log_var) * eps)
        recon = likelihood.discretized_logistic_logprob(
            likelihood.to_pixels(batch["image"]), loc, log_scale).sum(axis=(1, 2, 3))
        loss, metrics, _ = task.loss(params, variables, batch, key)
        sums = task.eval_step(params, variables, batch, key)
        return per, recon, likelihood.gaussian_kl(mean, log_var), loss, metrics, sums

    per, recon, kl, loss, metrics, sums = jax.device_get(compute(params))
    np.testing.assert_allclose(per["elbo"], per["recon"] - per["kl"], rtol=1e-6)
    np.testing.assert_allclose(per["nll"], -per["elbo"])
    np.testing.assert_allclose(per["bits_per_dim"], -per["elbo"] / (8 * 8 * 3 * math.log(2)),
                               rtol=1e-6)
    assert np.all(per["kl"] >= 0) and np.all(per["recon"] < 0)
    np.testing.assert_allclose(per["recon"], recon, rtol=1e-5)
    np.testing.assert_allclose(per["kl"], kl, rtol=1e-5)
    # The loss and the eval sums report the same numbers.
    assert float(loss) == pytest.approx(float(metrics["bits_per_dim"]))
    assert float(metrics["bits_per_dim"]) == pytest.approx(
        -float(metrics["elbo"]) / (8 * 8 * 3 * math.log(2)), rel=1e-6)
    reduced = task.eval_reduce(sums)
    assert reduced["examples"] == 3
    assert reduced["bits_per_dim"] == pytest.approx(float(per["bits_per_dim"][:3].mean()),
                                                    rel=1e-5)
    # The interpolation figure: 2 pairs x (a, 5 decoded points, b), pixels enlarged 4x.
    path = likelihood.interpolate(task, params, variables, batch["image"][:2],
                                  batch["image"][2:], str(tmp_path / "interp.png"), steps=5)
    from PIL import Image
    assert Image.open(path).size == (4 * (7 * 9 + 1), 4 * (2 * 9 + 1))


@pytest.fixture(scope="module")
def flow():
    """A tiny RealNVP on 4x4x3 whose couplings act: the coupling nets' last kernels,
    initialised small (near the identity), scaled up 10x."""
    task, params, variables = tiny_task("realnvp.py", (4, 4, 3))
    params = jax.tree_util.tree_map_with_path(
        lambda path, p: 10.0 * p if "conv_out" in jax.tree_util.keystr(path) else p, params)
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 256, (3, 4, 4, 3)), jnp.float32)
    return task, params, variables, x


def test_realnvp_inverts_its_forward(flow):
    task, params, variables, x = flow
    z, _ = task.forward(params, variables, x)
    assert z.shape == (3, 48) and float(jnp.abs(z).max()) > 10.0
    # To 1e-4 on the [0, 1) scale the flow's logit reads (x / 256).
    np.testing.assert_allclose(task.inverse(params, variables, z) / 256, x / 256, atol=1e-4)


def test_realnvp_log_det_is_the_jacobians(flow):
    task, params, variables, x = flow
    _, log_det = task.forward(params, variables, x)
    flat = lambda v: task.forward(params, variables, v[None])[0][0]  # noqa: E731
    jac = jax.jit(jax.vmap(jax.jacfwd(flat)))(x).reshape(x.shape[0], 48, 48)
    sign, ref = np.linalg.slogdet(np.asarray(jac, np.float64))
    assert np.all(sign != 0)
    np.testing.assert_allclose(log_det, ref, atol=1e-3)


def test_realnvp_samples_are_8_bit_images(flow):
    task, params, variables, _ = flow
    images = task.sample(params, variables, jax.random.key(0), num=3)  # x's batch: no recompile
    assert images.shape == (3, 4, 4, 3)
    np.testing.assert_array_equal(likelihood.from_pixels(likelihood.to_pixels(images)), images)
