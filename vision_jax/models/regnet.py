"""RegNetX and RegNetY (Radosavovic et al. 2020, "Designing Network Design Spaces").

A RegNet is not a table of stages but a point of a design space: six numbers
generate every stage width and depth (Sec. 3.3, Eqs. 2-4):

  u_j = w_0 + w_a * j                 linear widths of blocks j = 0..depth-1
  s_j = round(log(u_j / w_0) / log(w_m))
  w_j = round(w_0 * w_m^s_j / 8) * 8  quantised to a geometric ladder, multiples of 8

Blocks of equal width form a stage (each stage starts with stride 2). Every
block is a ResNeXt bottleneck (`blocks.InvertedResidual` with a group width,
a projection shortcut and ReLU after the sum); RegNetY adds squeeze-excitation
to `se_ratio` times the block's *input* width. Stage widths are finally made
compatible with the group width (the bottleneck width a multiple of it, the
group width at most the bottleneck width), as in pycls and torchvision.

The variants are the published models (Appendix C, Table 5; torchvision's
regnet_{x,y}_*). Their parameter counts match torchvision exactly.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.models.blocks import (
    HEAD_INIT, ClassifierHead, ConvBN, InvertedResidual, conv_and_norm, make_divisible)
from vision_jax.models.layers import check_choice, check_positive, check_rate

STEM_WIDTH = 32
WIDTH_QUANTUM = 8


class DesignParams(NamedTuple):
    """A point of the RegNet design space (Radosavovic et al. 2020, Sec. 3.3)."""

    depth: int            # d: total number of blocks
    w_0: int              # initial width
    w_a: float            # slope of the linear widths
    w_m: float            # width multiplier between consecutive stages
    group_width: int      # g: channels per group of the 3x3 convolution
    bottleneck_ratio: float = 1.0  # b: the published RegNets use 1
    se_ratio: float = 0.0          # 0.25 for RegNetY, 0 for RegNetX


# Appendix C / pycls model zoo, as torchvision builds regnet_{x,y}_{400mf,...}.
VARIANTS: dict[str, DesignParams] = {
    "X-400MF": DesignParams(depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16),
    "X-800MF": DesignParams(depth=16, w_0=56, w_a=35.73, w_m=2.28, group_width=16),
    "X-1.6GF": DesignParams(depth=18, w_0=80, w_a=34.01, w_m=2.25, group_width=24),
    "Y-400MF": DesignParams(depth=16, w_0=48, w_a=27.89, w_m=2.09, group_width=8,
                            se_ratio=0.25),
    "Y-800MF": DesignParams(depth=14, w_0=56, w_a=38.84, w_m=2.4, group_width=16,
                            se_ratio=0.25),
    "Y-1.6GF": DesignParams(depth=27, w_0=48, w_a=20.71, w_m=2.65, group_width=24,
                            se_ratio=0.25),
}


class Stage(NamedTuple):
    width: int
    depth: int
    group_width: int
    bottleneck_ratio: float


def generate_stages(p: DesignParams) -> list[Stage]:
    """Stage widths and depths of design point `p` (Eqs. 2-4, then group compatibility)."""
    if p.w_a < 0 or p.w_0 <= 0 or p.w_m <= 1 or p.w_0 % WIDTH_QUANTUM:
        raise ValueError(f"RegNet design {p}: need w_a >= 0, w_0 > 0 a multiple of "
                         f"{WIDTH_QUANTUM}, w_m > 1")
    u = p.w_0 + p.w_a * np.arange(p.depth)
    s = np.round(np.log(u / p.w_0) / np.log(p.w_m))
    widths = (np.round(p.w_0 * np.power(p.w_m, s) / WIDTH_QUANTUM) * WIDTH_QUANTUM).astype(int)
    stages = []
    for width, group in itertools.groupby(widths.tolist()):
        # Bottleneck width a multiple of the group width, which cannot exceed it.
        bottleneck = int(width * p.bottleneck_ratio)
        group_width = min(p.group_width, bottleneck)
        width = int(make_divisible(bottleneck, group_width) / p.bottleneck_ratio)
        stages.append(Stage(width, len(list(group)), group_width, p.bottleneck_ratio))
    return stages


class RegNet(nn.Module):
    """RegNetX/Y classifier.

    Attributes:
      variant: a published design point (VARIANTS), e.g. 'Y-400MF'.
      depth, w_0, w_a, w_m, group_width, bottleneck_ratio, se_ratio: override
        the variant's design parameters (None keeps them), so that a scaling
        study can move through the design space itself.
      dropout: before the classifier (the published models use none).
    """

    num_classes: int
    variant: str = "Y-400MF"
    depth: int | None = None
    w_0: int | None = None
    w_a: float | None = None
    w_m: float | None = None
    group_width: int | None = None
    bottleneck_ratio: float | None = None
    se_ratio: float | None = None
    dropout: float = 0.0
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        check_choice(owner, "variant", self.variant, VARIANTS)
        for option in ("depth", "w_0", "group_width"):
            if getattr(self, option) is not None:
                check_positive(owner, option, getattr(self, option))
        if self.se_ratio is not None:
            check_rate(owner, "se_ratio", self.se_ratio)
        check_rate(owner, "dropout", self.dropout)
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"{owner}: bn_momentum={self.bn_momentum!r} must lie in [0, 1)")
        try:
            generate_stages(self.design)
        except ValueError as e:
            raise ValueError(f"{owner}: {e}") from None
        super().__post_init__()

    @property
    def design(self) -> DesignParams:
        overrides = {f: getattr(self, f) for f in DesignParams._fields
                     if getattr(self, f) is not None}
        return VARIANTS[self.variant]._replace(**overrides)

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        conv, norm = conv_and_norm(train=train, momentum=self.bn_momentum,
                                   epsilon=self.bn_epsilon, dtype=self.dtype,
                                   param_dtype=self.param_dtype)
        se_ratio = self.design.se_ratio
        x = images.astype(self.dtype)
        x = ConvBN(STEM_WIDTH, 3, conv, norm, strides=2, activation="relu", name="stem")(x)
        for i, stage in enumerate(generate_stages(self.design)):
            for j in range(stage.depth):
                x = InvertedResidual(
                    stage.width, expanded=round(stage.width * stage.bottleneck_ratio),
                    conv=conv, norm=norm, expand=True, strides=2 if j == 0 else 1,
                    group_width=stage.group_width, activation="relu",
                    se_features=round(se_ratio * x.shape[-1]), se_activation="relu",
                    se_gate="sigmoid", shortcut="projection", post_activation="relu",
                    dtype=self.dtype, param_dtype=self.param_dtype,
                    name=f"stage{i + 1}_block{j + 1}")(x, train=train)
        return ClassifierHead(self.num_classes, self.dropout, kernel_init=HEAD_INIT,
                              dtype=self.dtype, param_dtype=self.param_dtype,
                              name="classifier")(x, train=train)
