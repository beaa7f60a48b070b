"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words").

Sizes are strings such as 'B/16' (size B, 16x16 patches) decoded from the one
VARIANTS table below, so a sweep is a list of strings and the table can be
checked against the papers.

Layout: patches -> [class token] -> + position embedding -> dropout ->
`depth` pre-LN encoder blocks -> LayerNorm -> pool ('tok' or 'gap') ->
[tanh representation layer] -> head. With pool='tok' and posemb='learn' the
learned position embedding also covers the class token (the original ViT
layout), which is what makes ViT-B/16 exactly 86,567,656 parameters. With
posemb='sincos2d' only the patches are embedded; the class token carries no
position.

Attention runs through `jax.nn.dot_product_attention`, which lowers to XLA's
fused attention or, with attention_impl='cudnn' (GPU, bf16/fp16 only), to
cuDNN's flash attention. With scan=True the identical encoder blocks are
`nn.scan`ned: one block is compiled instead of `depth`, and every block
parameter gains a leading 'layers' axis.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax import mup, sharding
from vision_jax.models.layers import boxed, check_choice, check_positive, check_rate, patchify


@dataclasses.dataclass(frozen=True)
class ViTSize:
    width: int
    depth: int
    mlp_dim: int
    num_heads: int


# Sources:
#   Ti, S: Touvron et al. 2021, "Training data-efficient image transformers" (DeiT), Table 1.
#   M:     google-research/big_vision, big_vision/models/vit.py (`decode_variant`).
#   B, L, H: Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", Table 1.
#   g, G:  Zhai et al. 2022, "Scaling Vision Transformers", Table 2.
VARIANTS: dict[str, ViTSize] = {
    "Ti": ViTSize(width=192, depth=12, mlp_dim=768, num_heads=3),
    "S": ViTSize(width=384, depth=12, mlp_dim=1536, num_heads=6),
    "M": ViTSize(width=512, depth=12, mlp_dim=2048, num_heads=8),
    "B": ViTSize(width=768, depth=12, mlp_dim=3072, num_heads=12),
    "L": ViTSize(width=1024, depth=24, mlp_dim=4096, num_heads=16),
    "H": ViTSize(width=1280, depth=32, mlp_dim=5120, num_heads=16),
    "g": ViTSize(width=1408, depth=40, mlp_dim=6144, num_heads=16),
    "G": ViTSize(width=1664, depth=48, mlp_dim=8192, num_heads=16),
}

POOLS = ("tok", "gap")
POSEMBS = ("learn", "sincos2d")
# How much of an encoder block's forward pass nn.remat keeps for the backward
# pass: 'minimal' keeps the weight matmuls (dots without batch dimensions) and
# recomputes the cheap elementwise work and attention; 'full' keeps nothing.
REMAT_POLICIES = {
    "none": None,
    "minimal": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "full": jax.checkpoint_policies.nothing_saveable,
}
ATTENTION_IMPLS = (None, "xla", "cudnn")

_VARIANT_RE = re.compile(r"^(?P<size>[A-Za-z]+)/(?P<patch>[0-9]+)$")


def decode_variant(variant: str, **overrides: int | None) -> tuple[ViTSize, int]:
    """'B/16' -> (ViTSize of B, 16). Non-None `overrides` replace table fields.

    Overrides (width, depth, mlp_dim, num_heads) let tests and scaling sweeps
    step off the table while keeping the family's other choices.
    """
    match = _VARIANT_RE.match(variant) if isinstance(variant, str) else None
    if match is None or match["size"] not in VARIANTS:
        raise ValueError(
            f"ViT: variant={variant!r} is not '<size>/<patch>' with size in "
            f"{list(VARIANTS)} (e.g. 'B/16', 'Ti/4')")
    size = VARIANTS[match["size"]]
    unknown = set(overrides) - {f.name for f in dataclasses.fields(ViTSize)}
    if unknown:
        raise ValueError(f"ViT: cannot override {sorted(unknown)}; valid: "
                         f"{[f.name for f in dataclasses.fields(ViTSize)]}")
    size = dataclasses.replace(size, **{k: v for k, v in overrides.items() if v is not None})
    patch = int(match["patch"])
    for name, value in (*dataclasses.asdict(size).items(), ("patch", patch)):
        check_positive("ViT", name, value)
    if size.width % size.num_heads:
        raise ValueError(f"ViT: width={size.width} is not divisible by num_heads={size.num_heads}")
    return size, patch


