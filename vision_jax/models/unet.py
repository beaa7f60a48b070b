"""A small U-Net for diffusion and flow models (Ho et al. 2020, arXiv:2006.11239, App. B;
the class conditioning of Dhariwal & Nichol 2021, arXiv:2105.05233), sized for 16x16
and 32x32 images on a CPU.

    x_t [B, H, W, C], time [B] (float), labels [B] -> output [B, H, W, C]

The time is embedded with the Transformer's sinusoids (over `width` features,
cos then sin, max period 10^4) and a two-layer SiLU MLP to `4 * width`
features; a class is a learned embedding of the same size *added* to it. The
embedding table has `num_classes + 1` rows: row `num_classes` is the null
class, "no label", which classifier-free guidance (Ho & Salimans 2022,
arXiv:2207.12598) trains by label dropout and samples with. With `text`
set, `labels` are caption tokens [B, L] instead, embedded by the small text
encoder of models/text.py (pooled, with a learned null caption) and added the
same way. The embedding then enters every residual block as a per-channel bias.

Layout: conv_in, then per level `blocks` residual blocks (GroupNorm -> SiLU ->
3x3 conv, + the embedding's bias, GroupNorm -> SiLU -> dropout -> 3x3 conv,
1x1 projection on the shortcut when the width changes) and a stride-2 3x3
conv between levels; a middle of residual block, self-attention, residual
block; the mirror image on the way up (`blocks + 1` blocks per level, each on
the concatenation with a stored skip, nearest-neighbour upsampling + 3x3
conv between levels); GroupNorm -> SiLU -> conv_out. Self-attention (multi-
head, GroupNorm first, residual) runs at the lowest resolution only, where it
is cheap: 4x4 for a 16x16 image with three levels.

Unlike Ho et al., no layer is zero-initialised: a zero output layer would
give every layer before it a zero gradient at the first step.

Sizes (`variant`), as (width, channel multipliers per level, residual blocks
per level, attention heads, GroupNorm groups):
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import boxed, check_choice
from vision_jax.models.text import CaptionEmbed

SIZES: dict[str, tuple[int, tuple[int, ...], int, int, int]] = {
    "T": (16, (1, 2), 1, 1, 8),          # 0.18M: the CPU runs of configs/ddpm.py, flow.py; tests
    "S": (32, (1, 2, 2), 1, 4, 8),       # 1.1M: 3.4x T's FLOPs
    "M": (64, (1, 2, 2), 2, 4, 16),
    # Ho et al.'s CIFAR-10 widths and depths: 35.7M parameters unconditional, as
    # their 35.7M (they attend at 16x16, with 256 channels like this lowest level).
    "B": (128, (1, 2, 2, 2), 2, 4, 32),
}
__doc__ += "".join(f"\n  {k:<2} {v}" for k, v in SIZES.items()) + "\n"

# Glorot-uniform, the initialisation of Ho et al.'s TensorFlow code.
INIT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
CONV_NAMES = (None, None, "conv_in", "conv_out")


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
    """Sinusoidal features [B, dim] of (float) times t [B]: cos then sin over
    `dim // 2` frequencies from 1 down to 1/max_period (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = t.astype(jnp.float32)[:, None] * freqs[None, :]
    emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
    return jnp.pad(emb, ((0, 0), (0, dim - 2 * half)))


def _norm(x, name, groups, dtype, param_dtype):
    return nn.GroupNorm(num_groups=min(groups, x.shape[-1]), dtype=dtype, param_dtype=param_dtype,
                        name=name, scale_init=boxed(nn.initializers.ones, "norm"),
                        bias_init=boxed(nn.initializers.zeros, "norm"))(x)


def _conv(x, features, name, dtype, param_dtype, kernel=3, stride=1):
    return nn.Conv(features, (kernel, kernel), (stride, stride), padding="SAME", dtype=dtype,
                   param_dtype=param_dtype, kernel_init=boxed(INIT, *CONV_NAMES),
                   bias_init=boxed(nn.initializers.zeros, "conv_out"), name=name)(x)


class _Common(nn.Module):
    """Layers created inside a compact method of a module with these fields."""

    groups: int = 8
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def norm(self, x, name):
        return _norm(x, name, self.groups, self.dtype, self.param_dtype)

    def conv(self, x, features, name, kernel=3, stride=1):
        return _conv(x, features, name, self.dtype, self.param_dtype, kernel, stride)


class ResBlock(_Common):
    features: int = 32
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, emb, *, train: bool):
        h = self.conv(nn.silu(self.norm(x, "norm_0")), self.features, "conv_0")
        bias = nn.Dense(self.features, dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=boxed(INIT, "embed", "conv_out"),
                        bias_init=boxed(nn.initializers.zeros, "conv_out"),
                        name="time")(nn.silu(emb))
        h = h + bias[:, None, None, :]
        h = nn.silu(self.norm(h, "norm_1"))
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        h = self.conv(h, self.features, "conv_1")
        if x.shape[-1] != self.features:
            x = self.conv(x, self.features, "skip", kernel=1)
        return x + h


