"""What diffusion (tasks/diffusion.py) and flow matching (tasks/flow.py) share.

Both regress a network's output on a noised image at a random time, so they share:
  - the network built from `config.model`: name 'unet' (vision_jax/models/unet.py)
    or 'dit' (vision_jax/models/dit.py), both called as model(x, time, labels, train=...);
  - class conditioning with a null class for classifier-free guidance (Ho &
    Salimans 2022, arXiv:2207.12598): in training each label is replaced by the
    null class with probability `p_uncond`, so one network learns both the
    conditional and the unconditional model; in sampling the output is
    (1 + w) f(x, y) - w f(x, null). w = 0 is the conditional model itself
    (the unconditional pass is then skipped), and since the eps, v and flow
    velocity outputs are affine in the model output with coefficients that do
    not depend on the class, guiding the raw output is guiding eps;
  - eval: the per-example loss over the real examples of a held-out batch,
    with the true labels (no label dropout), at random times and noise drawn
    from the eval step's fixed RNG.

A subclass names its config section (`section`), defines `per_example_loss`
and `sample`.
"""

from __future__ import annotations

import abc
import numbers

import jax
import jax.numpy as jnp

from vision_jax.models import dit, unet
from vision_jax.models.layers import check_choice, check_rate
from vision_jax.tasks.base import Task

# config.model.name -> the builder of the denoising network.
MODELS = {"unet": unet.from_config, "dit": dit.from_config}


class DenoisingTask(Task):
    section: str = ""  # the config section of the subclass: config.<section>.*

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        opts = config[self.section]
        self.opts = opts
        channels = info.image_shape[-1]
        self.num_classes = int(info.num_classes) if opts.conditional else 0
        check_rate(self.section, "p_uncond", opts.p_uncond)
        self.p_uncond = float(opts.p_uncond) if self.num_classes else 0.0
        check_choice(self.section, "model.name", config.model.get("name"), MODELS)
        self.model = MODELS[config.model.name](config.model, num_classes=self.num_classes,
                                               channels=channels, **dtypes)

    # -- the network ---------------------------------------------------------
    def init(self, rng, batch):
        x = batch["image"]
        n = x.shape[0]
        variables = self.model.init({"params": rng}, x, jnp.zeros((n,), jnp.float32),
                                    jnp.zeros((n,), jnp.int32), train=False)
        return variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def apply(self, params, variables, x, time, labels, *, train=False, rng=None):
        """The network's float32 output for images x [B, H, W, C] at times [B]."""
        rngs = {"dropout": rng} if train and rng is not None else {}
        return self.model.apply({"params": params, **variables}, x, time, labels, train=train,
                                rngs=rngs)

    @property
    def null_class(self) -> int:
        return self.num_classes

    def train_labels(self, labels, rng):
        """Labels with each one replaced by the null class with probability p_uncond."""
        if not self.num_classes:
            return jnp.zeros_like(labels), jnp.zeros(labels.shape, jnp.bool_)
        drop = jax.random.bernoulli(rng, self.p_uncond, labels.shape)
        return jnp.where(drop, self.null_class, labels), drop

    def guided(self, params, variables, x, time, labels, guidance):
        """(1 + w) f(x, t, y) - w f(x, t, null): classifier-free guidance of the output.

        A concrete w = 0 runs the conditional model alone; a traced w runs both.
        """
        if isinstance(guidance, numbers.Number) and guidance == 0:
            return self.apply(params, variables, x, time, labels)
        if not self.num_classes:
            raise ValueError(f"{self.section}: guidance={guidance} needs a class-conditional "
                             f"model (config.{self.section}.conditional=True)")
        cond = self.apply(params, variables, x, time, labels)
        uncond = self.apply(params, variables, x, time, jnp.full_like(labels, self.null_class))
        return (1.0 + guidance) * cond - guidance * uncond

    def sample_labels(self, rng, num, labels):
        """The given labels, else uniformly random classes (zeros when unconditional)."""
        if labels is not None:
            return jnp.asarray(labels, jnp.int32)
        if not self.num_classes:
            return jnp.zeros((num,), jnp.int32)
        return jax.random.randint(rng, (num,), 0, self.num_classes)

    # -- objective -----------------------------------------------------------
    @abc.abstractmethod
    def per_example_loss(self, params, variables, batch, rng, *, train: bool):
        """-> (loss per example [B], dict of scalar metrics)."""

    def loss(self, params, variables, batch, rng, group=None):
        per, metrics = self.per_example_loss(params, variables, batch, rng, train=True)
        return per.mean(), metrics, variables

    def eval_step(self, params, variables, batch, rng):
        mask = batch["mask"]
        per, _ = self.per_example_loss(params, variables, batch, rng, train=False)
        return {"count": mask.sum(), "loss_sum": (per * mask).sum()}


def expand(a: jax.Array, x: jax.Array) -> jax.Array:
    """a [B] (or a scalar) shaped to broadcast against x [B, ...] (rank promotion off)."""
    a = jnp.asarray(a, jnp.float32)
    return a.reshape(a.shape + (1,) * (x.ndim - a.ndim))