def posemb_sincos_2d(h: int, w: int, width: int, temperature: float = 10_000.0) -> np.ndarray:
    """Fixed 2-D sine-cosine position embedding, [1, h*w, width] (MoCo v3 style).

    A quarter of the channels encodes each of sin(y), cos(y), sin(x), cos(x) at
    geometrically spaced frequencies. Computed in NumPy: it is a constant.
    """
    if width % 4:
        raise ValueError(f"ViT: posemb='sincos2d' needs width divisible by 4, got {width}")
    quarter = width // 4
    omega = 1.0 / temperature ** (np.arange(quarter) / max(quarter - 1, 1))
    y, x = np.mgrid[:h, :w]
    y = np.outer(y.reshape(-1), omega)
    x = np.outer(x.reshape(-1), omega)
    pe = np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1)
    return pe[None].astype(np.float32)


class MlpBlock(nn.Module):
    mlp_dim: int
    dropout: float
    deterministic: bool
    dtype: Any
    param_dtype: Any
    exact_gelu: bool = False  # erf GELU (timm, torch); False: Flax's tanh approximation

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        width = x.shape[-1]
        # Xavier kernels and near-zero biases, as in the original ViT code.
        bias_init = nn.initializers.normal(stddev=1e-6)
        x = nn.Dense(self.mlp_dim, dtype=self.dtype, param_dtype=self.param_dtype,
                     kernel_init=boxed(nn.initializers.xavier_uniform(), "embed", "mlp"),
                     bias_init=boxed(bias_init, "mlp"), name="fc1")(x)
        x = nn.Dropout(self.dropout, deterministic=self.deterministic)(
            nn.gelu(x, approximate=not self.exact_gelu))
        x = nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype,
                     kernel_init=boxed(nn.initializers.xavier_uniform(), "mlp", "embed"),
                     bias_init=boxed(bias_init, "embed"), name="fc2")(x)
        return x


def attend(q, k, v, scale, implementation):
    """`jax.nn.dot_product_attention` on [B, T, heads, head_dim].

    cuDNN's flash attention trains only on even sequence lengths (jax 0.11;
    ViT's 196 patches + [cls] = 197 are not): there the tokens go through
    `attend_padded`, which gives the same result.
    """
    if implementation == "cudnn" and q.shape[1] % 2:
        return attend_padded(q, k, v, scale, implementation)
    return jax.nn.dot_product_attention(q, k, v, scale=scale, implementation=implementation)


def attend_padded(q, k, v, scale, implementation):
    """Attention with the tokens padded by one and the pad masked out of the keys."""
    length = q.shape[1]
    pad = lambda t: jnp.pad(t, ((0, 0), (0, 1), (0, 0), (0, 0)))
    lengths = jnp.full((q.shape[0],), length, jnp.int32)
    y = jax.nn.dot_product_attention(pad(q), pad(k), pad(v), scale=scale,
                                     key_value_seq_lengths=lengths,
                                     implementation=implementation)
    return y[:, :length]


class SelfAttention(nn.Module):
    num_heads: int
    attention_impl: str | None
    dtype: Any
    param_dtype: Any
    scale: float | None = None  # of the logits; None: 1/sqrt(head_dim)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        width = x.shape[-1]
        head_dim = width // self.num_heads
        init = nn.initializers.xavier_uniform()

        def project(name):  # [B, T, width] -> [B, T, heads, head_dim]
            return nn.DenseGeneral(
                (self.num_heads, head_dim), axis=-1, dtype=self.dtype,
                param_dtype=self.param_dtype,
                kernel_init=boxed(init, "embed", "heads", "kv"),
                bias_init=boxed(nn.initializers.zeros, "heads", "kv"), name=name)(x)

        q, k, v = project("query"), project("key"), project("value")
        y = attend(q, k, v, self.scale, self.attention_impl)
        return nn.DenseGeneral(
            width, axis=(-2, -1), dtype=self.dtype, param_dtype=self.param_dtype,
            kernel_init=boxed(init, "heads", "kv", "embed"),
            bias_init=boxed(nn.initializers.zeros, "embed"), name="out")(y)


def constrain_tokens(x: jax.Array) -> jax.Array:
    """Keeps [B, T, width] activations split over the batch only. Without it,
    FSDP lets XLA shard them like the weights (width over fsdp) and gather
    the batch instead: on a v3 slice ViT-B/16's step then needs 18 GB per core
    rather than a few. The identity outside the trainer's steps
    (`sharding.activation_sharding`)."""
    return sharding.constrain(x, ("batch", None, None))


