"""GoogLeNet / Inception v1 (Szegedy et al. 2015, "Going Deeper with
Convolutions"), in the layout of torchvision's `googlenet` (6,624,904
parameters at 1000 classes without the auxiliary classifiers, 13,004,888
with them).

Every convolution is conv (no bias) + batch norm (eps 1e-3) + ReLU, as in
torchvision, which added batch norm after Ioffe & Szegedy 2015; the paper's
network had neither batch norm nor this exact count. torchvision's third
inception branch uses a 3x3 convolution where the paper's Table 1 has 5x5;
the count above depends on it, so it is kept, and `branch3_kernel=5` gives the
paper's branch.

Max-pools between stages round their output size up (PyTorch's
`ceil_mode=True`), which is what keeps the stages' sizes at 224px
(112-56-28-14-7) and lets 32px inputs through (16-8-4-2-1).

Auxiliary classifiers (paper Sec. 6, on inception 4a and 4d) are off by
default. When on, they are built at initialisation and run in training, and
their logits are sown into the 'intermediates' collection as `aux_logits`
(apply with mutable=['intermediates'] to read them); the returned logits are
always the main head's, so the trainer's loss is unchanged and a loss that
wants the paper's 0.3-weighted auxiliary terms can add them.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import (
    adaptive_avg_pool, boxed, check_choice, check_multiplier, check_positive, check_rate,
    scaled)


class Inception(NamedTuple):
    """Output channels of the four branches (paper Table 1 columns)."""
    b1: int           # 1x1
    b2_reduce: int    # 1x1 before the 3x3
    b2: int           # 3x3
    b3_reduce: int    # 1x1 before the 3x3 (5x5 in the paper)
    b3: int
    pool_proj: int    # 1x1 after the 3x3 max-pool


class MaxPool(NamedTuple):
    """A ceil-mode max-pool between inception stages."""
    window: int
    stride: int


# Szegedy et al. 2015, Table 1 (identical in torchvision's GoogLeNet, whose
# pool before stage 5 is 2x2 where the table lists 3x3; both give 7x7 at 224px).
STAGES: tuple[tuple[str, Inception] | MaxPool, ...] = (
    ("3a", Inception(64, 96, 128, 16, 32, 32)),
    ("3b", Inception(128, 128, 192, 32, 96, 64)),
    MaxPool(3, 2),
    ("4a", Inception(192, 96, 208, 16, 48, 64)),
    ("4b", Inception(160, 112, 224, 24, 64, 64)),
    ("4c", Inception(128, 128, 256, 24, 64, 64)),
    ("4d", Inception(112, 144, 288, 32, 64, 64)),
    ("4e", Inception(256, 160, 320, 32, 128, 128)),
    MaxPool(2, 2),
    ("5a", Inception(256, 160, 320, 32, 128, 128)),
    ("5b", Inception(384, 192, 384, 48, 128, 128)),
)
AUX_AFTER = ("4a", "4d")  # paper Sec. 6
BRANCH3_KERNELS = (3, 5)

# torchvision initialises GoogLeNet's convolutions and dense layers with
# N(0, 0.01) (truncated at +-2, i.e. 200 standard deviations: never).
_INIT = nn.initializers.normal(0.01)


def max_pool_ceil(x: jax.Array, window: int, stride: int) -> jax.Array:
    """Unpadded max-pool whose output size rounds up (PyTorch's ceil_mode=True).

    The last window may hang over the bottom/right edge (the overhang is padded
    with -inf), but, as in PyTorch, it must start inside the input.
    """
    pads = []
    for n in x.shape[1:3]:
        out = math.ceil((n - window) / stride) + 1
        if (out - 1) * stride >= n:
            out -= 1
        pads.append((0, max(0, (out - 1) * stride + window - n)))
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding=pads)


class ConvBN(nn.Module):
    """Convolution without bias, batch norm, ReLU (torchvision's BasicConv2d)."""

    features: int
    kernel: int
    stride: int = 1
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = nn.BatchNorm

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.conv(self.features, (self.kernel, self.kernel), self.stride,
                      padding=self.kernel // 2, name="conv")(x)
        return nn.relu(self.norm(name="bn")(x))


class InceptionBlock(nn.Module):
    spec: Inception
    branch3_kernel: int
    conv_bn: Callable[..., nn.Module]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s, conv_bn = self.spec, self.conv_bn
        b1 = conv_bn(s.b1, 1, name="b1")(x)
        b2 = conv_bn(s.b2, 3, name="b2")(conv_bn(s.b2_reduce, 1, name="b2_reduce")(x))
        b3 = conv_bn(s.b3, self.branch3_kernel, name="b3")(
            conv_bn(s.b3_reduce, 1, name="b3_reduce")(x))
        pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
        b4 = conv_bn(s.pool_proj, 1, name="pool_proj")(pooled)
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class GoogLeNet(nn.Module):
    """GoogLeNet classifier.

    Attributes:
      width_mult: scales every convolution (1.0 is the published model);
        the auxiliary heads' 128/1024 widths scale with it.
      dropout: rate before the final dense layer (0.2 in torchvision; the
        paper used 0.4).
      aux_logits: build the two auxiliary classifiers (see the module docstring).
      aux_dropout: their dropout rate (0.7, paper Sec. 6).
      branch3_kernel: 3 (torchvision) or 5 (the paper).
      bn_momentum: running-average decay (torchvision's momentum=0.1 is 0.9 here).
    """

    num_classes: int
    width_mult: float = 1.0
    dropout: float = 0.2
    aux_logits: bool = False
    aux_dropout: float = 0.7
    branch3_kernel: int = 3
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        check_multiplier(owner, "width_mult", self.width_mult)
        check_rate(owner, "dropout", self.dropout)
        check_choice(owner, "aux_logits", self.aux_logits, (False, True))
        check_rate(owner, "aux_dropout", self.aux_dropout)
        check_choice(owner, "branch3_kernel", self.branch3_kernel, BRANCH3_KERNELS)
        check_rate(owner, "bn_momentum", self.bn_momentum)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        conv = functools.partial(
            nn.Conv, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
            kernel_init=boxed(_INIT, None, None, "conv_in", "conv_out"))
        norm = functools.partial(
            nn.BatchNorm, use_running_average=not train, momentum=self.bn_momentum,
            epsilon=1e-3, dtype=self.dtype, param_dtype=self.param_dtype,
            scale_init=boxed(nn.initializers.ones, "norm"),
            bias_init=boxed(nn.initializers.zeros, "norm"))
        m = self.width_mult

        def conv_bn(features, kernel, stride=1, *, name):
            return ConvBN(scaled(features, m), kernel, stride, conv=conv, norm=norm, name=name)

        x = images.astype(self.dtype)
        x = max_pool_ceil(conv_bn(64, 7, 2, name="conv1")(x), 3, 2)
        x = conv_bn(64, 1, name="conv2")(x)
        x = max_pool_ceil(conv_bn(192, 3, name="conv3")(x), 3, 2)
        run_aux = self.aux_logits and (train or self.is_initializing())
        for stage in STAGES:
            if isinstance(stage, MaxPool):
                x = max_pool_ceil(x, stage.window, stage.stride)
                continue
            name, spec = stage
            x = InceptionBlock(spec, self.branch3_kernel, conv_bn, name=f"inception{name}")(x)
            if run_aux and name in AUX_AFTER:
                self.sow("intermediates", "aux_logits",
                         self._aux_head(x, conv_bn, train, name=f"aux{name}"))

        x = nn.Dropout(self.dropout, deterministic=not train)(x.mean(axis=(1, 2)))
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                          kernel_init=boxed(_INIT, "embed", "classes"),
                          bias_init=boxed(nn.initializers.zeros, "classes"), name="head")(x)
        return logits.astype(jnp.float32)

    def _aux_head(self, x, conv_bn, train: bool, *, name: str) -> jax.Array:
        """Paper Sec. 6 / torchvision InceptionAux: pool to 4x4, 1x1 conv to 128,
        dense 1024 + ReLU, dropout, dense to the classes."""
        dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype)
        x = adaptive_avg_pool(x, (4, 4))
        x = conv_bn(128, 1, name=f"{name}_conv")(x).reshape(x.shape[0], -1)
        x = nn.relu(dense(scaled(1024, self.width_mult),
                          kernel_init=boxed(_INIT, "embed", "mlp"),
                          bias_init=boxed(nn.initializers.zeros, "mlp"), name=f"{name}_fc1")(x))
        x = nn.Dropout(self.aux_dropout, deterministic=not train)(x)
        logits = dense(self.num_classes, kernel_init=boxed(_INIT, "mlp", "classes"),
                       bias_init=boxed(nn.initializers.zeros, "classes"), name=f"{name}_fc2")(x)
        return logits.astype(jnp.float32)
