"""A convolutional variational autoencoder (Kingma & Welling 2014, arXiv:1312.6114),
sized for 16x16 and 32x32 images.

    encode: images [B, H, W, C] in [-1, 1] -> (mean, log_var) [B, latent] of q(z | x)
    decode: z [B, latent] -> (loc, log_scale) [B, H, W, C] of p(x | z)

The paper's amortised Gaussian posterior q(z | x) = N(mean, diag(exp(log_var)))
and prior N(0, I), with convolutional networks in place of its one-hidden-
layer MLPs. Encoder: a 3x3 convolution to `width`, then stride-2 4x4
convolutions doubling the width down to 4x4, SiLU after each, then a dense
layer to 2 x latent. Decoder: the mirror image (dense to 4x4, stride-2 4x4
transposed convolutions, a 3x3 convolution to 2C outputs). p(x | z) is a
discretised logistic per subpixel (Salimans et al. 2017, PixelCNN++,
arXiv:1701.05517, Sec. 2.1) with location `loc` and log-scale `log_scale`
(both per subpixel, the log-scale floored at -7 as in PixelCNN++): a
distribution over the 256 pixel values, so that the ELBO bounds a discrete
log-likelihood comparable with PixelCNN's (tasks/likelihood.py).

Sizes (`variant`), as (width, latent dimensions):
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

from vision_jax.models.layers import boxed, check_choice

SIZES: dict[str, tuple[int, int]] = {
    "T": (8, 4),       # tests
    "S": (32, 32),     # the CPU run of configs/vae.py
    "M": (64, 64),
}
__doc__ += "".join(f"\n  {k:<2} {v}" for k, v in SIZES.items()) + "\n"

INIT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
MIN_LOG_SCALE = -7.0
CONV_NAMES = (None, None, "conv_in", "conv_out")


def _stages(size: int) -> int:
    """Stride-2 stages from `size` down to 4x4 (none for images of 4x4 or less)."""
    stages = max(0, int(math.log2(size // 4))) if size >= 4 else 0
    if size > 4 and 4 * 2**stages != size:
        raise ValueError(f"vae: image size {size} must be 4 x a power of two")
    return stages


class _Module(nn.Module):
    variant: str = "S"
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def conv(self, x, features, kernel, stride, name, transpose=False):
        layer = nn.ConvTranspose if transpose else nn.Conv
        return layer(features, (kernel, kernel), (stride, stride), padding="SAME",
                     dtype=self.dtype, param_dtype=self.param_dtype,
                     kernel_init=boxed(INIT, *CONV_NAMES),
                     bias_init=boxed(nn.initializers.zeros, "conv_out"), name=name)(x)

    def dense(self, x, features, name, names):
        return nn.Dense(features, dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=boxed(INIT, *names),
                        bias_init=boxed(nn.initializers.zeros, names[-1]), name=name)(x)


class Encoder(_Module):
    @nn.compact
    def __call__(self, images):
        width, latent = SIZES[self.variant]
        h = nn.silu(self.conv(images.astype(self.dtype), width, 3, 1, "conv_in"))
        for i in range(_stages(images.shape[1])):
            h = nn.silu(self.conv(h, width * 2 ** (i + 1), 4, 2, f"down_{i}"))
        h = self.dense(h.reshape(h.shape[0], -1), 2 * latent, "posterior", ("embed", "mlp"))
        mean, log_var = jnp.split(h.astype(jnp.float32), 2, axis=-1)
        return mean, log_var


class Decoder(_Module):
    image_shape: tuple[int, int, int] = (16, 16, 3)

    @nn.compact
    def __call__(self, z):
        width, _ = SIZES[self.variant]
        size, _, channels = self.image_shape
        stages = _stages(size)
        top, side = width * 2**stages, min(size, 4)
        h = self.dense(z.astype(self.dtype), side * side * top, "project", ("mlp", "embed"))
        h = nn.silu(h.reshape(-1, side, side, top))
        for i in range(stages):
            h = nn.silu(self.conv(h, top // 2 ** (i + 1), 4, 2, f"up_{i}", transpose=True))
        h = self.conv(h, 2 * channels, 3, 1, "conv_out").astype(jnp.float32)
        loc, log_scale = jnp.split(h, 2, axis=-1)
        return loc, jnp.maximum(log_scale, MIN_LOG_SCALE)


class VAE(nn.Module):
    variant: str = "S"
    image_shape: tuple[int, int, int] = (16, 16, 3)
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def setup(self):
        check_choice("vae", "variant", self.variant, SIZES)
        common = {"variant": self.variant, "dtype": self.dtype, "param_dtype": self.param_dtype}
        self.encoder = Encoder(**common)
        self.decoder = Decoder(image_shape=tuple(self.image_shape), **common)

    @property
    def latent_dim(self) -> int:
        return SIZES[self.variant][1]

    def encode(self, images):
        return self.encoder(images)

    def decode(self, z):
        return self.decoder(z)

    def __call__(self, images, eps):
        """One reparameterised pass: z = mean + exp(log_var / 2) eps (Kingma & Welling
        Sec. 2.4), eps ~ N(0, I) drawn by the caller. -> (mean, log_var, loc, log_scale)."""
        mean, log_var = self.encode(images)
        z = mean + jnp.exp(0.5 * log_var) * eps
        return (mean, log_var, *self.decode(z))