class EncoderBlock(nn.Module):
    """Pre-LN block: x + attn(LN(x)), then x + mlp(LN(x)).

    `scanned` makes it return (carry, None), the step signature `nn.scan` wants.
    """

    num_heads: int
    mlp_dim: int
    dropout: float
    attention_impl: str | None
    deterministic: bool
    dtype: Any
    param_dtype: Any
    scanned: bool = False
    attention_scale: float | None = None
    exact_gelu: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, _=None):
        x = constrain_tokens(x)
        norm = lambda name: nn.LayerNorm(  # noqa: E731
            epsilon=1e-6, dtype=self.dtype, param_dtype=self.param_dtype,
            scale_init=boxed(nn.initializers.ones, "embed"),
            bias_init=boxed(nn.initializers.zeros, "embed"), name=name)
        drop = nn.Dropout(self.dropout, deterministic=self.deterministic)
        y = SelfAttention(self.num_heads, self.attention_impl, self.dtype, self.param_dtype,
                          self.attention_scale, name="attention")(norm("norm1")(x))
        x = x + drop(y)
        y = MlpBlock(self.mlp_dim, self.dropout, self.deterministic, self.dtype,
                     self.param_dtype, self.exact_gelu, name="mlp")(norm("norm2")(x))
        x = constrain_tokens(x + drop(y))
        return (x, None) if self.scanned else x


