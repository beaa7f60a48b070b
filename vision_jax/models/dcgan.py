"""DCGAN (Radford et al. 2016, arXiv:1511.06434), sized for 16x16 and 32x32 images.

The generator maps a latent z ~ N(0, I) (and, optionally, a class) through a
dense layer to a 4x4 feature map, then doubles the resolution with stride-2
transposed convolutions, batch norm and ReLU, and ends in tanh. The
discriminator mirrors it with stride-2 convolutions and LeakyReLU(0.2), no
normalisation by default, or spectral normalisation of every layer (Miyato et
al. 2018, arXiv:1802.05957) with `spectral_norm=True`. Class conditioning is
an embedding concatenated to z (generator) and a projection term
<embed(y), features> on the logit (discriminator; Miyato & Koyama 2018).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

from vision_jax.models.layers import boxed

INIT = nn.initializers.normal(0.02)  # the DCGAN paper's N(0, 0.02^2) weights


def _stages(image_size: int) -> int:
    stages = int(math.log2(image_size // 4))
    if image_size < 8 or 4 * 2**stages != image_size:
        raise ValueError(f"dcgan: image_size={image_size} must be 4 x a power of two, >= 8")
    return stages


class Generator(nn.Module):
    image_size: int = 32
    channels: int = 3
    width: int = 64          # channels of the last (highest-resolution) stage
    num_classes: int = 0     # 0: unconditional
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool):
        stages = _stages(self.image_size)
        norm = lambda name: nn.BatchNorm(  # noqa: E731
            use_running_average=not train, momentum=0.9, dtype=self.dtype,
            param_dtype=self.param_dtype, name=name,
            scale_init=boxed(nn.initializers.ones, "norm"),
            bias_init=boxed(nn.initializers.zeros, "norm"))
        x = z.astype(self.dtype)
        if self.num_classes:
            emb = nn.Embed(self.num_classes, z.shape[-1], dtype=self.dtype,
                           param_dtype=self.param_dtype,
                           embedding_init=boxed(INIT, "classes", "embed"), name="class_embed")
            x = jnp.concatenate([x, emb(labels)], -1)
        top = self.width * 2**stages
        x = nn.Dense(4 * 4 * top, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                     kernel_init=boxed(INIT, "embed", "mlp"), name="project")(x)
        x = nn.relu(norm("project_norm")(x.reshape(-1, 4, 4, top)))
        for i in range(stages):
            out = self.channels if i == stages - 1 else top // 2**(i + 1)
            x = nn.ConvTranspose(out, (4, 4), (2, 2), padding="SAME", use_bias=i == stages - 1,
                                 dtype=self.dtype, param_dtype=self.param_dtype,
                                 kernel_init=boxed(INIT, None, None, "conv_in", "conv_out"),
                                 bias_init=boxed(nn.initializers.zeros, "conv_out"),
                                 name=f"up_{i}")(x)
            if i < stages - 1:
                x = nn.relu(norm(f"up_{i}_norm")(x))
        return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
    image_size: int = 32
    width: int = 64
    num_classes: int = 0
    spectral_norm: bool = False
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, images, labels=None, *, train: bool):
        stages = _stages(self.image_size)

        def layer(module, name):
            if not self.spectral_norm:
                return lambda x: module(x)
            sn = nn.SpectralNorm(module, name=f"{name}_sn")
            return lambda x: sn(x, update_stats=train)

        x = images.astype(self.dtype)
        for i in range(stages):
            conv = nn.Conv(self.width * 2**i, (4, 4), (2, 2), padding="SAME", dtype=self.dtype,
                           param_dtype=self.param_dtype,
                           kernel_init=boxed(INIT, None, None, "conv_in", "conv_out"),
                           bias_init=boxed(nn.initializers.zeros, "conv_out"), name=f"down_{i}")
            x = nn.leaky_relu(layer(conv, f"down_{i}")(x), 0.2)
        features = x.reshape(x.shape[0], -1)
        head = nn.Dense(1, dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=boxed(INIT, "embed", None),
                        bias_init=boxed(nn.initializers.zeros, None), name="logit")
        logit = layer(head, "logit")(features)[:, 0]
        if self.num_classes:
            proj = nn.Embed(self.num_classes, features.shape[-1], dtype=self.dtype,
                            param_dtype=self.param_dtype,
                            embedding_init=boxed(INIT, "classes", "embed"), name="class_proj")
            logit = logit + (proj(labels) * features).sum(-1)
        return logit.astype(jnp.float32)
