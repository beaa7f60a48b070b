"""ResNets (He et al. 2016, "Deep Residual Learning for Image Recognition"),
and ResNeXts (Xie et al. 2017, "Aggregated Residual Transformations for Deep
Neural Networks") as their grouped-convolution option.

The layout is torchvision's "v1.5": in bottleneck blocks the stride sits on the
3x3 convolution rather than the first 1x1, and a shortcut that changes shape is
a strided 1x1 convolution followed by batch norm. Padding is explicit and
symmetric (as in torchvision) rather than XLA's 'SAME', so feature-map sizes
and parameter counts match the published models exactly.

ResNeXt replaces a bottleneck's 3x3 convolution by a grouped one (`groups`
groups of `width_per_group` channels at the standard width 64) and widens the
block's inner layers to match, exactly as torchvision's `groups` and
`width_per_group` arguments do: ResNeXt-50 32x4d is depth=50, groups=32,
width_per_group=4; Wide ResNet-50-2 (Zagoruyko & Komodakis 2016) is
width_per_group=128. The inner width of stage i is
int(width * 2**i * width_per_group / 64) * groups, which is `width * 2**i`
for a plain ResNet.

BiT options (Kolesnikov et al. 2020, "Big Transfer (BiT)", Sec. 2.1, 4.3):
`norm='group'` replaces every batch norm by group norm (Wu & He 2018) with
`norm_groups` groups (32 in both papers; it must divide every normalised
width), and `weight_standardization=True` standardises each convolution
kernel per output channel before use (Qiao et al. 2019, "Micro-Batch
Training with Batch-Channel Normalization and Weight Standardization"):
W' = (W - mean) / sqrt(var + 1e-10) over (kh, kw, in), BiT's epsilon. The
stored parameter is the raw W, so the parameter tree and count are those of
the plain model; the head (a dense layer) is not standardised. Group norm
keeps the norm layers' names (bn1, ..., proj_bn) and their scale and bias, and
has no running statistics. Both options default off, and the defaults build
exactly the model of before.

Batch norm keeps running statistics in the 'batch_stats' collection. Under
`jax.jit` over a batch sharded across devices the batch mean and variance are
computed over the global batch by the compiler, so no `axis_name` is needed.
Flax's BatchNorm creates its running statistics without an initializer hook,
so those leaves are plain arrays (replicated by `sharding.logical_to_sharding`);
its scale and bias carry the logical name 'norm'.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import CONV_INIT, boxed, check_choice, check_positive
from vision_jax.models.toolbox import check_norm_groups

# depth -> (blocks per stage, bottleneck?). He et al. 2016, Table 1.
DEPTHS: dict[int, tuple[tuple[int, int, int, int], bool]] = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}
STEMS = ("imagenet", "cifar")
# (depth, groups, width_per_group) of the named ResNeXts, Xie et al. 2017 Table 1
# and torchvision's resnext50_32x4d / resnext101_32x8d / resnext101_64x4d.
RESNEXTS: dict[str, tuple[int, int, int]] = {
    "50_32x4d": (50, 32, 4),
    "101_32x8d": (101, 32, 8),
    "101_64x4d": (101, 64, 4),
}

_CONV_NAMES = (None, None, "conv_in", "conv_out")
NORMS = ("batch", "group")
WS_EPSILON = 1e-10  # BiT's (google-research/big_transfer, StdConv)


def standardize_kernel(kernel: jax.Array, epsilon: float = WS_EPSILON) -> jax.Array:
    """Weight standardisation of a conv kernel [kh, kw, in, out]: zero mean and unit
    (biased) variance per output channel, over the other three axes."""
    kernel = kernel - jnp.mean(kernel, axis=(0, 1, 2), keepdims=True)
    return kernel * jax.lax.rsqrt(jnp.mean(jnp.square(kernel), axis=(0, 1, 2), keepdims=True)
                                  + epsilon)


class StdConv(nn.Conv):
    """nn.Conv whose kernel is weight-standardised on every call (BiT's StdConv).

    Same parameters as nn.Conv; the raw kernel is stored and trained, and its
    standardised version is what the convolution uses."""

    def param(self, name, init_fn, *init_args, unbox=True, **init_kwargs):
        value = super().param(name, init_fn, *init_args, unbox=unbox, **init_kwargs)
        if name == "kernel":
            value = standardize_kernel(nn.unbox(value))
        return value


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34)."""

    filters: int
    strides: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    zero_init_residual: bool

    expansion = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        residual = x
        y = self.conv(self.filters, (3, 3), self.strides, padding=1, name="conv1")(x)
        y = nn.relu(self.norm(name="bn1")(y))
        y = self.conv(self.filters, (3, 3), 1, padding=1, name="conv2")(y)
        y = self.norm(name="bn2", scale_init=_last_scale_init(self.zero_init_residual))(y)
        return nn.relu(_shortcut(self, residual, y.shape[-1]) + y)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (strided, v1.5; grouped in ResNeXt) -> 1x1 expand to
    4 * filters (ResNet-50/101/152, ResNeXt)."""

    filters: int
    strides: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    zero_init_residual: bool
    groups: int = 1
    width_per_group: int = 64

    expansion = 4

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        residual = x
        inner = bottleneck_width(self.filters, self.groups, self.width_per_group)
        y = self.conv(inner, (1, 1), 1, padding=0, name="conv1")(x)
        y = nn.relu(self.norm(name="bn1")(y))
        y = self.conv(inner, (3, 3), self.strides, padding=1, feature_group_count=self.groups,
                      name="conv2")(y)
        y = nn.relu(self.norm(name="bn2")(y))
        y = self.conv(self.filters * self.expansion, (1, 1), 1, padding=0, name="conv3")(y)
        y = self.norm(name="bn3", scale_init=_last_scale_init(self.zero_init_residual))(y)
        return nn.relu(_shortcut(self, residual, y.shape[-1]) + y)


def bottleneck_width(filters: int, groups: int, width_per_group: int) -> int:
    """Channels of a bottleneck's inner layers (torchvision's rule; see above)."""
    return int(filters * width_per_group / 64) * groups


def _last_scale_init(zero: bool):
    # Zero-initialising the last BN scale makes every block start as the
    # identity, which trains large-batch ResNets more stably (Goyal et al.
    # 2017, "Accurate, Large Minibatch SGD", Sec. 5.1).
    return boxed(nn.initializers.zeros if zero else nn.initializers.ones, "norm")


def _shortcut(block, x: jax.Array, features: int) -> jax.Array:
    """Identity, or strided 1x1 conv + BN when the block changes the shape."""
    if block.strides == 1 and x.shape[-1] == features:
        return x
    x = block.conv(features, (1, 1), block.strides, padding=0, name="proj_conv")(x)
    return block.norm(name="proj_bn")(x)


class ResNet(nn.Module):
    """ResNet-{18,34,50,101,152} classifier.

    Attributes:
      depth: one of DEPTHS.
      width: channels of the stem and first stage; stage i has width * 2**i
        (times 4 at the output of bottleneck blocks).
      stem: 'imagenet' (7x7/2 conv + 3x3/2 max-pool, for ~224px inputs) or
        'cifar' (3x3/1 conv, no pooling, for 32px inputs).
      groups: groups of the bottleneck 3x3 convolution (ResNeXt's cardinality;
        1 for ResNet). Bottleneck depths only.
      width_per_group: channels per group at width 64 (ResNeXt's "d"; 64 for
        ResNet, 128 for Wide ResNet-*-2). Bottleneck depths only.
      zero_init_residual: start each block's last BN scale at zero.
      bn_momentum: running-average decay (torchvision's momentum=0.1 is 0.9 here).
      norm: 'batch' or 'group' (BiT); norm_groups: group norm's number of groups.
      weight_standardization: standardise conv kernels (BiT; see the module docstring).
    """

    num_classes: int
    depth: int = 50
    width: int = 64
    stem: str = "imagenet"
    groups: int = 1
    width_per_group: int = 64
    zero_init_residual: bool = True
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    norm: str = "batch"
    norm_groups: int = 32  # Wu & He 2018, Sec. 3.1; Kolesnikov et al. 2020
    weight_standardization: bool = False
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        check_choice(owner, "depth", self.depth, DEPTHS)
        check_positive(owner, "width", self.width)
        check_choice(owner, "stem", self.stem, STEMS)
        check_positive(owner, "groups", self.groups)
        check_positive(owner, "width_per_group", self.width_per_group)
        if not DEPTHS[self.depth][1] and (self.groups, self.width_per_group) != (1, 64):
            raise ValueError(
                f"{owner}: groups={self.groups}, width_per_group={self.width_per_group} need "
                f"a bottleneck depth; valid choices for depth: "
                f"{[d for d, (_, bottleneck) in DEPTHS.items() if bottleneck]}")
        if bottleneck_width(self.width, self.groups, self.width_per_group) < 1:
            raise ValueError(
                f"{owner}: width={self.width} with width_per_group={self.width_per_group} "
                "leaves no channels per group; int(width * width_per_group / 64) must be >= 1")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"{owner}: bn_momentum={self.bn_momentum!r} must lie in [0, 1)")
        check_choice(owner, "norm", self.norm, NORMS)
        check_norm_groups(owner, self.norm, self.norm_groups, self.normalised_widths)
        if not isinstance(self.weight_standardization, bool):
            raise ValueError(f"{owner}: weight_standardization={self.weight_standardization!r} "
                             "must be True or False")
        super().__post_init__()

    @property
    def normalised_widths(self) -> list[int]:
        """Channels of every normalised activation: the stem, and per stage the
        block output (and a bottleneck's inner width)."""
        _, bottleneck = DEPTHS[self.depth]
        widths = [self.width]
        for i in range(4):
            filters = self.width * 2**i
            if bottleneck:
                widths += [bottleneck_width(filters, self.groups, self.width_per_group),
                           filters * Bottleneck.expansion]
            else:
                widths.append(filters)
        return sorted(set(widths))

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        conv = functools.partial(
            StdConv if self.weight_standardization else nn.Conv, use_bias=False,
            dtype=self.dtype, param_dtype=self.param_dtype,
            kernel_init=boxed(CONV_INIT, *_CONV_NAMES))
        norm_kwargs = dict(
            epsilon=self.bn_epsilon, dtype=self.dtype, param_dtype=self.param_dtype,
            scale_init=boxed(nn.initializers.ones, "norm"),
            bias_init=boxed(nn.initializers.zeros, "norm"))
        if self.norm == "group":
            norm = functools.partial(nn.GroupNorm, num_groups=self.norm_groups, **norm_kwargs)
        else:
            norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                                     momentum=self.bn_momentum, **norm_kwargs)
        stages, bottleneck = DEPTHS[self.depth]
        block_cls = BasicBlock
        if bottleneck:
            block_cls = functools.partial(Bottleneck, groups=self.groups,
                                          width_per_group=self.width_per_group)

        x = images.astype(self.dtype)
        if self.stem == "imagenet":
            x = conv(self.width, (7, 7), 2, padding=3, name="stem_conv")(x)
            x = nn.relu(norm(name="stem_bn")(x))
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        else:
            x = conv(self.width, (3, 3), 1, padding=1, name="stem_conv")(x)
            x = nn.relu(norm(name="stem_bn")(x))

        for i, num_blocks in enumerate(stages):
            for j in range(num_blocks):
                x = block_cls(
                    filters=self.width * 2**i,
                    strides=2 if i > 0 and j == 0 else 1,
                    conv=conv, norm=norm, zero_init_residual=self.zero_init_residual,
                    name=f"stage{i + 1}_block{j + 1}")(x)

        x = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(
            self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
            kernel_init=boxed(nn.initializers.lecun_normal(), "embed", "classes"),
            bias_init=boxed(nn.initializers.zeros, "classes"),
            name="head")(x)
        return logits.astype(jnp.float32)
