"""Likelihood-based generative models as tasks: PixelCNN, a VAE and RealNVP, all
scored in bits per dimension on the same 8-bit images.

The convention (one for all three, so their numbers compare):
  - the data are 8-bit subpixels u in {0, ..., 255}; the pipeline hands images
    in [-1, 1] as u / 127.5 - 1, and `to_pixels` recovers u exactly;
  - D = H * W * C subpixels per image; an NLL in nats per image becomes
        bits/dim = NLL / (D ln 2)
    (uniform over the 256 values is 8 bits/dim);
  - the NLL is of the *discrete* u, or of the continuous value u + v,
    v ~ U[0, 1)^D ("uniform dequantisation", Theis et al. 2016, arXiv:1511.01844),
    whose density on [0, 256)^D bounds the discrete likelihood (Jensen):
    E_v[-log p(u + v)] >= -log P(u) for P(u) = the integral of p over u's cube.

What each model reports (metrics, per image, averaged; eval sums them over
the real examples of the split):
  pixelcnn  nll: the exact discrete NLL, a 256-way softmax per subpixel
  vae       elbo = recon - kl, recon = E_q log p(u | z) (one z per image),
            kl = KL(q(z | u) || N(0, I)) in closed form; nll = -elbo, an
            UPPER bound on the NLL (so bits/dim is too). p(u | z) is a
            discretised logistic, a distribution over the 256 values, so the
            bound is on the discrete NLL directly; no dequantisation.
  realnvp   nll: -log p(u + v) with one draw of v per image, the exact density
            of the flow, whose log-determinant includes the map from [0, 256)
            to the flow's logit space (models/realnvp.py)
and bits_per_dim from nll. The loss is bits_per_dim itself: the NLL (or
-ELBO) divided by the constant D ln 2, so that gradients do not grow with the
image size and the training curve reads in the unit of the result.
"""

from __future__ import annotations

import abc
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vision_jax.models import pixelcnn, realnvp, vae
from vision_jax.models.layers import check_choice
from vision_jax.tasks.base import Task

LEVELS = 256


# ---------------------------------------------------------------------------
# The 8-bit convention and the likelihoods
# ---------------------------------------------------------------------------

def to_pixels(images):
    """[-1, 1] images -> int32 subpixels in [0, 255] (the inverse of u / 127.5 - 1)."""
    return jnp.clip(jnp.round((images.astype(jnp.float32) + 1.0) * 127.5), 0, 255
                    ).astype(jnp.int32)


def from_pixels(pixels):
    """Subpixels in [0, 255] -> the pipeline's [-1, 1] images."""
    return pixels.astype(jnp.float32) / 127.5 - 1.0


def bits_per_dim(nll_nats, dims: int):
    """NLL in nats per image -> bits per subpixel."""
    return nll_nats / (dims * math.log(2.0))


def discretized_logistic_logprob(pixels, loc, log_scale):
    """log P(u) per subpixel of a logistic(loc, exp(log_scale)) on the [-1, 1] scale,
    discretised to the 256 bins of x = u / 127.5 - 1 (half-width 1/255; the end bins
    extend to -inf and +inf), as in PixelCNN++ (Salimans et al. 2017, eq. 2).

    With a = (x + 1/255 - loc) / s and b = (x - 1/255 - loc) / s:
        P = sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - exp(b - a)),
    whose log is finite for any a > b (PixelCNN++ switches to the density at
    the bin centre instead where the difference underflows).
    """
    x = from_pixels(pixels)
    inv = jnp.exp(-log_scale)
    a = inv * (x - loc + 1.0 / 255.0)
    b = inv * (x - loc - 1.0 / 255.0)
    log_cdf_a = -jax.nn.softplus(-a)     # log sigmoid(a): all mass below the bin's top
    log_sf_b = -jax.nn.softplus(b)       # log (1 - sigmoid(b)): all mass above its bottom
    interior = log_cdf_a + log_sf_b + jnp.log(-jnp.expm1(b - a))
    return jnp.where(pixels == 0, log_cdf_a, jnp.where(pixels == LEVELS - 1, log_sf_b, interior))


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over the last axis
    (Kingma & Welling 2014, App. B)."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1)


def standard_normal_logpdf(z):
    """log N(z; 0, I) per example, summed over the last axis."""
    return -0.5 * jnp.sum(jnp.square(z) + math.log(2.0 * math.pi), axis=-1)


