"""DiT: a Transformer as the denoiser of diffusion and flow models (Peebles & Xie 2023,
"Scalable Diffusion Models with Transformers", arXiv:2212.09748), with adaLN-Zero.

    x_t [B, H, W, C], time [B] (float), labels [B] -> output [B, H, W, C]

the U-Net's signature (vision_jax/models/unet.py), so tasks/diffusion.py and
tasks/flow.py train either (`config.model.name`).

Layout (the paper's Fig. 3, right):
  patchify (einops: p x p patches, flattened) -> linear patch embedding + fixed
  2-D sin-cos positions (vit.posemb_sincos_2d) -> `depth` DiT blocks -> final
  layer -> unpatchify (einops) to the image's shape.
  Conditioning c = MLP(sinusoids(t)) + class embedding: the time's 256
  sinusoidal features (unet.timestep_embedding, cos then sin) through Dense ->
  SiLU -> Dense, plus a learned row of a `num_classes + 1` table whose last
  row is the null class of classifier-free guidance (tasks/denoising.py).
  DiT block with adaLN-Zero: from SiLU(c) one Dense per block produces shift,
  scale and gate for attention and for the MLP,
      x = x + gate_1 * Attention(LN(x) (1 + scale_1) + shift_1)
      x = x + gate_2 * MLP(LN(x) (1 + scale_2) + shift_2),
  LN without learned affine parameters (adaLN supplies them). That Dense is
  initialised to zero, so every gate is 0 and every block the identity at
  initialisation. Attention and MLP are the ViT's own modules
  (vit.SelfAttention, including its `implementation` of
  jax.nn.dot_product_attention, and vit.MlpBlock, GELU with 4x expansion).
  Final layer: LN, an adaLN shift and scale from c, then a Dense to p*p*C per
  token; both Dense layers zero-initialised, so the network outputs exactly 0
  at initialisation.

A consequence of adaLN-Zero: at the first step only the output Dense gets a
gradient (everything upstream is multiplied by its zero kernel or by a zero
gate); at the second the gates, the final modulation and the patch embedding
get one too, and from the third every parameter (tests/test_dit.py checks
the first and the third).

Sizes are strings '<size>/<patch>' (like DiT-XL/2) decoded from SIZES:
CPU-sized T, S, B, L for 16x16 `shapes` (head dimension 16), and the paper's
XL (Table 1: 28 blocks, width 1152, 16 heads), kept so that a test can check
this implementation against the paper's parameter count (DiT-XL/2 on 32x32x4
latents, 1000 classes, learned variance: 675,129,632 with the frozen position
table, which is a constant here). `width`, `depth`, `num_heads` override the
table (scaling sweeps step off it). Forward FLOPs per 16x16 image (64 tokens
at patch 2) are those of a ViT of the same shape plus the adaLN Dense layers
(6 width^2 multiply-adds per block per image, not per token); the trainer
counts them with XLA.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models import vit
from vision_jax.models.layers import (boxed, check_choice, check_positive, check_rate,
                                      patchify, unpatchify)
from vision_jax.models.text import CaptionEmbed
from vision_jax.models.unet import timestep_embedding


@dataclasses.dataclass(frozen=True)
class DiTSize:
    width: int
    depth: int
    num_heads: int


SIZES: dict[str, DiTSize] = {
    "T": DiTSize(width=64, depth=4, num_heads=4),     # configs/dit.py; tests
    "S": DiTSize(width=96, depth=6, num_heads=6),
    "B": DiTSize(width=128, depth=8, num_heads=8),
    "L": DiTSize(width=192, depth=12, num_heads=12),
    "XL": DiTSize(width=1152, depth=28, num_heads=16),  # the paper's DiT-XL, Table 1
}
FREQUENCIES = 256  # sinusoidal features of the time, before its MLP (the paper's code)
MLP_RATIO = 4
_VARIANT_RE = re.compile(r"^(?P<size>[A-Za-z]+)/(?P<patch>[0-9]+)$")


def decode_variant(variant: str, *, width: int | None = None, depth: int | None = None,
                   num_heads: int | None = None) -> tuple[DiTSize, int]:
    """'S/2' -> (SIZES['S'] with the non-None overrides, patch 2)."""
    match = _VARIANT_RE.match(variant) if isinstance(variant, str) else None
    if match is None or match["size"] not in SIZES:
        raise ValueError(f"dit: variant={variant!r} is not '<size>/<patch>' with size in "
                         f"{list(SIZES)} (e.g. 'T/2', 'S/4')")
    size = dataclasses.replace(SIZES[match["size"]], **{
        k: v for k, v in (("width", width), ("depth", depth), ("num_heads", num_heads))
        if v is not None})
    patch = int(match["patch"])
    for name, value in (*dataclasses.asdict(size).items(), ("patch", patch)):
        check_positive("dit", name, value)
    if size.width % size.num_heads or size.width % 4:
        raise ValueError(f"dit: width={size.width} must be divisible by num_heads="
                         f"{size.num_heads} and by 4 (the 2-D sin-cos positions)")
    return size, patch


def modulate(x: jax.Array, shift: jax.Array, scale: jax.Array) -> jax.Array:
    """x [B, T, D] * (1 + scale [B, D]) + shift [B, D]."""
    return x * (1.0 + scale[:, None, :]) + shift[:, None, :]


class AdaLN(nn.Module):
    """SiLU(c) -> zero-initialised Dense -> `chunks` vectors [B, D] (shifts, scales, gates)."""

    chunks: int
    features: int
    dtype: Any
    param_dtype: Any

    @nn.compact
    def __call__(self, c: jax.Array) -> list[jax.Array]:
        out = nn.Dense(self.chunks * self.features, dtype=self.dtype,
                       param_dtype=self.param_dtype,
                       kernel_init=boxed(nn.initializers.zeros, "embed", "mlp"),
                       bias_init=boxed(nn.initializers.zeros, "mlp"), name="dense")(nn.silu(c))
        return jnp.split(out, self.chunks, axis=-1)


def _norm(x: jax.Array, dtype) -> jax.Array:
    """LayerNorm without learned affine parameters (adaLN provides them)."""
    return nn.LayerNorm(epsilon=1e-6, use_bias=False, use_scale=False, dtype=dtype)(x)


class DiTBlock(nn.Module):
    """One adaLN-Zero block: the identity at initialisation (all gates 0)."""

    num_heads: int
    mlp_dim: int
    dropout: float = 0.0
    attention_impl: str | None = None
    deterministic: bool = True
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
        width = x.shape[-1]
        shift1, scale1, gate1, shift2, scale2, gate2 = AdaLN(
            6, width, self.dtype, self.param_dtype, name="adaln")(c)
        y = vit.SelfAttention(self.num_heads, self.attention_impl, self.dtype, self.param_dtype,
                              name="attention")(modulate(_norm(x, self.dtype), shift1, scale1))
        x = x + gate1[:, None, :] * y
        y = vit.MlpBlock(self.mlp_dim, self.dropout, self.deterministic, self.dtype,
                         self.param_dtype, name="mlp")(
            modulate(_norm(x, self.dtype), shift2, scale2))
        return x + gate2[:, None, :] * y


class DiT(nn.Module):
    """See the module docstring.

    Attributes:
      variant: '<size>/<patch>', size from SIZES.
      width, depth, num_heads: optional overrides of the table entry.
      out_channels: channels of the output (the image's; 2x for the paper's learned variance).
      num_classes: 0 unconditional; else rows 0..num_classes-1 and the null row.
      dropout: inside the MLP (the paper uses none).
      attention_impl: `implementation` of jax.nn.dot_product_attention (None, 'xla', 'cudnn').
    """

    variant: str = "T/2"
    width: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    out_channels: int = 3
    num_classes: int = 0
    text: str = ""  # a text-encoder size (models/text.py): `labels` are caption tokens
    dropout: float = 0.0
    attention_impl: str | None = None
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        self.size_and_patch  # noqa: B018 -- decoding validates the variant and overrides.
        check_rate("dit", "dropout", self.dropout)
        check_choice("dit", "attention_impl", self.attention_impl, vit.ATTENTION_IMPLS)
        super().__post_init__()

    @property
    def size_and_patch(self) -> tuple[DiTSize, int]:
        return decode_variant(self.variant, width=self.width, depth=self.depth,
                              num_heads=self.num_heads)

    @property
    def null_class(self) -> int:
        return self.num_classes

    @nn.compact
    def __call__(self, x, time, labels=None, *, train: bool):
        size, patch = self.size_and_patch
        _, height, width, _ = x.shape
        if height % patch or width % patch:
            raise ValueError(f"dit: image size {x.shape[1:3]} is not divisible by the patch "
                             f"size {patch}")
        dense = lambda features, names, init, name: nn.Dense(  # noqa: E731
            features, dtype=self.dtype, param_dtype=self.param_dtype,
            kernel_init=boxed(init, *names), bias_init=boxed(nn.initializers.zeros, names[-1]),
            name=name)

        # Patches -> tokens [B, T, width] + fixed positions.
        tokens = patchify(x.astype(self.dtype), patch)
        h = dense(size.width, (None, "embed"), nn.initializers.xavier_uniform(),
                  "patch_embed")(tokens)
        h = h + jnp.asarray(vit.posemb_sincos_2d(height // patch, width // patch, size.width),
                            self.dtype)

        # Conditioning c [B, width]: time MLP (+ class embedding).
        normal = nn.initializers.normal(stddev=0.02)
        c = timestep_embedding(time, FREQUENCIES).astype(self.dtype)
        c = dense(size.width, (None, "mlp"), normal, "time_0")(c)
        c = dense(size.width, ("mlp", "embed"), normal, "time_1")(nn.silu(c))
        if self.num_classes:
            c = c + nn.Embed(self.num_classes + 1, size.width, dtype=self.dtype,
                             param_dtype=self.param_dtype,
                             embedding_init=boxed(normal, "classes", "embed"),
                             name="class_embed")(labels)
        elif self.text:
            c = c + CaptionEmbed(size.width, self.text, dtype=self.dtype,
                                 param_dtype=self.param_dtype, name="caption_embed")(labels)

        for i in range(size.depth):
            h = DiTBlock(size.num_heads, MLP_RATIO * size.width, self.dropout,
                         self.attention_impl, not train, self.dtype, self.param_dtype,
                         name=f"block_{i}")(h, c)

        # Final layer: adaLN (shift, scale), then zero-initialised Dense to the patches.
        shift, scale = AdaLN(2, size.width, self.dtype, self.param_dtype, name="final_adaln")(c)
        h = modulate(_norm(h, self.dtype), shift, scale)
        out = dense(patch * patch * self.out_channels, ("embed", None), nn.initializers.zeros,
                    "final")(h)
        return unpatchify(out, height, patch).astype(jnp.float32)


def from_config(model_cfg, *, num_classes: int, channels: int, text: str = "",
                dtype=jnp.float32, param_dtype=jnp.float32) -> DiT:
    """The DiT that `config.model` (name='dit', variant, width, depth, num_heads, dropout,
    attention_impl) describes."""
    known = {"name", "variant", "width", "depth", "num_heads", "dropout", "attention_impl"}
    unknown = set(model_cfg.keys()) - known
    if unknown:
        raise ValueError(f"dit: unknown config.model keys {sorted(unknown)}; "
                         f"valid: {sorted(known)}")
    get = lambda key: model_cfg.get(key)  # noqa: E731 -- None: the table's value
    return DiT(variant=model_cfg.get("variant", "T/2"), width=get("width"), depth=get("depth"),
               num_heads=get("num_heads"), out_channels=channels, num_classes=num_classes,
               text=text,
               dropout=float(model_cfg.get("dropout", 0.0)),
               attention_impl=get("attention_impl"), dtype=dtype, param_dtype=param_dtype)
