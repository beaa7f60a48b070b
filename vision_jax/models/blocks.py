"""Blocks shared by the efficient CNN families: MobileNet v1-v3, EfficientNet, RegNet.

These families differ in their tables, not in their building blocks. One
residual block, `InvertedResidual`, covers all of them:

  MobileNetV1 depthwise-separable conv   dw kxk -> act -> pw 1x1 -> act, no shortcut
  MobileNetV2 inverted residual          [1x1 expand -> act] -> dw -> act -> 1x1 linear (+x)
  MobileNetV3 / EfficientNet MBConv      the same with squeeze-excitation after the
                                         depthwise conv (and stochastic depth)
  RegNet X/Y bottleneck (ResNeXt-style)  1x1 -> act -> grouped 3x3 -> act -> [SE] -> 1x1,
                                         projection shortcut, act after the sum

The RegNet bottleneck is the inverted residual with a group width other than
one and a bottleneck ratio of at most one (Radosavovic et al. 2020, Sec. 3.1),
so a single implementation keeps the three families' parameter layouts, names
and sharding metadata identical where they coincide.

Padding is explicit and symmetric ((k - 1) // 2 on every side), as in
torchvision, rather than XLA's 'SAME' (asymmetric for even inputs at stride 2),
so feature maps and published parameter counts match exactly.

Logical axis names (see vision_jax/sharding.py):
  dense and 1x1 convolutions    (None, None, 'conv_in', 'conv_out')
  depthwise/grouped kxk convs   (None, None, None, 'conv_out'): the third axis
      holds the input channels of one group (1 for depthwise, the group width
      for RegNet), never the model width, so it is never sharded.
  squeeze-excitation dense      ('conv_in', 'conv_out') kernels, 'conv_out' biases
  batch norm scale/bias         'norm'
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import ACTIVATIONS as _BASE_ACTIVATIONS
from vision_jax.models.layers import CONV_INIT, DENSE_INIT, boxed

# The mobile families add the piecewise-linear activations of Sandler et al.
# 2018 (ReLU6) and Howard et al. 2019 (hard swish/sigmoid) to the shared table.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    **_BASE_ACTIVATIONS,
    "relu6": nn.relu6,
    "hard_swish": nn.hard_swish,
    "hard_sigmoid": nn.hard_sigmoid,
}
SHORTCUTS = ("none", "identity", "projection")

# torchvision's MobileNet/RegNet classifier initialisation.
HEAD_INIT = DENSE_INIT


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Rounds a channel count to the nearest multiple of `divisor`.

    The rule of the TensorFlow MobileNet reference, which torchvision and the
    EfficientNet/RegNet code bases share: round half up to a multiple of
    `divisor` (at least `min_value`, default `divisor`), then add one
    `divisor` back if rounding lost more than 10% of `value`. Hardware likes
    channel counts in multiples of 8, and the published parameter counts
    depend on this exact rule.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def drop_path_rates(num_blocks: int, max_rate: float) -> list[float]:
    """Stochastic-depth rate of each block, rising linearly from 0 at the first block.

    Huang et al. 2016's linear decay rule as EfficientNet uses it (torchvision:
    block i of n drops with `max_rate * i / n`), so early blocks, which every
    later block builds on, are almost never dropped.
    """
    return [max_rate * i / num_blocks for i in range(num_blocks)]


def conv_and_norm(*, train: bool, momentum: float, epsilon: float, dtype: Any,
                  param_dtype: Any) -> tuple[Callable[..., nn.Module], Callable[..., nn.Module]]:
    """Bias-free convolution and batch-norm factories shared by a whole network.

    `momentum` is Flax's decay of the running averages (torch's momentum m is
    1 - m here).
    """
    conv = functools.partial(nn.Conv, use_bias=False, dtype=dtype, param_dtype=param_dtype)
    norm = functools.partial(
        nn.BatchNorm, use_running_average=not train, momentum=momentum, epsilon=epsilon,
        dtype=dtype, param_dtype=param_dtype,
        scale_init=boxed(nn.initializers.ones, "norm"),
        bias_init=boxed(nn.initializers.zeros, "norm"))
    return conv, norm


class ConvBN(nn.Module):
    """Convolution -> batch norm -> optional activation ('none' keeps it linear)."""

    features: int
    kernel_size: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    strides: int = 1
    groups: int = 1
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        # The input axis of a grouped kernel holds one group's channels: not shardable.
        names = (None, None, "conv_in" if self.groups == 1 else None, "conv_out")
        x = self.conv(self.features, (k, k), self.strides, padding=(k - 1) // 2,
                      feature_group_count=self.groups,
                      kernel_init=boxed(CONV_INIT, *names), name="conv")(x)
        x = self.norm(name="bn")(x)
        return x if self.activation == "none" else ACTIVATIONS[self.activation](x)


class SqueezeExcite(nn.Module):
    """Channel gating from globally pooled features (Hu et al. 2018, "Squeeze-and-Excitation").

    pool -> dense to `squeeze_features` -> activation -> dense back -> gate,
    and the input is rescaled channel-wise. The two dense layers have biases
    (torchvision implements them as 1x1 convolutions with bias, and counts them).
    MobileNetV3 gates with a hard sigmoid, EfficientNet and RegNetY with a sigmoid.
    """

    squeeze_features: int
    activation: str = "relu"
    gate: str = "sigmoid"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dense = functools.partial(
            nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype,
            kernel_init=boxed(CONV_INIT, "conv_in", "conv_out"),
            bias_init=boxed(nn.initializers.zeros, "conv_out"))
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = ACTIVATIONS[self.activation](dense(self.squeeze_features, name="reduce")(s))
        s = ACTIVATIONS[self.gate](dense(x.shape[-1], name="expand")(s))
        return x * s


class StochasticDepth(nn.Module):
    """Drops a residual branch for whole examples (Huang et al. 2016, "Deep Networks
    with Stochastic Depth"); torchvision's StochasticDepth in 'row' mode.

    At train time each example's branch is zeroed with probability `rate` and
    kept ones are scaled by 1 / (1 - rate), so the expectation is unchanged and
    evaluation is the identity. The noise comes from the 'dropout' RNG stream.
    """

    rate: float

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        # Dropout whose mask is broadcast over every non-batch axis is exactly
        # a per-example keep/drop decision.
        return nn.Dropout(self.rate, broadcast_dims=tuple(range(1, x.ndim)),
                          deterministic=not train)(x)


class InvertedResidual(nn.Module):
    """The one residual block of the efficient families (see the module docstring).

    Attributes:
      features: output channels.
      expanded: channels of the middle kxk convolution.
      expand: whether a 1x1 convolution maps the input to `expanded` channels
        (MobileNetV2 with expansion 1 and MobileNetV1 have none; RegNet always).
      kernel_size, strides: of the middle convolution (it carries the stride).
      group_width: input channels per group of the middle convolution; 1 is depthwise.
      activation: after the expansion and middle convolutions.
      se_features: squeeze width of squeeze-excitation; 0 disables it.
      se_activation, se_gate: squeeze-excitation's inner activation and gate.
      project_activation: activation after the last 1x1 convolution, or 'none'
        for the linear bottleneck of MobileNetV2 onwards (Sandler et al. 2018).
      shortcut: 'none'; 'identity' (added only when input and output shapes
        agree: MobileNetV2/V3, EfficientNet); 'projection' (strided 1x1 conv +
        BN when they do not: ResNet/RegNet).
      post_activation: activation applied after the sum (ResNet/RegNet style).
      drop_path: stochastic-depth rate of the residual branch.
    """

    features: int
    expanded: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    expand: bool = True
    kernel_size: int = 3
    strides: int = 1
    group_width: int = 1
    activation: str = "relu6"
    se_features: int = 0
    se_activation: str = "relu"
    se_gate: str = "sigmoid"
    project_activation: str = "none"
    shortcut: str = "identity"
    post_activation: str = "none"
    drop_path: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        conv_bn = functools.partial(ConvBN, conv=self.conv, norm=self.norm)
        y = x
        if self.expand:
            y = conv_bn(self.expanded, 1, activation=self.activation, name="expand")(y)
        y = conv_bn(self.expanded, self.kernel_size, strides=self.strides,
                    groups=self.expanded // self.group_width, activation=self.activation,
                    name="depthwise" if self.group_width == 1 else "grouped")(y)
        if self.se_features:
            y = SqueezeExcite(self.se_features, self.se_activation, self.se_gate,
                              dtype=self.dtype, param_dtype=self.param_dtype, name="se")(y)
        y = conv_bn(self.features, 1, activation=self.project_activation, name="project")(y)

        same_shape = self.strides == 1 and x.shape[-1] == self.features
        if self.shortcut == "none" or (self.shortcut == "identity" and not same_shape):
            out = y
        else:
            if not same_shape:
                x = conv_bn(self.features, 1, strides=self.strides, activation="none",
                            name="shortcut")(x)
            if self.drop_path:
                y = StochasticDepth(self.drop_path, name="drop_path")(y, train=train)
            out = x + y
        return out if self.post_activation == "none" else ACTIVATIONS[self.post_activation](out)


class ClassifierHead(nn.Module):
    """Global average pool -> [dense -> activation] -> dropout -> dense to float32 logits.

    The optional hidden layer is MobileNetV3's (Howard et al. 2019, Sec. 5.3).
    """

    num_classes: int
    dropout: float = 0.0
    hidden_features: int = 0
    hidden_activation: str = "hard_swish"
    kernel_init: Callable[..., jax.Array] = HEAD_INIT
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype)
        x = jnp.mean(x, axis=(1, 2))
        if self.hidden_features:
            x = dense(self.hidden_features, kernel_init=boxed(self.kernel_init, "embed", "mlp"),
                      bias_init=boxed(nn.initializers.zeros, "mlp"), name="hidden")(x)
            x = ACTIVATIONS[self.hidden_activation](x)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        logits = dense(self.num_classes, kernel_init=boxed(self.kernel_init, "embed", "classes"),
                       bias_init=boxed(nn.initializers.zeros, "classes"), name="head")(x)
        return logits.astype(jnp.float32)