def build_model(model_cfg, name: str, module, sizes, **fields):
    """`module(variant=config.model.variant, **fields)`, the config's keys checked."""
    unknown = set(model_cfg.keys()) - {"name", "variant"}
    if unknown:
        raise ValueError(f"{name}: unknown config.model keys {sorted(unknown)}; "
                         "valid: ['name', 'variant']")
    if model_cfg.get("name") != name:
        raise ValueError(f"config.model.name={model_cfg.get('name')!r}: task {name!r} uses "
                         f"model {name!r}")
    variant = model_cfg.get("variant", "S")
    check_choice(name, "variant", variant, sizes)
    return module(variant=variant, **fields)


def base_config(task: str, *, variant: str, resolution: int, total_steps: int,
                runlocal: bool, **options):
    """The recipe configs/pixelcnn.py, vae.py and realnvp.py share: 16x16 (or 32x32)
    `shapes` scenes with one shape each, config.model = (task, variant),
    config.<task> = options + sample.temperature 1; batch 64, Adam 1e-3 with 100
    warm-up steps and cosine decay to 5%, no weight decay, gradients clipped at 1,
    EMA 0.998 (eval and sampling use it), one eval at the end; `runlocal` shrinks it
    to a 20-step smoke run without warm-up or EMA (an average over 20 steps would
    still be mostly the initial weights)."""
    from vision_jax.config import base_config as base, shrink_for_local

    c = base()
    c.task = task
    c.data.update(name="shapes", image_size=resolution)
    c.data.shapes.update(resolution=resolution, max_objects=1)
    c.model = {"name": task, "variant": variant}
    c[task] = {**options, "sample": {"temperature": 1.0}}
    c.update(batch_size=64, total_steps=total_steps, log_every_steps=50, eval_every_steps=0)
    c.optimizer.update(name="adam", learning_rate=1e-3, weight_decay=0.0, grad_clip_norm=1.0)
    c.schedule.update(name="cosine", warmup_steps=100, end_factor=0.05)
    c.ema.decay = 0.998
    c.checkpoint.every_steps = 500
    if runlocal:
        shrink_for_local(c)
        c.schedule.warmup_steps = 0
        c.ema.decay = 0.0
    return c


# ---------------------------------------------------------------------------
# What the three tasks share
# ---------------------------------------------------------------------------

class LikelihoodTask(Task):
    """A subclass names its config section and defines `init`, `terms` and `sample`."""

    score = "bits_per_dim"
    section: str = ""  # config.<section>: the task's options

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.opts = config[self.section]
        self.dims = int(np.prod(info.image_shape))
        self.num_classes = 0  # class-conditional tasks set it (sample.py reads it)

    def synthetic_batch(self, batch_size, seed=0):
        """Random images on the 8-bit grid, like the real data."""
        batch = super().synthetic_batch(batch_size, seed)
        pixels = np.round((batch["image"] + 1.0) * 127.5)
        return {**batch, "image": (pixels / 127.5 - 1.0).astype(np.float32)}

    @staticmethod
    def split_variables(variables):
        return variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def temperature(self, value):
        return float(self.opts.sample.temperature) if value is None else value

    # -- objective -----------------------------------------------------------
    @abc.abstractmethod
    def terms(self, params, variables, batch, rng, *, train: bool) -> dict:
        """Per-example [B] arrays, 'nll' (nats per image, or the bound trained on) among them."""

    def per_example(self, params, variables, batch, rng, *, train: bool) -> dict:
        t = self.terms(params, variables, batch, rng, train=train)
        return {**t, "bits_per_dim": bits_per_dim(t["nll"], self.dims)}

    def loss(self, params, variables, batch, rng, group=None):
        per = self.per_example(params, variables, batch, rng, train=True)
        metrics = {k: v.mean() for k, v in per.items()}
        return metrics["bits_per_dim"], metrics, variables

    def eval_step(self, params, variables, batch, rng):
        mask = batch["mask"]
        per = self.per_example(params, variables, batch, rng, train=False)
        out = {"count": mask.sum(), "loss_sum": (per["bits_per_dim"] * mask).sum()}
        out.update({f"{k}_sum": (v * mask).sum() for k, v in per.items()})
        return out


