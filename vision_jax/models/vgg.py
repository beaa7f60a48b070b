"""VGG (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for
Large-Scale Image Recognition"), configurations A, B, D and E of Table 1 as
VGG-11/13/16/19, with or without batch norm, laid out as torchvision's `vgg*`
and `vgg*_bn` models so that parameter counts match theirs exactly.

Five stages of 3x3 stride-1 convolutions (padding 1, ReLU), each closed by a
2x2 max-pool, then an adaptive average pool to 7x7 and three dense layers
(4096, 4096, classes) with dropout after both hidden ones. Two torchvision
details that the counts depend on:

* with batch norm the convolutions keep their bias, although the norm's
  shift makes it redundant (2 x 2,752 .. 2 x 5,504 extra parameters);
* the adaptive pool feeds the classifier 512*7*7 = 25,088 features whatever
  the input size. At 32x32 the five pools leave a 1x1 map, which the pool
  repeats 49 times, as torchvision's AdaptiveAvgPool2d does, so the same
  network (and its head) trains on 32px data without a separate variant.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import (
    CONV_INIT, DENSE_INIT, adaptive_avg_pool, boxed, check_choice, check_multiplier,
    check_pool_ratio, check_positive, check_rate, scaled)
from vision_jax.models.toolbox import POOLS, pool

# Channels of the five stages and, per depth, convolutions per stage
# (Simonyan & Zisserman 2015, Table 1: A = 11, B = 13, D = 16, E = 19 layers).
STAGE_WIDTHS = (64, 128, 256, 512, 512)
DEPTHS: dict[int, tuple[int, int, int, int, int]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
POOL_SIZE = (7, 7)
HIDDEN = 4096


class VGG(nn.Module):
    """VGG-{11,13,16,19} classifier.

    Attributes:
      depth: one of DEPTHS (weight layers: convolutions + 3 dense).
      batch_norm: batch norm after every convolution (torchvision's `_bn` models).
      width_mult: scales every convolution and the hidden dense layers.
      dropout: rate after each hidden dense layer (0.5 in the paper).
      bn_momentum: running-average decay (torchvision's momentum=0.1 is 0.9 here).
      pool: 'max' (the paper's 2x2) or 'fractional_max' (Graham 2014): each of
        the five pools shrinks the map by `pool_ratio` instead of 2, so small
        images keep more resolution (32px: 22, 15, 10, 7, 4 instead of 1x1);
        'avg' for 2x2 average pooling.
    """

    num_classes: int
    depth: int = 16
    batch_norm: bool = False
    width_mult: float = 1.0
    dropout: float = 0.5
    bn_momentum: float = 0.9
    pool: str = "max"
    pool_ratio: float = math.sqrt(2)
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        check_choice(owner, "depth", self.depth, DEPTHS)
        check_choice(owner, "batch_norm", self.batch_norm, (False, True))
        check_multiplier(owner, "width_mult", self.width_mult)
        check_rate(owner, "dropout", self.dropout)
        check_rate(owner, "bn_momentum", self.bn_momentum)
        check_choice(owner, "pool", self.pool, POOLS)
        check_pool_ratio(owner, "pool_ratio", self.pool_ratio)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        x = images.astype(self.dtype)
        for stage, (width, convs) in enumerate(zip(STAGE_WIDTHS, DEPTHS[self.depth])):
            for i in range(convs):
                name = f"stage{stage + 1}_conv{i + 1}"
                x = nn.Conv(scaled(width, self.width_mult), (3, 3), padding=1,
                            dtype=self.dtype, param_dtype=self.param_dtype,
                            kernel_init=boxed(CONV_INIT, None, None, "conv_in", "conv_out"),
                            bias_init=boxed(nn.initializers.zeros, "conv_out"), name=name)(x)
                if self.batch_norm:
                    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                                     epsilon=1e-5, dtype=self.dtype, param_dtype=self.param_dtype,
                                     scale_init=boxed(nn.initializers.ones, "norm"),
                                     bias_init=boxed(nn.initializers.zeros, "norm"),
                                     name=f"stage{stage + 1}_bn{i + 1}")(x)
                x = nn.relu(x)
            x = pool(self.pool, x, ratio=self.pool_ratio, module=self, train=train)
        x = adaptive_avg_pool(x, POOL_SIZE).reshape(x.shape[0], -1)

        hidden = scaled(HIDDEN, self.width_mult)

        def dense(features, names, name):
            return nn.Dense(features, dtype=self.dtype, param_dtype=self.param_dtype,
                            kernel_init=boxed(DENSE_INIT, *names),
                            bias_init=boxed(nn.initializers.zeros, names[1]), name=name)

        x = nn.relu(dense(hidden, ("embed", "mlp"), "fc1")(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.relu(dense(hidden, ("mlp", "embed"), "fc2")(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        logits = dense(self.num_classes, ("embed", "classes"), "head")(x)
        return logits.astype(jnp.float32)
