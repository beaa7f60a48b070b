"""A plain convolutional network: the course's first CNN.

Each stage is `convs_per_stage` 3x3 convolutions (each followed by optional
normalisation and the activation) and a pooling that shrinks the resolution;
after the last stage, global average pooling and a dense head. Small, fast on
a CPU, and translation-equivariant where an MLP is not: with channels
(32, 64, 128) it learns the `shapes` task to over 90% in minutes on two CPU
cores (see configs/default.py).

The training toolbox's model-side options (all default to the network of
configs/default.py, unchanged):
  kernel_init the convolutions' initialisation (layers.INITIALIZERS); He normal
  activation  layers.ACTIVATIONS
  norm        none / batch / layer / group / instance (toolbox.make_norm), with
              `norm_groups` groups for group norm
  pool        'max' or 'avg' 2x2 (halves the resolution), or 'fractional_max'
              (Graham 2014): pseudo-random regions that shrink it by
              `pool_ratio` in (1, 2), redrawn every training step; three stages
              at sqrt(2) take 32x32 to 22, 15 and 10
  dropout     before the head; `drop_connect` on the head's weights
  width_mult, depth_mult
              scale every stage's channels (rounded) and its number of
              convolutions (rounded up, as EfficientNet rounds repeats), so
              the scaling rules of vision_jax/scaling/rules.py apply to it
Each activation is sown into the 'intermediates' collection for
vision_jax/initstats.py, and passes through `perturb` (a no-op unless a
'perturbations' collection is given) so that Grad-CAM can differentiate with
respect to it.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import (
    ACTIVATIONS, INITIALIZERS, boxed, check_choice, check_multiplier, check_pool_ratio,
    check_positive, check_rate)
from vision_jax.models.toolbox import (
    NORM_PREFIXES, NORMS, POOLS, DropConnectDense, check_norm_groups, make_norm, pool)



class CNN(nn.Module):
    num_classes: int
    channels: tuple[int, ...] = (32, 64, 128)
    convs_per_stage: int = 1
    width_mult: float = 1.0
    depth_mult: float = 1.0
    kernel_init: str = "he_normal"  # He et al. 2015, for the ReLU default
    norm: str = "none"
    norm_groups: int = 32  # Wu & He 2018, Sec. 3.1
    activation: str = "relu"
    pool: str = "max"
    pool_ratio: float = math.sqrt(2)  # only read by pool='fractional_max'
    dropout: float = 0.0
    drop_connect: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        if isinstance(self.channels, int) or not self.channels or not all(
                isinstance(c, int) and c > 0 for c in self.channels):
            raise ValueError(f"{owner}: channels={self.channels!r} must be a non-empty "
                             "sequence of positive integers, e.g. (32, 64, 128)")
        check_positive(owner, "convs_per_stage", self.convs_per_stage)
        check_multiplier(owner, "width_mult", self.width_mult)
        check_multiplier(owner, "depth_mult", self.depth_mult)
        check_choice(owner, "kernel_init", self.kernel_init, INITIALIZERS)
        check_choice(owner, "norm", self.norm, NORMS)
        check_norm_groups(owner, self.norm, self.norm_groups, self.widths)
        check_choice(owner, "activation", self.activation, ACTIVATIONS)
        check_choice(owner, "pool", self.pool, POOLS)
        check_pool_ratio(owner, "pool_ratio", self.pool_ratio)
        check_rate(owner, "dropout", self.dropout)
        check_rate(owner, "drop_connect", self.drop_connect)
        super().__post_init__()

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels of each stage after `width_mult`."""
        return tuple(max(1, round(c * self.width_mult)) for c in self.channels)

    @property
    def depth(self) -> int:
        """Convolutions per stage after `depth_mult`."""
        return math.ceil(self.convs_per_stage * self.depth_mult)

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        norm = make_norm(self.norm, train=train, groups=self.norm_groups, dtype=self.dtype,
                         param_dtype=self.param_dtype)
        x = images.astype(self.dtype)
        for stage, width in enumerate(self.widths):
            for i in range(self.depth):
                # A norm's bias makes the convolution's redundant.
                x = nn.Conv(width, (3, 3), padding="SAME", use_bias=self.norm == "none",
                            dtype=self.dtype, param_dtype=self.param_dtype,
                            kernel_init=boxed(INITIALIZERS[self.kernel_init], None, None,
                                              "conv_in", "conv_out"),
                            bias_init=boxed(nn.initializers.zeros, "conv_out"),
                            name=f"conv{stage}_{i}")(x)
                x = act(norm(x, f"{NORM_PREFIXES.get(self.norm, '')}{stage}_{i}"))
                self.sow("intermediates", f"conv{stage}_{i}_act", x)
                if not self.is_initializing():
                    # A no-op unless 'perturbations' are passed in: their gradient is
                    # the activation's, which Grad-CAM needs (vision_jax/explain.py).
                    # Never created at init, so checkpoints are unchanged.
                    x = self.perturb(f"conv{stage}_{i}_act", x)
            x = pool(self.pool, x, ratio=self.pool_ratio, module=self, train=train)
        x = x.mean(axis=(1, 2))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        # The head keeps LeCun normal (Flax's Dense default) whatever `kernel_init` says.
        logits = DropConnectDense(
            self.num_classes, rate=self.drop_connect, dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=boxed(nn.initializers.lecun_normal(), "embed", "classes"),
            bias_init=boxed(nn.initializers.zeros, "classes"), name="head")(x, train=train)
        return logits.astype(jnp.float32)