# ---------------------------------------------------------------------------
# PixelCNN: exact discrete likelihood, sampled one subpixel at a time
# ---------------------------------------------------------------------------

class PixelCNN(LikelihoodTask):
    section = "pixelcnn"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.num_classes = int(info.num_classes) if self.opts.conditional else 0
        self.model = build_model(config.model, "pixelcnn", pixelcnn.PixelCNN, pixelcnn.SIZES,
                                 channels=info.image_shape[-1], num_classes=self.num_classes,
                                 **dtypes)

    def init(self, rng, batch):
        x = batch["image"]
        labels = jnp.zeros(x.shape[:1], jnp.int32)
        return self.split_variables(self.model.init(rng, x, labels))

    def logits(self, params, variables, images, labels):
        """[B, H, W, C, 256]: logit (i, j, c) sees only the subpixels before it."""
        return self.model.apply({"params": params, **variables}, images, labels)

    def labels(self, batch):
        return batch["label"] if self.num_classes else jnp.zeros_like(batch["label"])

    def terms(self, params, variables, batch, rng, *, train):
        pixels = to_pixels(batch["image"])
        logits = self.logits(params, variables, from_pixels(pixels), self.labels(batch))
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, pixels)
        return {"nll": nll.sum(axis=(1, 2, 3))}

    def sample(self, params, variables, rng, *, num, labels=None, temperature=None):
        """[num, H, W, C] in [-1, 1], drawn subpixel by subpixel in the model's order
        (raster, then R -> G -> B): H*W*C network passes in one lax.fori_loop. The
        subpixels not drawn yet are zeros; the masks keep them from mattering."""
        temperature = self.temperature(temperature)
        h, w, c = self.info.image_shape
        l_rng, rng = jax.random.split(rng)
        if labels is None:
            labels = (jax.random.randint(l_rng, (num,), 0, self.num_classes)
                      if self.num_classes else jnp.zeros((num,), jnp.int32))
        labels = jnp.asarray(labels, jnp.int32)

        def body(k, x):
            i, rest = jnp.divmod(k, w * c)
            j, ch = jnp.divmod(rest, c)
            logits = self.logits(params, variables, x, labels)[:, i, j, ch]
            u = jax.random.categorical(jax.random.fold_in(rng, k), logits / temperature)
            return x.at[:, i, j, ch].set(from_pixels(u))

        return jax.lax.fori_loop(0, h * w * c, body, jnp.zeros((num, h, w, c), jnp.float32))


# ---------------------------------------------------------------------------
# VAE: the ELBO, a bound
# ---------------------------------------------------------------------------

class VAE(LikelihoodTask):
    section = "vae"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.model = build_model(config.model, "vae", vae.VAE, vae.SIZES,
                                 image_shape=tuple(info.image_shape), **dtypes)
        self.latent_dim = self.model.latent_dim

    def init(self, rng, batch):
        x = batch["image"]
        eps = jnp.zeros((x.shape[0], self.latent_dim))
        return self.split_variables(self.model.init(rng, x, eps))

    def encode(self, params, variables, images):
        """(mean, log_var) of q(z | images)."""
        return self.model.apply({"params": params, **variables}, images, method="encode")

    def decode(self, params, variables, z):
        """(loc, log_scale) of p(x | z), per subpixel on the [-1, 1] scale."""
        return self.model.apply({"params": params, **variables}, z, method="decode")

    def terms(self, params, variables, batch, rng, *, train):
        pixels = to_pixels(batch["image"])
        eps = jax.random.normal(rng, (pixels.shape[0], self.latent_dim), jnp.float32)
        mean, log_var, loc, log_scale = self.model.apply({"params": params, **variables},
                                                         from_pixels(pixels), eps)
        recon = discretized_logistic_logprob(pixels, loc, log_scale).sum(axis=(1, 2, 3))
        kl = gaussian_kl(mean, log_var)
        elbo = recon - kl
        return {"nll": -elbo, "elbo": elbo, "recon": recon, "kl": kl}

    def sample(self, params, variables, rng, *, num, labels=None, temperature=None):
        """Decoded draws from the prior N(0, T^2 I): each subpixel's logistic location
        (its median), clipped to [-1, 1]; the decoder's pixel noise is left out."""
        z = self.temperature(temperature) * jax.random.normal(rng, (num, self.latent_dim))
        return jnp.clip(self.decode(params, variables, z)[0], -1.0, 1.0)


