"""The small text encoder that text-to-image, CLIP and captioning share.

A bidirectional `Transformer` (models/transformer.py, kind='encoder') over the
caption tokens of `data/captions.py`, padding masked out of attention. Two
outputs:

  tokens  [B, L, d_model]  the final hidden states, for cross-attention
  pooled  [B, d_model]     their mean over the real (non-padding) tokens

`CaptionEmbed` turns a caption into one conditioning vector for a denoiser's
time embedding ("pooled conditioning"), and an all-padding row, the null
caption of classifier-free guidance, into a learned null vector.

Sizes are strings decoded from one table, like the other model families:
"T" (64 wide, 2 layers), "S" (128, 4), "B" (256, 6); head dimension 32.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.data import captions
from vision_jax.models.layers import boxed, check_choice
from vision_jax.models.transformer import Transformer, TransformerConfig

# name -> (d_model, num_layers)
SIZES = {"T": (64, 2), "S": (128, 4), "B": (256, 6)}
HEAD_DIM = 32


def text_config(size: str = "T", *, dtype=jnp.float32, param_dtype=jnp.float32,
                length: int = captions.CAPTION_LENGTH) -> TransformerConfig:
    check_choice("text", "size", size, SIZES)
    width, layers = SIZES[size]
    return TransformerConfig(vocab_size=captions.VOCAB_SIZE, d_model=width,
                             num_heads=width // HEAD_DIM, d_ff=4 * width, num_layers=layers,
                             kind="encoder", max_len=length, position="learned",
                             dtype=dtype, param_dtype=param_dtype)


class TextEncoder(nn.Module):
    """Caption tokens [B, L] -> (hidden [B, L, D], pooled [B, D], present [B] bool).

    `present` is False for the null caption (no real token), whose pooled
    vector is zero.
    """

    cfg: TransformerConfig

    @nn.compact
    def __call__(self, tokens):
        if tokens.ndim != 2:
            raise ValueError(f"text encoder: tokens must be [batch, length], got {tokens.shape}")
        real = tokens != captions.PAD
        hidden = Transformer(self.cfg, name="transformer")(tokens, mask=real)["hidden"]
        weights = real.astype(hidden.dtype)[..., None]
        count = weights.sum(axis=1)
        pooled = (hidden * weights).sum(axis=1) / jnp.maximum(count, 1.0)
        return hidden, pooled, real.any(axis=1)


class CaptionEmbed(nn.Module):
    """Caption tokens [B, L] -> a conditioning vector [B, features].

    A real caption: Dense(pooled text features). The null caption: a learned
    vector, the text counterpart of a class-conditional model's null class.
    """

    features: int
    size: str = "T"
    embed_axis: str = "embed"
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, tokens):
        cfg = text_config(self.size, dtype=self.dtype, param_dtype=self.param_dtype,
                          length=tokens.shape[1])
        _, pooled, present = TextEncoder(cfg, name="encoder")(tokens)
        cond = nn.Dense(self.features, dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=boxed(nn.initializers.lecun_normal(), None, self.embed_axis),
                        bias_init=boxed(nn.initializers.zeros, self.embed_axis),
                        name="project")(pooled)
        null = self.param("null", boxed(nn.initializers.normal(1.0), self.embed_axis),
                          (self.features,), self.param_dtype)
        return jnp.where(present[:, None], cond, null.astype(cond.dtype))


def null_captions(tokens: jax.Array) -> jax.Array:
    """All-padding captions shaped like `tokens`."""
    return jnp.full_like(tokens, captions.PAD)
