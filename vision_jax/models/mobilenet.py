"""MobileNet v1, v2 and v3: depthwise-separable networks for mobile budgets.

  v1  Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks
      for Mobile Vision Applications" (Table 1).
  v2  Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear
      Bottlenecks" (Table 2).
  v3  Howard et al. 2019, "Searching for MobileNetV3" (Tables 1 and 2).

All three are tables of `blocks.InvertedResidual`. Channel counts scaled by
`width_mult` are rounded with `blocks.make_divisible` (multiples of 8), as in
torchvision, whose parameter counts the tests reproduce exactly for v2 and v3
(3,504,872; Large 5,483,032; Small 2,542,856 at 1000 classes). torchvision has
no v1; ours has the paper's 4.2M parameters: 4,231,976 counting batch-norm
scale and bias (not running statistics) and the classifier's bias.

Batch-norm settings follow the reference implementations: torch defaults for
v1/v2 (eps 1e-5, decay 0.9) and eps 1e-3, decay 0.99 for v3.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models import blocks
from vision_jax.models.blocks import ClassifierHead, ConvBN, InvertedResidual, make_divisible
from vision_jax.models.layers import check_choice, check_multiplier, check_positive, check_rate

# Howard et al. 2017, Table 1: after a 3x3/2 stem with 32 channels, 13
# depthwise-separable blocks as (output channels, stride). The paper's table
# prints stride 2 for the last block but keeps 7x7 maps for its 7x7 average
# pool; every reference implementation uses stride 1 there, as we do.
V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

# Sandler et al. 2018, Table 2: stages as (expansion t, channels c, repeats n,
# stride s of the first block), after a 3x3/2 stem with 32 channels; head 1280.
V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

# Howard et al. 2019, Tables 1 (Large) and 2 (Small): blocks as (kernel,
# expanded channels, output channels, squeeze-excite?, activation, stride),
# after a 3x3/2 stem with 16 channels and hard swish. Then a 1x1 conv to
# `last_conv` channels, pooling, a `hidden`-wide dense layer with hard swish.
V3_VARIANTS: dict[str, dict[str, Any]] = {
    "large": dict(last_conv=960, hidden=1280, blocks=(
        (3, 16, 16, False, "relu", 1),
        (3, 64, 24, False, "relu", 2),
        (3, 72, 24, False, "relu", 1),
        (5, 72, 40, True, "relu", 2),
        (5, 120, 40, True, "relu", 1),
        (5, 120, 40, True, "relu", 1),
        (3, 240, 80, False, "hard_swish", 2),
        (3, 200, 80, False, "hard_swish", 1),
        (3, 184, 80, False, "hard_swish", 1),
        (3, 184, 80, False, "hard_swish", 1),
        (3, 480, 112, True, "hard_swish", 1),
        (3, 672, 112, True, "hard_swish", 1),
        (5, 672, 160, True, "hard_swish", 2),
        (5, 960, 160, True, "hard_swish", 1),
        (5, 960, 160, True, "hard_swish", 1),
    )),
    "small": dict(last_conv=576, hidden=1024, blocks=(
        (3, 16, 16, True, "relu", 2),
        (3, 72, 24, False, "relu", 2),
        (3, 88, 24, False, "relu", 1),
        (5, 96, 40, True, "hard_swish", 2),
        (5, 240, 40, True, "hard_swish", 1),
        (5, 240, 40, True, "hard_swish", 1),
        (5, 120, 48, True, "hard_swish", 1),
        (5, 144, 48, True, "hard_swish", 1),
        (5, 288, 96, True, "hard_swish", 2),
        (5, 576, 96, True, "hard_swish", 1),
        (5, 576, 96, True, "hard_swish", 1),
    )),
}


def _check_common(module: nn.Module) -> str:
    owner = type(module).__name__
    check_positive(owner, "num_classes", module.num_classes)
    check_multiplier(owner, "width_mult", module.width_mult)
    check_rate(owner, "dropout", module.dropout)
    if not 0.0 <= module.bn_momentum < 1.0:
        raise ValueError(f"{owner}: bn_momentum={module.bn_momentum!r} must lie in [0, 1)")
    return owner


class _MobileNet(nn.Module):
    """Fields and the conv/BN factories the three versions share."""

    def factories(self, train: bool):
        return blocks.conv_and_norm(train=train, momentum=self.bn_momentum,
                                    epsilon=self.bn_epsilon, dtype=self.dtype,
                                    param_dtype=self.param_dtype)

    def head(self, x: jax.Array, *, train: bool, hidden: int = 0) -> jax.Array:
        return ClassifierHead(self.num_classes, self.dropout, hidden_features=hidden,
                              dtype=self.dtype, param_dtype=self.param_dtype,
                              name="classifier")(x, train=train)


class MobileNetV1(_MobileNet):
    """MobileNetV1: a 3x3 stem and 13 depthwise-separable blocks (no residuals).

    Attributes:
      width_mult: the paper's width multiplier alpha (Sec. 3.3).
      activation: 'relu' as in the paper ('relu6' in TensorFlow's release).
      dropout: before the classifier; the paper gives none.
    """

    num_classes: int
    width_mult: float = 1.0
    activation: str = "relu"
    dropout: float = 0.0
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        check_choice(_check_common(self), "activation", self.activation, blocks.ACTIVATIONS)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        conv, norm = self.factories(train)
        x = images.astype(self.dtype)
        x = ConvBN(make_divisible(32 * self.width_mult), 3, conv, norm, strides=2,
                   activation=self.activation, name="stem")(x)
        for i, (features, stride) in enumerate(V1_BLOCKS):
            c = make_divisible(features * self.width_mult)
            # A depthwise-separable convolution is the inverted residual without
            # expansion or shortcut whose pointwise convolution keeps its activation.
            x = InvertedResidual(
                c, expanded=x.shape[-1], conv=conv, norm=norm, expand=False, strides=stride,
                activation=self.activation, project_activation=self.activation,
                shortcut="none", dtype=self.dtype, param_dtype=self.param_dtype,
                name=f"block{i + 1}")(x, train=train)
        return self.head(x, train=train)


class MobileNetV2(_MobileNet):
    """MobileNetV2: inverted residuals with linear bottlenecks and ReLU6.

    Attributes:
      width_mult: scales every width; the 1280-wide head only grows (Sandler
        et al. 2018, Sec. 4: "we do not apply the width multiplier to the last
        convolutional layer" for multipliers below one).
      dropout: before the classifier (0.2 in torchvision's recipe).
    """

    num_classes: int
    width_mult: float = 1.0
    dropout: float = 0.2
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        _check_common(self)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        conv, norm = self.factories(train)
        x = images.astype(self.dtype)
        x = ConvBN(make_divisible(32 * self.width_mult), 3, conv, norm, strides=2,
                   activation="relu6", name="stem")(x)
        n = 0
        for t, c, repeats, stride in V2_STAGES:
            features = make_divisible(c * self.width_mult)
            for j in range(repeats):
                n += 1
                x = InvertedResidual(
                    features, expanded=round(x.shape[-1] * t), conv=conv, norm=norm,
                    expand=t != 1, strides=stride if j == 0 else 1, activation="relu6",
                    dtype=self.dtype, param_dtype=self.param_dtype,
                    name=f"block{n}")(x, train=train)
        x = ConvBN(make_divisible(1280 * max(1.0, self.width_mult)), 1, conv, norm,
                   activation="relu6", name="last_conv")(x)
        return self.head(x, train=train)


class MobileNetV3(_MobileNet):
    """MobileNetV3-Large/Small: MobileNetV2 blocks with squeeze-excitation and hard swish.

    Attributes:
      variant: 'large' or 'small' (V3_VARIANTS).
      width_mult: scales every width of the table, the hidden head layer included.
      dropout: before the classifier (0.2 in torchvision's recipe).
    """

    num_classes: int
    variant: str = "large"
    width_mult: float = 1.0
    dropout: float = 0.2
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        check_choice(_check_common(self), "variant", self.variant, V3_VARIANTS)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        conv, norm = self.factories(train)
        spec = V3_VARIANTS[self.variant]

        def width(c):
            return make_divisible(c * self.width_mult)

        x = images.astype(self.dtype)
        x = ConvBN(width(16), 3, conv, norm, strides=2, activation="hard_swish",
                   name="stem")(x)
        for i, (kernel, expanded, out, se, act, stride) in enumerate(spec["blocks"]):
            expanded = width(expanded)
            x = InvertedResidual(
                width(out), expanded=expanded, conv=conv, norm=norm,
                expand=expanded != x.shape[-1], kernel_size=kernel, strides=stride,
                activation=act, se_features=make_divisible(expanded // 4) if se else 0,
                se_activation="relu", se_gate="hard_sigmoid",
                dtype=self.dtype, param_dtype=self.param_dtype,
                name=f"block{i + 1}")(x, train=train)
        x = ConvBN(width(spec["last_conv"]), 1, conv, norm, activation="hard_swish",
                   name="last_conv")(x)
        return self.head(x, train=train, hidden=width(spec["hidden"]))
