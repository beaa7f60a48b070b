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
  - or, with `condition='caption'`, conditioning on the scene's caption
    (text-to-image): the caption tokens of data/captions.py through the small
    text encoder of models/text.py (`text`: its size), the null class
    becoming the all-padding null caption;
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
import numpy as np

from vision_jax.data import captions
from vision_jax.models import dit, text, unet
from vision_jax.models.layers import check_choice, check_rate
from vision_jax.tasks.base import Task

# config.model.name -> the builder of the denoising network.
MODELS = {"unet": unet.from_config, "dit": dit.from_config}
CONDITIONS = ("class", "caption")


class DenoisingTask(Task):
    section: str = ""  # the config section of the subclass: config.<section>.*

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        opts = config[self.section]
        self.opts = opts
        channels = info.image_shape[-1]
        condition = opts.get("condition", "class")
        check_choice(self.section, "condition", condition, CONDITIONS)
        self.captioned = bool(opts.conditional) and condition == "caption"
        self.num_classes = int(info.num_classes) if opts.conditional and not self.captioned \
            else 0
        self.conditional = bool(self.num_classes) or self.captioned
        check_rate(self.section, "p_uncond", opts.p_uncond)
        self.p_uncond = float(opts.p_uncond) if self.conditional else 0.0
        check_choice(self.section, "model.name", config.model.get("name"), MODELS)
        self.model = MODELS[config.model.name](
            config.model, num_classes=self.num_classes, channels=channels,
            text=opts.get("text", "T") if self.captioned else "", **dtypes)

    # -- data: captions ride along as an extra pipeline key ------------------
    @property
    def extra_keys(self) -> tuple[str, ...]:
        return ("caption_tokens",) if self.captioned else ()

    @property
    def condition_key(self) -> str:
        """The batch entry the network is conditioned on."""
        return "caption_tokens" if self.captioned else "label"

    def example_batch(self, batch_size=1):
        batch = super().example_batch(batch_size)
        if self.captioned:
            batch["caption_tokens"] = jnp.zeros((batch_size, captions.CAPTION_LENGTH), jnp.int32)
        return batch

    def synthetic_batch(self, batch_size, seed=0):
        batch = super().synthetic_batch(batch_size, seed)
        if self.captioned:
            rng = np.random.default_rng(seed + 1)
            batch["caption_tokens"] = captions.encode_batch(
                [f"a {rng.choice(captions.COLOR_NAMES)} {rng.choice(captions.SHAPES)}"
                 for _ in range(batch_size)])
        return batch

    # -- the network ---------------------------------------------------------
    def init(self, rng, batch):
        x = batch["image"]
        n = x.shape[0]
        variables = self.model.init({"params": rng}, x, jnp.zeros((n,), jnp.float32),
                                    jnp.zeros_like(batch[self.condition_key]), train=False)
        return variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def apply(self, params, variables, x, time, labels, *, train=False, rng=None):
        """The network's float32 output for images x [B, H, W, C] at times [B]."""
        rngs = {"dropout": rng} if train and rng is not None else {}
        return self.model.apply({"params": params, **variables}, x, time, labels, train=train,
                                rngs=rngs)

    @property
    def null_class(self) -> int:
        return self.num_classes

    def null_labels(self, labels):
        """The null class (or null caption) in place of every label (caption)."""
        if self.captioned:
            return text.null_captions(labels)
        return jnp.full_like(labels, self.null_class)

    def train_labels(self, labels, rng):
        """Labels with each one replaced by the null class (null caption) with
        probability p_uncond; the second output marks the dropped ones [B]."""
        n = labels.shape[0]
        if not self.conditional:
            return jnp.zeros_like(labels), jnp.zeros((n,), jnp.bool_)
        drop = jax.random.bernoulli(rng, self.p_uncond, (n,))
        drop_each = drop.reshape(drop.shape + (1,) * (labels.ndim - 1))
        return jnp.where(drop_each, self.null_labels(labels), labels), drop

    def guided(self, params, variables, x, time, labels, guidance):
        """(1 + w) f(x, t, y) - w f(x, t, null): classifier-free guidance of the output.

        A concrete w = 0 runs the conditional model alone; a traced w runs both.
        """
        if isinstance(guidance, numbers.Number) and guidance == 0:
            return self.apply(params, variables, x, time, labels)
        if not self.conditional:
            raise ValueError(f"{self.section}: guidance={guidance} needs a class-conditional "
                             f"or caption-conditional model "
                             f"(config.{self.section}.conditional=True)")
        cond = self.apply(params, variables, x, time, labels)
        uncond = self.apply(params, variables, x, time, self.null_labels(labels))
        return (1.0 + guidance) * cond - guidance * uncond

    def sample_labels(self, rng, num, labels):
        """The given labels (caption tokens), else uniformly random classes (zeros when
        unconditional)."""
        if labels is not None:
            return jnp.asarray(labels, jnp.int32)
        if self.captioned:
            raise ValueError(f"{self.section}: a text-to-image model samples from captions; "
                             "pass them (`vision-jax sample --captions ...`)")
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
