"""Semantic segmentation networks: images [B, H, W, C] -> per-pixel logits
[B, H, W, num_classes] (float32), for `vision_jax/tasks/segmentation.py`.

FCN (Long, Shelhamer & Darrell 2015, "Fully Convolutional Networks for
Semantic Segmentation", arXiv:1411.4038): a classification network with its
classifier replaced by a 1x1 convolution on its last feature map, whose
coarse scores are upsampled to the input size. Here the backbone is the
zoo's ResNet (vision_jax/models/resnet.py, unchanged: its parameters sit
under `backbone` with their usual names), read at the end of each of its
four stages. `variant` names the paper's three nets by their output stride
relative to the deepest scores:
  '32s'  the deepest stage's scores, upsampled to the input at once;
  '16s'  + scores of the stage before it (Sec. 4.2: upsample x2, add);
  '8s'   + scores of the stage before that as well.
The skip classifiers start at zero, as in the paper, so training begins
from the coarser net. Long et al. upsample inside the net with learnable
deconvolutions initialised to bilinear interpolation; here every upsampling
is fixed bilinear interpolation (`jax.image.resize`), which their Sec. 3.3
reports learns about as well. With ResNet's 'cifar' stem (no early
downsampling, the default here for 32x32 scenes) the stages have strides 1,
2, 4 and 8, so '8s' fuses the scores at strides 8, 4 and 2.

U-Net (Ronneberger, Fischer & Brox 2015, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", arXiv:1505.04597): a contracting path of
`levels` resolutions, each two 3x3 convolutions (+ norm, ReLU) and a 2x2
max-pool, channels doubling per level from `width`; an expanding path that
upsamples with a 2x2 stride-2 transposed convolution halving the channels,
concatenates the contracting path's feature map of the same resolution (the
skip connection), and applies two 3x3 convolutions; a 1x1 convolution to
the classes. Unlike the paper the convolutions are 'SAME'-padded (no
cropping: output size = input size) and normalised (batch norm by default;
the paper predates it). The diffusion U-Net of models/unet.py is not reused:
its residual blocks take a time embedding that segmentation does not have.

Every parameter carries logical axis names (see vision_jax/sharding.py).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import CONV_INIT, boxed, check_choice, check_positive
from vision_jax.models.resnet import DEPTHS, STEMS, ResNet
from vision_jax.models.toolbox import NORMS, check_norm_groups, make_norm

# FCN variant -> how many stages before the deepest one add their scores.
FCN_VARIANTS = {"32s": 0, "16s": 1, "8s": 2}
_CONV_NAMES = (None, None, "conv_in", "conv_out")


def upsample(x: jax.Array, height: int, width: int) -> jax.Array:
    """Bilinear resize of [B, h, w, C] to [B, height, width, C]."""
    return jax.image.resize(x, (x.shape[0], height, width, x.shape[-1]), "bilinear")


def _score(x: jax.Array, num_classes: int, name: str, *, zero: bool, dtype, param_dtype):
    """A 1x1 convolution to class scores (FCN's "score" layers, U-Net's last layer)."""
    init = nn.initializers.zeros if zero else nn.initializers.lecun_normal()
    return nn.Conv(num_classes, (1, 1), dtype=dtype, param_dtype=param_dtype,
                   kernel_init=boxed(init, None, None, "conv_in", "classes"),
                   bias_init=boxed(nn.initializers.zeros, "classes"), name=name)(x)


def stage_features(backbone: ResNet, images: jax.Array, *, train: bool) -> list[jax.Array]:
    """The outputs of a ResNet's four stages (shallow to deep), without its head.

    The ResNet runs unchanged; the last block of each stage is intercepted to
    record its output, and the classifier (`head`) is skipped, so its
    parameters are never created."""
    stages, _ = DEPTHS[backbone.depth]
    last = {f"stage{i + 1}_block{n}" for i, n in enumerate(stages)}
    features = []

    def tap(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__" or module.parent is not backbone:
            return next_fun(*args, **kwargs)
        if module.name == "head":
            return jnp.zeros((args[0].shape[0], backbone.num_classes), jnp.float32)
        out = next_fun(*args, **kwargs)
        if module.name in last:
            features.append(out)
        return out

    with nn.intercept_methods(tap):
        backbone(images, train=train)
    if len(features) != len(stages):
        raise RuntimeError(f"fcn: read {len(features)} of the backbone's {len(stages)} stages")
    return features


class FCN(nn.Module):
    """FCN-32s/16s/8s on a ResNet backbone (see the module docstring)."""

    num_classes: int
    variant: str = "8s"
    depth: int = 18
    width: int = 16
    stem: str = "cifar"
    norm: str = "batch"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        check_choice(owner, "variant", self.variant, FCN_VARIANTS)
        check_choice(owner, "depth", self.depth, DEPTHS)
        check_positive(owner, "width", self.width)
        check_choice(owner, "stem", self.stem, STEMS)
        check_choice(owner, "norm", self.norm, ("batch", "group"))
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        backbone = ResNet(num_classes=1, depth=self.depth, width=self.width, stem=self.stem,
                          norm=self.norm, norm_groups=min(8, self.width),
                          zero_init_residual=False, dtype=self.dtype,
                          param_dtype=self.param_dtype, name="backbone")
        features = stage_features(backbone, images, train=train)
        dt = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        scores = _score(features[-1], self.num_classes, "score", zero=False, **dt)
        for k in range(FCN_VARIANTS[self.variant]):
            skip = features[-2 - k]
            scores = upsample(scores, *skip.shape[1:3]) + _score(
                skip, self.num_classes, f"score_skip{k + 1}", zero=True, **dt)
        return upsample(scores, *images.shape[1:3]).astype(jnp.float32)


class SegUNet(nn.Module):
    """Ronneberger et al.'s U-Net, 'SAME'-padded and normalised (see the module docstring)."""

    num_classes: int
    width: int = 16
    levels: int = 3
    norm: str = "batch"
    norm_groups: int = 8
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        check_positive(owner, "width", self.width)
        check_positive(owner, "levels", self.levels)
        check_choice(owner, "norm", self.norm, NORMS)
        check_norm_groups(owner, self.norm, self.norm_groups,
                          [self.width * 2 ** level for level in range(self.levels)])
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        side = 2 ** (self.levels - 1)
        if images.shape[1] % side or images.shape[2] % side:
            raise ValueError(f"SegUNet: image size {images.shape[1:3]} must be divisible by "
                             f"{side} (levels={self.levels})")
        dt = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        norm = make_norm(self.norm, train=train, groups=self.norm_groups, **dt)

        def double_conv(x, features, name):
            for i in range(2):
                x = nn.Conv(features, (3, 3), padding="SAME", use_bias=self.norm == "none",
                            kernel_init=boxed(CONV_INIT, *_CONV_NAMES),
                            bias_init=boxed(nn.initializers.zeros, "conv_out"),
                            name=f"{name}_conv{i}", **dt)(x)
                x = nn.relu(norm(x, f"{name}_norm{i}"))
            return x

        x = images.astype(self.dtype)
        skips = []
        for level in range(self.levels):
            if level:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            x = double_conv(x, self.width * 2 ** level, f"down{level}")
            skips.append(x)
        skips.pop()  # the bottom of the U has no partner
        for level in reversed(range(self.levels - 1)):
            features = self.width * 2 ** level
            x = nn.ConvTranspose(features, (2, 2), strides=(2, 2),
                                 kernel_init=boxed(CONV_INIT, *_CONV_NAMES),
                                 bias_init=boxed(nn.initializers.zeros, "conv_out"),
                                 name=f"up{level}_upconv", **dt)(x)
            x = double_conv(jnp.concatenate([skips.pop(), x], axis=-1), features, f"up{level}")
        return _score(x, self.num_classes, "score", zero=False, **dt).astype(jnp.float32)