def interpolate(task: VAE, params, variables, images_a, images_b, path: str, *,
                steps: int = 8) -> str:
    """Writes a PNG: one row per pair (a, b), a's image, the decoded locations along the
    straight line between the posterior means of a and b in `steps` points (both ends
    included), b's image. Returns `path`."""
    from PIL import Image

    from vision_jax.sample import image_grid, to_uint8

    @jax.jit
    def path_images(params, variables, a, b):
        za, _ = task.encode(params, variables, a)
        zb, _ = task.encode(params, variables, b)
        t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
        z = (1.0 - t) * za[:, None, :] + t * zb[:, None, :]           # [pairs, steps, latent]
        loc, _ = task.decode(params, variables, z.reshape(-1, z.shape[-1]))
        return jnp.clip(loc, -1.0, 1.0).reshape(a.shape[0], steps, *a.shape[1:])

    a, b = jnp.asarray(images_a, jnp.float32), jnp.asarray(images_b, jnp.float32)
    middle = np.asarray(path_images(params, variables, a, b))
    rows = np.concatenate([np.asarray(a)[:, None], middle, np.asarray(b)[:, None]], axis=1)
    Image.fromarray(image_grid(to_uint8(rows.reshape(-1, *rows.shape[2:])),
                               columns=steps + 2)).save(path)
    return path


def interpolate_run(workdir: str, *, pairs: int = 8, steps: int = 8, out: str | None = None
                    ) -> str:
    """`interpolate` on a trained VAE run's newest checkpoint (its EMA when it evaluates
    with one), between the first 2 x `pairs` images of its eval split; writes
    WORKDIR/samples/interpolation_<step>.png (or `out`)."""
    from vision_jax import config as config_lib, sample as sample_lib, train

    config = sample_lib.load_run_config(workdir)
    if config.task != "vae":
        raise config_lib.ConfigError(f"{workdir} is a {config.task!r} run; interpolation "
                                     "needs a 'vae' run")
    run, step, state = train.restore_workdir(config, workdir)
    params = state.ema if (config.ema.decay and config.ema.evaluate and state.ema) \
        else state.params
    batch = next(iter(run.task.eval_batches(config.data.eval_split, global_batch_size=2 * pairs,
                                            process_index=0, process_count=1)))
    out = out or os.path.join(workdir, "samples", f"interpolation_{step}.png")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    images = np.asarray(batch["image"])
    return interpolate(run.task, params, state.model_state, images[:pairs], images[pairs:],
                       out, steps=steps)


# ---------------------------------------------------------------------------
# RealNVP: exact density of the dequantised pixels
# ---------------------------------------------------------------------------

class RealNVP(LikelihoodTask):
    section = "realnvp"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.model = build_model(config.model, "realnvp", realnvp.RealNVP, realnvp.SIZES,
                                 alpha=float(self.opts.alpha), **dtypes)

    def init(self, rng, batch):
        pixels = to_pixels(batch["image"]).astype(jnp.float32)
        return self.split_variables(self.model.init(rng, pixels))

    def forward(self, params, variables, x):
        """Pixel values in [0, 256) -> (z [B, D], log|det dz/dx| [B])."""
        return self.model.apply({"params": params, **variables}, x, method="forward")

    def inverse(self, params, variables, z):
        return self.model.apply({"params": params, **variables}, z,
                                tuple(self.info.image_shape), method="inverse")

    def terms(self, params, variables, batch, rng, *, train):
        pixels = to_pixels(batch["image"])
        x = pixels.astype(jnp.float32) + jax.random.uniform(rng, pixels.shape, jnp.float32)
        z, log_det = self.forward(params, variables, x)
        return {"nll": -(standard_normal_logpdf(z) + log_det)}

    def sample(self, params, variables, rng, *, num, labels=None, temperature=None):
        """z ~ N(0, T^2 I), inverted to pixel values, floored to the 8-bit grid (the
        inverse of the dequantisation), in [-1, 1]."""
        z = self.temperature(temperature) * jax.random.normal(rng, (num, self.dims))
        x = self.inverse(params, variables, z)
        return from_pixels(jnp.clip(jnp.floor(x), 0, LEVELS - 1))