class Attention(_Common):
    heads: int = 4

    @nn.compact
    def __call__(self, x):
        b, hh, ww, c = x.shape
        if c % self.heads:
            raise ValueError(f"unet: {c} channels do not split into {self.heads} heads")
        tokens = self.norm(x, "norm").reshape(b, hh * ww, c)
        proj = {"dtype": self.dtype, "param_dtype": self.param_dtype,
                    "kernel_init": boxed(INIT, "embed", "heads", "kv"),
                    "bias_init": boxed(nn.initializers.zeros, "heads", "kv")}
        shape = (self.heads, c // self.heads)
        q = nn.DenseGeneral(shape, name="query", **proj)(tokens)
        k = nn.DenseGeneral(shape, name="key", **proj)(tokens)
        v = nn.DenseGeneral(shape, name="value", **proj)(tokens)
        out = jax.nn.dot_product_attention(q, k, v)
        out = nn.DenseGeneral(c, axis=(-2, -1), dtype=self.dtype, param_dtype=self.param_dtype,
                              kernel_init=boxed(INIT, "heads", "kv", "embed"),
                              bias_init=boxed(nn.initializers.zeros, "embed"), name="out")(out)
        return x + out.reshape(b, hh, ww, c)


class UNet(nn.Module):
    variant: str = "S"
    out_channels: int = 3
    num_classes: int = 0     # 0: unconditional; else rows 0..num_classes-1 and the null row
    text: str = ""           # a text-encoder size (models/text.py): `labels` are caption tokens
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @property
    def null_class(self) -> int:
        return self.num_classes

    @nn.compact
    def __call__(self, x, time, labels=None, *, train: bool):
        check_choice("unet", "variant", self.variant, SIZES)
        width, mults, blocks, heads, groups = SIZES[self.variant]
        levels = len(mults)
        if x.shape[1] % 2 ** (levels - 1) or x.shape[2] % 2 ** (levels - 1):
            raise ValueError(f"unet: image size {x.shape[1:3]} must be divisible by "
                             f"{2 ** (levels - 1)} ({levels} levels)")
        common = {"groups": groups, "dtype": self.dtype, "param_dtype": self.param_dtype}
        dt = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        dense = {"dtype": self.dtype, "param_dtype": self.param_dtype,
                     "bias_init": boxed(nn.initializers.zeros, "embed")}

        # Time (and class) embedding: [B, 4 * width].
        emb = timestep_embedding(time, width).astype(self.dtype)
        emb = nn.Dense(4 * width, kernel_init=boxed(INIT, None, "mlp"), name="time_0",
                       **{**dense, "bias_init": boxed(nn.initializers.zeros, "mlp")})(emb)
        emb = nn.Dense(4 * width, kernel_init=boxed(INIT, "mlp", "embed"), name="time_1",
                       **dense)(nn.silu(emb))
        if self.num_classes:
            # N(0, 1) rows, PyTorch's nn.Embedding default (Dhariwal & Nichol's code).
            table = nn.Embed(self.num_classes + 1, 4 * width, dtype=self.dtype,
                             param_dtype=self.param_dtype,
                             embedding_init=boxed(nn.initializers.normal(1.0), "classes", "embed"),
                             name="class_embed")
            emb = emb + table(labels)
        elif self.text:
            emb = emb + CaptionEmbed(4 * width, self.text, **dt, name="caption_embed")(labels)

        def res(h, features, name):
            return ResBlock(features=features, dropout=self.dropout, name=name, **common)(
                h, emb, train=train)

        h = _conv(x.astype(self.dtype), width, "conv_in", **dt)
        skips = [h]
        for i, m in enumerate(mults):
            for j in range(blocks):
                h = res(h, width * m, f"down_{i}_{j}")
                if i == levels - 1:
                    h = Attention(heads=heads, name=f"down_{i}_{j}_attn", **common)(h)
                skips.append(h)
            if i < levels - 1:
                h = _conv(h, h.shape[-1], f"down_{i}", stride=2, **dt)
                skips.append(h)

        h = res(h, h.shape[-1], "mid_0")
        h = Attention(heads=heads, name="mid_attn", **common)(h)
        h = res(h, h.shape[-1], "mid_1")

        for i, m in reversed(list(enumerate(mults))):
            for j in range(blocks + 1):
                h = res(jnp.concatenate([h, skips.pop()], axis=-1), width * m, f"up_{i}_{j}")
                if i == levels - 1:
                    h = Attention(heads=heads, name=f"up_{i}_{j}_attn", **common)(h)
            if i > 0:
                b, hh, ww, c = h.shape
                h = jax.image.resize(h, (b, 2 * hh, 2 * ww, c), "nearest")
                h = _conv(h, c, f"up_{i}", **dt)
        assert not skips
        h = nn.silu(_norm(h, "norm_out", groups, **dt))
        return _conv(h, self.out_channels, "conv_out", **dt).astype(jnp.float32)


def from_config(model_cfg, *, num_classes: int, channels: int, text: str = "",
                dtype=jnp.float32, param_dtype=jnp.float32) -> UNet:
    """The U-Net that `config.model` (name='unet', variant, dropout) describes."""
    known = {"name", "variant", "dropout"}
    unknown = set(model_cfg.keys()) - known
    if unknown:
        raise ValueError(f"unet: unknown config.model keys {sorted(unknown)}; "
                         f"valid: {sorted(known)}")
    if model_cfg.get("name") != "unet":
        raise ValueError(f"config.model.name={model_cfg.get('name')!r}: diffusion and flow "
                         "tasks use 'unet'")
    variant = model_cfg.get("variant", "S")
    check_choice("unet", "variant", variant, SIZES)
    return UNet(variant=variant, out_channels=channels, num_classes=num_classes, text=text,
                dropout=float(model_cfg.get("dropout", 0.0)), dtype=dtype,
                param_dtype=param_dtype)
