"""Self-supervised learning: objectives that need no labels, on encoders from the zoo.

The encoder is any zoo model whose classifier is a top-level layer named
`head` (CNN, ResNet, ViT, ...): its representation is the head's input
(`encode`), the features that `vision-jax probe` freezes and evaluates. Each
method is a task on the one trainer:

  simclr    SimCLR (Chen et al. 2020): two augmented views per example
            (`data.augment.ViewsConfig`, in the Grain pipeline), a projection
            MLP, and the NT-Xent loss over all 2N views of the global batch.
  rotation  Rotation prediction (Gidaris et al. 2018): each image at 0, 90,
            180 and 270 degrees in the same batch; the head is a 4-way
            classifier of the rotation.

The section `config.ssl` holds the methods' settings (see `ssl_config`);
each task reads only its own keys. A new method (MoCo, BYOL, DINO, MAE, a
pretext task) is one more class here: `SSLTask` gives it the encoder, the
frozen features and the eval loop.

Global batch. `nt_xent` is written as one global computation on the [2N, D]
projections. Under the trainer's jit the projections are sharded over the
batch axes (data, fsdp); to form the [2N, 2N] similarities, XLA's SPMD
partitioner all-gathers the projections (a [2N, D] gather, cheap next to the
encoder) and every device computes its rows against all 2N columns, so the
negatives are those of the whole global batch, never only the device's own.
The gradient flows back through the gather (XLA picks the collective:
all-reduces on CPU). tests/test_ssl.py checks the equality with a single
device, gradients included, and that the compiled step does gather.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from vision_jax import models
from vision_jax.data.augment import ViewsConfig
from vision_jax.models.layers import apply_with_features, boxed
from vision_jax.tasks.base import Task
from vision_jax.tasks.classification import cross_entropy

#: The projection MLP's top-level name in the SimCLR parameter tree (beside the encoder's).
PROJECTOR = "ssl_projector"
#: Seed of the fixed views that SimCLR's eval draws (independent of the run's seed).
EVAL_VIEWS_SEED = 12345
# Logit of excluded pairs (self-similarity, padding): see `nt_xent`.
_EXCLUDED = -1e9


def ssl_config() -> ConfigDict:
    """Defaults of `config.ssl` (the SSL configs set this section)."""
    return ConfigDict(dict(
        temperature=0.5,          # NT-Xent's tau (SimCLR: 0.5 for CIFAR-10 at batch 512)
        projection_hidden=128,    # the encoder's head becomes the projector's first layer
        projection_dim=64,        # z, where the loss is computed
        views=dict(num_views=2, min_crop_area=0.08, flip=True, jitter_p=0.8,
                   jitter_strength=0.5, grayscale_p=0.2, blur_p=0.5, blur_sigma=(0.1, 2.0)),
    ))


def ssl_base_config(task: str, *, width: int, size: int, batch: int, steps: int,
                    runlocal: bool = False) -> ConfigDict:
    """What configs/ssl/*.py share: `task` on `shapes` at `size` px with
    configs/default.py's CNN (with batch norm; stages width, 2x, 4x) as the
    encoder, and one AdamW recipe, so that the probes compare objectives."""
    from vision_jax.config import base_config, shrink_for_local
    c = base_config()
    c.task = task
    c.data.name = "shapes"
    c.data.shapes.resolution = c.data.image_size = size
    c.model = dict(name="cnn", channels=(width, 2 * width, 4 * width),
                   convs_per_stage=1, norm="batch", activation="relu", dropout=0.0)
    c.ssl = ssl_config()
    c.batch_size, c.total_steps = batch, steps
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 50
    c.log_every_steps = 25
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 200
    return shrink_for_local(c) if runlocal else c


def _section(config) -> ConfigDict:
    section = ssl_config()
    given = config.get("ssl")
    if given is not None:
        unknown = sorted(set(given) - set(section))
        if unknown:
            raise ValueError(f"config.ssl has unknown keys {unknown}; valid: {sorted(section)}")
        section.update(given.to_dict() if hasattr(given, "to_dict") else dict(given))
    return section


# ---------------------------------------------------------------------------
# The loss.


def nt_xent(z, temperature: float, valid=None):
    """NT-Xent (normalised temperature-scaled cross-entropy) over every view of the batch.

    z: [N, V, D] projections, V views per example (V = 2 for SimCLR; any
    scale: rows are L2-normalised here). valid: optional [N] mask; invalid
    examples (eval padding) are neither anchors nor negatives.

    Each of the 2N (NV) views is an anchor; its positive is the other view of
    its example (with V > 2, each other view in turn, averaged), its negatives
    the views of every other example, itself excluded. With s = cosine
    similarity / temperature,

        l(i, j) = -log( exp(s_ij) / sum_{k != i} exp(s_ik) ),

    and the loss is the mean of l over all ordered positive pairs (SimCLR's
    L = 1/2N sum_k [l(2k-1, 2k) + l(2k, 2k-1)]).

    Returns (per-example loss [N], per-example top-1 accuracy [N]: the
    fraction of the example's views whose most similar other view is a
    positive).
    """
    n, v, d = z.shape
    if v < 2:
        raise ValueError(f"nt_xent needs at least 2 views per example; got {v}")
    z = z.astype(jnp.float32)
    z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    # Example-major rows: views of example e are rows e*V .. e*V+V-1, so the
    # rows keep the batch's sharding (a device's rows are its own examples').
    flat = z.reshape(n * v, d)
    logits = jnp.matmul(flat, flat.T, precision=jax.lax.Precision.HIGHEST) / temperature
    example = jnp.arange(n * v) // v
    self_mask = jnp.eye(n * v, dtype=bool)
    excluded = self_mask
    if valid is not None:
        excluded = excluded | ~jnp.repeat(valid.astype(bool), v)[None, :]
    # A finite fill: exp() of it is exactly 0 beside |s| <= 1 / temperature, and
    # a padding row (all excluded) stays finite, so neither value nor gradient
    # turns NaN (NaN * 0 is still NaN).
    logits = jnp.where(excluded, _EXCLUDED, logits)
    positive = (example[:, None] == example[None, :]) & ~self_mask
    log_prob = logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    per_view = -jnp.sum(jnp.where(positive, log_prob, 0.0), axis=-1) / (v - 1)
    top1 = positive[jnp.arange(n * v), jnp.argmax(logits, axis=-1)].astype(jnp.float32)
    losses, top1 = per_view.reshape(n, v).mean(-1), top1.reshape(n, v).mean(-1)
    if valid is not None:
        losses, top1 = jnp.where(valid, losses, 0.0), jnp.where(valid, top1, 0.0)
    return losses, top1


def rotate_batch(images):
    """[B, H, W, C] -> ([B * 4, H, W, C], rotation labels [B * 4]): every image
    at 0, 90, 180 and 270 degrees (counter-clockwise), example-major."""
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"rotation needs square images; got {images.shape[1:3]}")
    rotated = jnp.stack([jnp.rot90(images, k, axes=(1, 2)) for k in range(4)], axis=1)
    labels = jnp.tile(jnp.arange(4, dtype=jnp.int32), images.shape[0])
    return rotated.reshape(-1, *images.shape[1:]), labels


# ---------------------------------------------------------------------------
# The encoder: any zoo model; its representation is the input of its `head`
# (models/layers.py: apply_with_features).


class ProjectorTail(nn.Module):
    """The rest of SimCLR's projection MLP g: ReLU, then a linear map to z.
    Its first layer is the encoder's own head (Dense to `projection_hidden`)."""

    features: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, h):
        return nn.Dense(self.features, dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=boxed(nn.initializers.lecun_normal(), "mlp", "embed"),
                        bias_init=boxed(nn.initializers.zeros, "embed"))(nn.relu(h))


class SSLTask(Task):
    """What every self-supervised method shares: an encoder from the zoo
    (`config.model`) whose head has `head_outputs` outputs, its frozen
    features, and the plumbing of params {encoder's tree, extra modules}."""

    score = "loss"

    def __init__(self, config, info, *, head_outputs: int, **dtypes):
        super().__init__(config, info, **dtypes)
        self.ssl = _section(config)
        self.model = models.build_model(config.model, num_classes=head_outputs, **dtypes)

    def encoder_params(self, params):
        """The encoder's own tree (what `self.model` applies)."""
        return params

    def features(self, params, variables, images):
        """Frozen representation float32 [B, D]: the encoder's head input, eval mode."""
        _, feats = apply_with_features(self.model, {"params": self.encoder_params(params),
                                                    **variables}, images, train=False)
        return feats

    def _init_encoder(self, rng, images):
        variables = self.model.init({"params": rng, "dropout": jax.random.fold_in(rng, 1)},
                                    images, train=False)
        return variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def _encode_train(self, params, variables, images, rng):
        """(head output, head input, new variables) in train mode."""
        (out, new_variables), feats = apply_with_features(
            self.model, {"params": self.encoder_params(params), **variables}, images,
            train=True, rngs={"dropout": rng}, mutable=list(variables.keys()))
        return out, feats, dict(new_variables)


class SimCLR(SSLTask):
    """SimCLR: NT-Xent between two augmented views, through a projection MLP."""

    def __init__(self, config, info, **dtypes):
        ssl = _section(config)
        super().__init__(config, info, head_outputs=int(ssl.projection_hidden), **dtypes)
        self.views = ViewsConfig.from_mapping(self.ssl.views)
        if self.views.num_views < 2:
            raise ValueError(f"ssl.views.num_views={self.views.num_views}: SimCLR needs 2 or more")
        if not self.ssl.temperature > 0:
            raise ValueError(f"ssl.temperature={self.ssl.temperature} must be positive")
        self.projector = ProjectorTail(int(self.ssl.projection_dim), **dtypes)

    # -- data: views instead of images -------------------------------------
    def train_iterator(self, *, global_batch_size, seed, process_index, process_count):
        from vision_jax import data
        return data.make_train_iterator(self.config.data, global_batch_size=global_batch_size,
                                        seed=seed, process_index=process_index,
                                        process_count=process_count, views=self.views)

    def eval_batches(self, split, *, global_batch_size, process_index, process_count):
        from vision_jax import data
        return data.make_eval_batches(self.config.data, split=split,
                                      global_batch_size=global_batch_size,
                                      process_index=process_index, process_count=process_count,
                                      views=self.views, views_seed=EVAL_VIEWS_SEED)

    def example_batch(self, batch_size=1):
        shape = (batch_size, self.views.num_views, *self.info.image_shape)
        return {"views": jnp.zeros(shape, jnp.float32),
                "label": jnp.zeros((batch_size,), jnp.int32)}

    def synthetic_batch(self, batch_size, seed=0):
        rng = np.random.default_rng(seed)
        shape = (batch_size, self.views.num_views, *self.info.image_shape)
        return {"views": rng.uniform(-1, 1, shape).astype(np.float32),
                "label": rng.integers(0, max(self.info.num_classes, 1), batch_size)
                .astype(np.int32)}

    # -- model -------------------------------------------------------------
    def encoder_params(self, params):
        return {k: v for k, v in params.items() if k != PROJECTOR}

    def init(self, rng, batch):
        images = batch["views"][:, 0]
        params, variables = self._init_encoder(rng, images)
        hidden = jnp.zeros((images.shape[0], int(self.ssl.projection_hidden)), jnp.float32)
        tail = self.projector.init(jax.random.fold_in(rng, 2), hidden)["params"]
        return {**params, PROJECTOR: tail}, variables

    def project(self, params, head_out):
        return self.projector.apply({"params": params[PROJECTOR]}, head_out)

    def _flatten(self, views):
        return views.reshape(-1, *views.shape[2:])  # [N, V, ...] -> [N * V, ...], example-major

    def loss(self, params, variables, batch, rng, group=None):
        views = batch["views"]
        n, v = views.shape[:2]
        # Both views in one forward pass: batch norm sees the 2N views together.
        out, _, new_variables = self._encode_train(params, variables, self._flatten(views), rng)
        z = self.project(params, out).reshape(n, v, -1)
        losses, top1 = nt_xent(z, self.ssl.temperature)
        return losses.mean(), {"contrastive_accuracy": top1.mean()}, new_variables

    def eval_step(self, params, variables, batch, rng):
        views, mask = batch["views"], batch["mask"]
        n, v = views.shape[:2]
        out = self.model.apply({"params": self.encoder_params(params), **variables},
                               self._flatten(views), train=False)
        z = self.project(params, out).reshape(n, v, -1)
        losses, top1 = nt_xent(z, self.ssl.temperature, valid=mask > 0)
        return {"loss_sum": (losses * mask).sum(), "contrastive_accuracy_sum": (top1 * mask).sum(),
                "count": mask.sum()}


class Rotation(SSLTask):
    """RotNet: predict which of 4 rotations was applied; the head is the classifier."""

    score = "accuracy"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, head_outputs=4, **dtypes)

    def init(self, rng, batch):
        return self._init_encoder(rng, batch["image"])

    def _metrics(self, logits, labels):
        losses = cross_entropy(logits, labels, 4)
        correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
        # per example: mean over its 4 rotations
        return losses.reshape(-1, 4).mean(-1), correct.reshape(-1, 4).mean(-1)

    def loss(self, params, variables, batch, rng, group=None):
        images, labels = rotate_batch(batch["image"])
        logits, _, new_variables = self._encode_train(params, variables, images, rng)
        losses, correct = self._metrics(logits, labels)
        return losses.mean(), {"accuracy": correct.mean()}, new_variables

    def eval_step(self, params, variables, batch, rng):
        images, labels = rotate_batch(batch["image"])
        logits = self.model.apply({"params": params, **variables}, images, train=False)
        losses, correct = self._metrics(logits, labels)
        mask = batch["mask"]
        return {"loss_sum": (losses * mask).sum(), "accuracy_sum": (correct * mask).sum(),
                "count": mask.sum()}