class ViT(nn.Module):
    """ViT classifier; see the module docstring for the layout.

    Attributes:
      variant: '<size>/<patch>', size from VARIANTS.
      width, depth, mlp_dim, num_heads: optional overrides of the table entry.
      pool: 'tok' (class token) or 'gap' (mean over patch tokens, no class token).
      posemb: 'learn' or 'sincos2d' (fixed, no parameters).
      scan: nn.scan over the encoder blocks (fast compiles for deep models).
      remat_policy: one of REMAT_POLICIES.
      attention_impl: `implementation` of jax.nn.dot_product_attention.
      dropout: rate after the embeddings, inside the MLP and on each residual branch.
      head_zeroinit: start the head at zero (uniform first prediction).
      representation_size: if set, a Dense+tanh "pre-logits" layer of this size.
      parametrization: 'sp' (standard) or 'mup' (Yang et al. 2022; vision_jax/mup.py):
        with m = width / mup_base_width, attention logits scaled by
        sqrt(head_dim/m)/head_dim (1/head_dim up to a constant), the head's
        input times 1/m and its init std times sqrt(m) (zero stays zero). The
        patch embedding is muP's input layer, the attention and MLP kernels
        its hidden ones (their LR factors: vision_jax/mup.py).
      mup_base_width: the width at which 'mup' equals 'sp'.
      exact_gelu: the MLP's GELU in its exact erf form (timm's and torch's
        nn.GELU, needed by imported timm weights) instead of Flax's default
        tanh approximation (the original ViT's and big_vision's). They differ
        by up to ~1e-3 per activation.
    """

    num_classes: int
    variant: str = "B/16"
    width: int | None = None
    depth: int | None = None
    mlp_dim: int | None = None
    num_heads: int | None = None
    pool: str = "tok"
    posemb: str = "learn"
    scan: bool = False
    remat_policy: str = "none"
    attention_impl: str | None = None
    dropout: float = 0.0
    head_zeroinit: bool = True
    representation_size: int | None = None
    parametrization: str = "sp"
    mup_base_width: int = 0
    exact_gelu: bool = False
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        check_choice(owner, "exact_gelu", self.exact_gelu, (False, True))
        self.size  # noqa: B018 -- decoding validates the variant and overrides.
        check_choice(owner, "pool", self.pool, POOLS)
        check_choice(owner, "posemb", self.posemb, POSEMBS)
        check_choice(owner, "remat_policy", self.remat_policy, REMAT_POLICIES)
        check_choice(owner, "attention_impl", self.attention_impl, ATTENTION_IMPLS)
        check_rate(owner, "dropout", self.dropout)
        if self.representation_size is not None:
            check_positive(owner, "representation_size", self.representation_size)
        mup.check(owner, self.parametrization, self.mup_base_width)
        if self.parametrization == "mup" and self.representation_size is not None:
            raise ValueError(f"{owner}: parametrization='mup' has no rule for the pre-logits "
                             "layer; use representation_size=None")
        super().__post_init__()

    @property
    def size(self) -> ViTSize:
        return decode_variant(self.variant, width=self.width, depth=self.depth,
                              mlp_dim=self.mlp_dim, num_heads=self.num_heads)[0]

    @property
    def patch_size(self) -> int:
        return decode_variant(self.variant)[1]

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        size, patch = self.size, self.patch_size
        x = nn.Conv(size.width, (patch, patch), strides=(patch, patch), padding="VALID",
                    dtype=self.dtype, param_dtype=self.param_dtype,
                    kernel_init=boxed(nn.initializers.lecun_normal(), None, None, None, "embed"),
                    bias_init=boxed(nn.initializers.zeros, "embed"),
                    name="embedding")(images.astype(self.dtype))
        batch, h, w, _ = x.shape
        x = patchify(x)  # [B, h, w, D] -> [B, h*w, D] tokens

        if self.posemb == "sincos2d":
            x = x + jnp.asarray(posemb_sincos_2d(h, w, size.width), self.dtype)
        if self.pool == "tok":
            cls = self.param("cls", boxed(nn.initializers.zeros, None, None, "embed"),
                             (1, 1, size.width), self.param_dtype)
            cls = jnp.broadcast_to(cls.astype(self.dtype), (batch, 1, size.width))
            x = jnp.concatenate([cls, x], axis=1)
        if self.posemb == "learn":
            pos = self.param("pos_embedding",
                             boxed(nn.initializers.normal(stddev=0.02), None, "seq", "embed"),
                             (1, x.shape[1], size.width), self.param_dtype)
            x = x + pos.astype(self.dtype)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)

        x = self._encode(x, size, deterministic=not train)
        x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, param_dtype=self.param_dtype,
                         scale_init=boxed(nn.initializers.ones, "embed"),
                         bias_init=boxed(nn.initializers.zeros, "embed"),
                         name="encoder_norm")(x)
        x = x[:, 0] if self.pool == "tok" else jnp.mean(x, axis=1)

        features = "embed"
        if self.representation_size is not None:
            x = nn.Dense(self.representation_size, dtype=self.dtype,
                         param_dtype=self.param_dtype,
                         kernel_init=boxed(nn.initializers.lecun_normal(), "embed", "mlp"),
                         bias_init=boxed(nn.initializers.zeros, "mlp"),
                         name="pre_logits")(x)
            x = jnp.tanh(x)
            features = "mlp"
        head_init = (nn.initializers.zeros if self.head_zeroinit
                     else nn.initializers.lecun_normal())
        if self.parametrization == "mup":
            rule = mup.multipliers("output", size.width / self.mup_base_width)
            head_init = mup.scale_init(head_init, rule.init_std)
            x = x * jnp.asarray(rule.output, x.dtype)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                          kernel_init=boxed(head_init, features, "classes"),
                          bias_init=boxed(nn.initializers.zeros, "classes"),
                          name="head")(x)
        return logits.astype(jnp.float32)

    def _encode(self, x: jax.Array, size: ViTSize, *, deterministic: bool) -> jax.Array:
        block = EncoderBlock
        policy = REMAT_POLICIES[self.remat_policy]
        if self.remat_policy != "none":
            # Under scan, XLA cannot merge recomputation across iterations, so
            # the CSE barrier is unnecessary there and only costs speed.
            block = nn.remat(block, policy=policy, prevent_cse=not self.scan)
        kwargs = dict(num_heads=size.num_heads, mlp_dim=size.mlp_dim, dropout=self.dropout,
                      attention_impl=self.attention_impl, deterministic=deterministic,
                      dtype=self.dtype, param_dtype=self.param_dtype, exact_gelu=self.exact_gelu)
        if self.parametrization == "mup":
            kwargs["attention_scale"] = mup.attention_scale(
                size.width // size.num_heads, size.width / self.mup_base_width)
        if self.scan:
            stack = nn.scan(block, variable_axes={"params": 0},
                            split_rngs={"params": True, "dropout": True},
                            length=size.depth,
                            metadata_params={nn.PARTITION_NAME: "layers"})
            x, _ = stack(scanned=True, name="blocks", **kwargs)(x, None)
            return x
        for i in range(size.depth):
            x = block(name=f"block_{i}", **kwargs)(x)
        return x
