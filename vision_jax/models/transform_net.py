"""The image transformation network of Johnson et al. 2016 ("Perceptual Losses
for Real-Time Style Transfer and Super-Resolution", Sec. 3.1 and their
supplementary Table 1), at CPU size.

    9x9 conv (w0) -> 3x3 conv stride 2 (w1) -> 3x3 conv stride 2 (w2)
    -> `residual_blocks` x [3x3 conv, norm, ReLU, 3x3 conv, norm] + identity
    -> x2 up + 3x3 conv (w1) -> x2 up + 3x3 conv (w0) -> 9x9 conv (C), tanh

Each convolution but the last is followed by the normalisation and a ReLU.
The paper's widths are (32, 64, 128) with 5 residual blocks; the default here
is (16, 32, 64) with 3. Two departures, both later practice:

* instance normalisation instead of batch norm (Ulyanov et al. 2016,
  "Instance Normalization: The Missing Ingredient for Fast Stylization"):
  each image is normalised by its own statistics, so an image's output never
  depends on the rest of the batch and training and inference agree;
* upsampling by nearest-neighbour resize then convolution instead of
  fractionally strided convolutions (Odena et al. 2016, "Deconvolution and
  Checkerboard Artifacts").

The upsampling resizes back to the sizes the downsampling saw, so the output
has the input's shape for any height and width. Output in [-1, 1] (tanh), the
project's pixel range; the paper scales tanh to [0, 255].
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import boxed, check_choice, check_positive
from vision_jax.models.toolbox import NORMS, make_norm


class TransformNet(nn.Module):
    widths: tuple[int, int, int] = (16, 32, 64)
    residual_blocks: int = 3
    norm: str = "instance"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        if len(tuple(self.widths)) != 3 or not all(isinstance(w, int) and w > 0
                                                    for w in self.widths):
            raise ValueError(f"{owner}: widths={self.widths!r} must be three positive "
                             "integers (full resolution, /2, /4), e.g. (16, 32, 64)")
        check_positive(owner, "residual_blocks", self.residual_blocks)
        check_choice(owner, "norm", self.norm, NORMS)
        super().__post_init__()

    def _conv(self, features: int, kernel: int, name: str, stride: int = 1, bias=False):
        return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding="SAME",
                       use_bias=bias, dtype=self.dtype, param_dtype=self.param_dtype,
                       kernel_init=boxed(nn.initializers.he_normal(), None, None, "conv_in",
                                         "conv_out"),
                       bias_init=boxed(nn.initializers.zeros, "conv_out"), name=name)

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool = False) -> jax.Array:
        norm = make_norm(self.norm, train=train, dtype=self.dtype,
                         param_dtype=self.param_dtype)
        bias = self.norm == "none"  # a norm's shift makes a convolution's bias redundant

        def conv_norm_relu(x, features, kernel, name, stride=1):
            return nn.relu(norm(self._conv(features, kernel, name, stride, bias)(x),
                                f"{name}_norm"))

        w0, w1, w2 = self.widths
        x = images.astype(self.dtype)
        sizes = [x.shape[1:3]]
        x = conv_norm_relu(x, w0, 9, "down0")
        x = conv_norm_relu(x, w1, 3, "down1", stride=2)
        sizes.append(x.shape[1:3])
        x = conv_norm_relu(x, w2, 3, "down2", stride=2)
        for b in range(self.residual_blocks):
            y = conv_norm_relu(x, w2, 3, f"res{b}_a")
            y = norm(self._conv(w2, 3, f"res{b}_b", bias=bias)(y), f"res{b}_b_norm")
            x = x + y
        for i, (features, size) in enumerate(zip((w1, w0), sizes[::-1])):
            x = jax.image.resize(x, (x.shape[0], *size, x.shape[-1]), "nearest")
            x = conv_norm_relu(x, features, 3, f"up{i}")
        x = self._conv(images.shape[-1], 9, "out", bias=True)(x)
        return jnp.tanh(x).astype(jnp.float32)
