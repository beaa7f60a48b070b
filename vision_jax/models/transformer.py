"""A configurable Transformer (Flax Linen): the language models of the scaling tables.

One module covers the families the published scaling results were measured on:

  kind       'encoder' (BERT), 'decoder' (GPT, causal) or 'encoder_decoder'
             (Vaswani et al. 2017);
  position   'learned', 'sinusoidal', 'relative' (Transformer-XL, Dai et al.
             2019: a per-layer projection of sinusoids plus content/position
             biases) or 'rotary' (Su et al. 2021);
  mlp        'relu', 'gelu' or 'swiglu' (Shazeer 2020; three matrices);
  attention  multi-head, or multi-/grouped-query through `num_kv_heads`
             (Shazeer 2019), always via `jax.nn.dot_product_attention`;
  block      serial or parallel attention+MLP (GPT-J, PaLM), pre- or post-norm,
             LayerNorm or RMSNorm, biases on or off, tied or untied
             input/output embeddings.

Every parameter is created through `nn.with_logical_partitioning` with the
names of `vision_jax.sharding`, so the sharding rules of the config apply to
these models exactly as to the vision models.

`param_counts(cfg)` and `flops_per_token(cfg)` are the analytic counterparts
of the module; tests/test_scaling_tables.py checks them against the
instantiated model and against XLA's cost analysis, so the scaling tables can
use them for models too large to build.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax import mup

KINDS = ("encoder", "decoder", "encoder_decoder")
POSITIONS = ("learned", "sinusoidal", "relative", "rotary")
MLPS = ("relu", "gelu", "swiglu")
NORMS = ("layernorm", "rmsnorm")


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Architecture of one Transformer. Sizes are in elements, not bytes.

    `num_layers` is the depth of the only stack ('encoder'/'decoder') or of
    the encoder ('encoder_decoder', whose decoder depth is
    `num_decoder_layers`, defaulting to the same).
    """

    vocab_size: int
    d_model: int
    num_heads: int
    d_ff: int
    num_layers: int
    kind: str = "decoder"
    num_decoder_layers: int | None = None
    head_dim: int | None = None          # default d_model // num_heads
    num_kv_heads: int | None = None      # default num_heads; 1 = multi-query
    max_len: int = 1024                  # context length (and learned-table rows)
    position: str = "learned"
    mlp: str = "gelu"
    norm: str = "layernorm"
    pre_norm: bool = True
    parallel_block: bool = False
    use_bias: bool = True
    tie_embeddings: bool = True
    embed_norm: bool = False             # BERT: a norm over the summed embeddings
    scale_embeddings: bool = False       # Vaswani et al. 3.4: multiply by sqrt(d_model)
    num_segments: int = 0                # BERT token types (0: none)
    pooler: bool = False                 # BERT: tanh dense layer over the first token
    norm_eps: float = 1e-6
    rotary_base: float = 10_000.0
    scan_layers: bool = False            # nn.scan identical layers: one compiled/traced layer
    parametrization: str = "sp"          # or "mup" (Yang et al. 2022): vision_jax/mup.py
    mup_base_width: int = 0              # the d_model at which "mup" equals "sp"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        def check(ok, msg):
            if not ok:
                raise ValueError(f"TransformerConfig: {msg}")
        check(self.kind in KINDS, f"kind={self.kind!r} not in {KINDS}")
        check(self.position in POSITIONS, f"position={self.position!r} not in {POSITIONS}")
        check(self.mlp in MLPS, f"mlp={self.mlp!r} not in {MLPS}")
        check(self.norm in NORMS, f"norm={self.norm!r} not in {NORMS}")
        check(self.d_model > 0 and self.num_heads > 0 and self.d_ff > 0 and self.num_layers > 0,
              "d_model, num_heads, d_ff and num_layers must be positive")
        check(self.head_dim is not None or self.d_model % self.num_heads == 0,
              f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}; "
              "set head_dim explicitly")
        check(self.num_heads % self.kv_heads == 0,
              f"num_heads={self.num_heads} is not a multiple of num_kv_heads={self.kv_heads}")
        check(not (self.parallel_block and not self.pre_norm),
              "parallel_block needs pre_norm (both branches read one normalised input)")
        check(self.position != "rotary" or self.d_head % 2 == 0,
              f"rotary positions need an even head_dim, got {self.d_head}")
        check(self.num_decoder_layers is None or self.kind == "encoder_decoder",
              "num_decoder_layers only applies to kind='encoder_decoder'")
        mup.check("TransformerConfig", self.parametrization, self.mup_base_width)
        check(not (self.parametrization == "mup" and self.scale_embeddings),
              "scale_embeddings grows the input layer's output like sqrt(d_model), against muP")

    @property
    def d_head(self) -> int:
        return self.head_dim if self.head_dim is not None else self.d_model // self.num_heads

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads if self.num_kv_heads is not None else self.num_heads

    @property
    def decoder_layers(self) -> int:
        if self.kind == "encoder":
            return 0
        if self.kind == "decoder":
            return self.num_layers
        return self.num_decoder_layers if self.num_decoder_layers is not None else self.num_layers

    @property
    def encoder_layers(self) -> int:
        return 0 if self.kind == "decoder" else self.num_layers

    def replace(self, **kw) -> "TransformerConfig":
        return dataclasses.replace(self, **kw)


# ----------------------------------------------------------------------------- layers

def _init(names, scale: float = 1.0):
    """A variance-scaling initialiser that carries logical axis names."""
    return nn.with_logical_partitioning(
        nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal"), names)


def _zeros(names):
    return nn.with_logical_partitioning(nn.initializers.zeros_init(), names)


def _ones(names):
    return nn.with_logical_partitioning(nn.initializers.ones_init(), names)


def _norm(cfg: TransformerConfig, name: str) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(epsilon=cfg.norm_eps, dtype=cfg.dtype, param_dtype=cfg.param_dtype,
                          scale_init=_ones(("embed",)), name=name)
    return nn.LayerNorm(epsilon=cfg.norm_eps, dtype=cfg.dtype, param_dtype=cfg.param_dtype,
                        use_bias=cfg.use_bias, scale_init=_ones(("embed",)),
                        bias_init=_zeros(("embed",)), name=name)


def sinusoids(positions: jax.Array, dim: int, dtype=jnp.float32) -> jax.Array:
    """Vaswani et al. (2017) 3.5: sin on the first half of features, cos on the second."""
    half = dim // 2
    inv = jnp.exp(-math.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / max(half, 1))
    angles = positions.astype(jnp.float32)[..., None] * inv.reshape((1,) * positions.ndim + (half,))
    out = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
    if dim % 2:
        out = jnp.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, 1)])
    return out.astype(dtype)


def apply_rotary(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Rotates feature pairs (i, i + d/2) of x[B, T, H, D] by position-dependent angles."""
    half = x.shape[-1] // 2
    inv = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions.astype(jnp.float32)[:, :, None, None] * inv[None, None, None, :]  # [B, T, 1, half]
    sin, cos = jnp.sin(angles), jnp.cos(angles)
    x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)


class Attention(nn.Module):
    """Multi-head / multi-query attention; `kv_input` makes it cross-attention."""

    cfg: TransformerConfig
    causal: bool = False
    relative: bool = False   # Transformer-XL relative positions (self-attention only)

    @nn.compact
    def __call__(self, x, kv_input=None, mask=None):
        cfg = self.cfg
        kv_input = x if kv_input is None else kv_input
        proj = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype, use_bias=cfg.use_bias,
                    bias_init=_zeros(("heads", "kv")))
        q = nn.DenseGeneral((cfg.num_heads, cfg.d_head), kernel_init=_init(("embed", "heads", "kv")),
                            name="query", **proj)(x)
        k = nn.DenseGeneral((cfg.kv_heads, cfg.d_head), kernel_init=_init(("embed", "heads", "kv")),
                            name="key", **proj)(kv_input)
        v = nn.DenseGeneral((cfg.kv_heads, cfg.d_head), kernel_init=_init(("embed", "heads", "kv")),
                            name="value", **proj)(kv_input)
        scale = 1.0 / math.sqrt(cfg.d_head)
        if cfg.parametrization == "mup":  # 1/d_head (Yang et al. 2022), = SP at the base width
            scale = mup.attention_scale(cfg.d_head, cfg.d_model / cfg.mup_base_width)
        bias = None
        if cfg.position == "rotary" and kv_input is x:
            pos = jnp.broadcast_to(jnp.arange(x.shape[1]), x.shape[:2])
            q, k = apply_rotary(q, pos, cfg.rotary_base), apply_rotary(k, pos, cfg.rotary_base)
        if self.relative:
            bias = self._relative_bias(q, scale)
            u = self.param("content_bias", _zeros(("heads", "kv")), (cfg.num_heads, cfg.d_head),
                           cfg.param_dtype)
            q = q + u.astype(q.dtype)[None, None]
        out = jax.nn.dot_product_attention(q, k, v, bias=bias, mask=mask, scale=scale,
                                           is_causal=self.causal, implementation=None)
        return nn.DenseGeneral(cfg.d_model, axis=(-2, -1), dtype=cfg.dtype,
                               param_dtype=cfg.param_dtype, use_bias=cfg.use_bias,
                               kernel_init=_init(("heads", "kv", "embed")),
                               bias_init=_zeros(("embed",)), name="out")(out)

    def _relative_bias(self, q, scale):
        """Terms (b)+(d) of Dai et al. (2019) eq. 4: (q_i + v) . W_r R_{i-j}.

        R holds sinusoids of every distance i-j in [-(T-1), T-1]; the score for
        each (i, j) pair is gathered from the [T, 2T-1] product, which costs
        O(T^2 h d) like the content term and needs no 'relative shift' trick.
        """
        cfg = self.cfg
        t = q.shape[1]
        dist = jnp.arange(t - 1, -t, -1)                      # 2T-1 distances, descending
        r = sinusoids(dist, cfg.d_model, cfg.dtype)           # [2T-1, D]
        r = nn.DenseGeneral((cfg.num_heads, cfg.d_head), dtype=cfg.dtype, use_bias=False,
                            param_dtype=cfg.param_dtype, kernel_init=_init(("embed", "heads", "kv")),
                            name="relative")(r)               # [2T-1, H, K]
        v_bias = self.param("position_bias", _zeros(("heads", "kv")), (cfg.num_heads, cfg.d_head),
                            cfg.param_dtype)
        scores = jnp.einsum("bthk,rhk->bhtr", q + v_bias.astype(q.dtype)[None, None], r)  # [B, H, T, 2T-1]
        # distance i-j sits at column (T-1) - (i-j)
        idx = (t - 1) - (jnp.arange(t)[:, None] - jnp.arange(t)[None, :])
        idx = jnp.broadcast_to(idx, scores.shape[:2] + idx.shape)
        return scale * jnp.take_along_axis(scores, idx, axis=-1)  # [B, H, T, T]


class Mlp(nn.Module):
    cfg: TransformerConfig

    @nn.compact
    def __call__(self, x):
        cfg = self.cfg
        dense = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype, use_bias=cfg.use_bias)
        h = nn.Dense(cfg.d_ff, kernel_init=_init(("embed", "mlp")), bias_init=_zeros(("mlp",)),
                     name="wi", **dense)(x)
        if cfg.mlp == "swiglu":
            gate = nn.Dense(cfg.d_ff, kernel_init=_init(("embed", "mlp")),
                            bias_init=_zeros(("mlp",)), name="wi_gate", **dense)(x)
            h = nn.silu(gate) * h
        elif cfg.mlp == "gelu":
            h = nn.gelu(h)
        else:
            h = nn.relu(h)
        return nn.Dense(cfg.d_model, kernel_init=_init(("mlp", "embed")),
                        bias_init=_zeros(("embed",)), name="wo", **dense)(h)


class Block(nn.Module):
    """One layer: self-attention, optional cross-attention, MLP."""

    cfg: TransformerConfig
    causal: bool = False
    cross: bool = False

    @nn.compact
    def __call__(self, x, encoded=None, self_mask=None, cross_mask=None):
        cfg = self.cfg
        attn = Attention(cfg, causal=self.causal, relative=cfg.position == "relative",
                         name="self_attention")
        if cfg.parallel_block:
            h = _norm(cfg, "norm")(x)
            y = attn(h, mask=self_mask) + Mlp(cfg, name="mlp")(h)
            if self.cross:
                y = y + Attention(cfg, name="cross_attention")(h, encoded, cross_mask)
            return x + y
        sublayers = [("self_attention", lambda h: attn(h, mask=self_mask))]
        if self.cross:
            cross = Attention(cfg, name="cross_attention")
            sublayers.append(("cross_attention", lambda h: cross(h, encoded, cross_mask)))
        mlp = Mlp(cfg, name="mlp")
        sublayers.append(("mlp", mlp))
        for name, fn in sublayers:
            norm = _norm(cfg, f"{name}_norm")
            x = x + fn(norm(x)) if cfg.pre_norm else norm(x + fn(x))
        return x


class _ScannedBlock(nn.Module):
    """A Block in nn.scan's (carry, xs) -> (carry, ys) form."""

    cfg: TransformerConfig
    causal: bool = False
    cross: bool = False

    @nn.compact
    def __call__(self, x, encoded, self_mask, cross_mask):
        block = Block(self.cfg, causal=self.causal, cross=self.cross, name="block")
        return block(x, encoded, self_mask, cross_mask), None


def _stack(cfg: TransformerConfig, n: int, name: str, causal: bool, cross: bool):
    """`n` layers: a list of Blocks, or with cfg.scan_layers one `nn.scan`ned block.

    A scanned stack's parameters gain a leading 'layers' axis; tracing and
    compiling then cost one layer instead of n, which is what makes
    `jax.eval_shape` of PaLM 540B take a second. Call through `_run_stack`.
    """
    if cfg.scan_layers:
        scanned = nn.scan(_ScannedBlock, variable_axes={"params": 0},
                          split_rngs={"params": True}, in_axes=(nn.broadcast,) * 3, length=n,
                          metadata_params={nn.PARTITION_NAME: "layers"})
        return [scanned(cfg, causal=causal, cross=cross, name=name)]
    return [Block(cfg, causal=causal, cross=cross, name=f"{name}_{i}") for i in range(n)]


def _run_stack(cfg: TransformerConfig, stack, x, encoded, self_mask, cross_mask):
    if cfg.scan_layers:
        return stack[0](x, encoded, self_mask, cross_mask)[0]
    for block in stack:
        x = block(x, encoded, self_mask, cross_mask)
    return x


class Transformer(nn.Module):
    """Token ids in, logits over the vocabulary out.

    `__call__(tokens, decoder_tokens=None, *, segments=None, mask=None)`:
    for 'encoder_decoder' `tokens` feed the encoder and `decoder_tokens` the
    decoder; `mask` ([B, T] bool, True = real token) hides encoder padding.
    Returns a dict with 'logits' and, when the config has a pooler, 'pooled';
    an 'encoder' also returns its final hidden states [B, T, d_model] as 'hidden'.
    """

    cfg: TransformerConfig

    def setup(self):
        cfg = self.cfg
        self.embed = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=cfg.dtype,
                              param_dtype=cfg.param_dtype,
                              embedding_init=nn.with_logical_partitioning(
                                  nn.initializers.normal(1.0), ("vocab", "embed")))
        if cfg.position == "learned":
            self.position_table = self.param(
                "position_embedding",
                nn.with_logical_partitioning(nn.initializers.normal(0.02), ("seq", "embed")),
                (cfg.max_len, cfg.d_model), cfg.param_dtype)
        if cfg.num_segments:
            self.segment_table = self.param(
                "segment_embedding",
                nn.with_logical_partitioning(nn.initializers.normal(0.02), (None, "embed")),
                (cfg.num_segments, cfg.d_model), cfg.param_dtype)
        if cfg.embed_norm:
            self.embed_norms = [_norm(cfg, f"embed_norm_{s}")
                                for s in (["encoder", "decoder"] if cfg.kind == "encoder_decoder"
                                          else [cfg.kind])]
        if cfg.encoder_layers:
            self.encoder = _stack(cfg, cfg.encoder_layers, "encoder", causal=False, cross=False)
        if cfg.decoder_layers:
            self.decoder = _stack(cfg, cfg.decoder_layers, "decoder", causal=True,
                                  cross=cfg.kind == "encoder_decoder")
        stacks = (["encoder"] if cfg.encoder_layers else []) + (["decoder"] if cfg.decoder_layers else [])
        self.final_norms = {s: _norm(cfg, f"{s}_final_norm") for s in stacks} if cfg.pre_norm else {}
        if not cfg.tie_embeddings:
            unembed_init = _init(("embed", "vocab"))
            if cfg.parametrization == "mup":  # init std x sqrt(m): vision_jax/mup.py
                unembed_init = nn.with_logical_partitioning(mup.scale_init(
                    nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal"),
                    mup.multipliers("output", cfg.d_model / cfg.mup_base_width).init_std),
                    ("embed", "vocab"))
            self.unembed = nn.Dense(cfg.vocab_size, use_bias=False, dtype=cfg.dtype,
                                    param_dtype=cfg.param_dtype,
                                    kernel_init=unembed_init, name="unembed")
        if cfg.pooler:
            self.pooler_dense = nn.Dense(cfg.d_model, dtype=cfg.dtype, param_dtype=cfg.param_dtype,
                                         use_bias=cfg.use_bias, kernel_init=_init(("embed", "mlp")),
                                         bias_init=_zeros(("mlp",)), name="pooler")

    def _embed(self, tokens, segments, stack_index):
        cfg = self.cfg
        x = self.embed(tokens)
        if cfg.scale_embeddings:
            x = x * jnp.asarray(math.sqrt(cfg.d_model), x.dtype)
        t = tokens.shape[1]
        if t > cfg.max_len:
            raise ValueError(f"sequence length {t} exceeds max_len={cfg.max_len}")
        if cfg.position == "learned":
            x = x + self.position_table[None, :t].astype(x.dtype)
        elif cfg.position == "sinusoidal":
            x = x + sinusoids(jnp.arange(t), cfg.d_model, x.dtype)[None]
        if cfg.num_segments:
            seg = jnp.zeros_like(tokens) if segments is None else segments
            x = x + jnp.take(self.segment_table, seg, axis=0).astype(x.dtype)
        if cfg.embed_norm:
            x = self.embed_norms[stack_index](x)
        return x

    def _logits(self, x):
        if self.cfg.parametrization == "mup":  # the readout multiplier 1/m
            m = self.cfg.d_model / self.cfg.mup_base_width
            x = x * jnp.asarray(mup.multipliers("output", m).output, x.dtype)
        if self.cfg.tie_embeddings:
            return self.embed.attend(x)
        return self.unembed(x)

    def __call__(self, tokens, decoder_tokens=None, *, segments=None, mask=None):
        cfg = self.cfg
        if (cfg.kind == "encoder_decoder") != (decoder_tokens is not None):
            raise ValueError(f"kind={cfg.kind!r}: decoder_tokens must be given exactly when "
                             "the model is an encoder-decoder")
        attn_mask = None if mask is None else mask[:, None, None, :]
        out: dict[str, jax.Array] = {}
        encoded = None
        if cfg.encoder_layers:
            x = self._embed(tokens, segments, 0)
            x = _run_stack(cfg, self.encoder, x, None, attn_mask, None)
            encoded = self.final_norms["encoder"](x) if cfg.pre_norm else x
            if cfg.pooler:
                out["pooled"] = jnp.tanh(self.pooler_dense(encoded[:, 0]))
            if cfg.kind == "encoder":
                out["hidden"] = encoded
                out["logits"] = self._logits(encoded)
                return out
        y = self._embed(tokens if cfg.kind == "decoder" else decoder_tokens, None,
                        1 if cfg.kind == "encoder_decoder" else 0)
        y = _run_stack(cfg, self.decoder, y, encoded, None, attn_mask)
        if cfg.pre_norm:
            y = self.final_norms["decoder"](y)
        out["logits"] = self._logits(y)
        return out


# ----------------------------------------------------------------------------- analytic counts

def _attention_params(cfg: TransformerConfig, relative: bool) -> int:
    d, h, kv, k = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.d_head
    n = d * h * k + 2 * d * kv * k + h * k * d
    if cfg.use_bias:
        n += h * k + 2 * kv * k + d
    if relative:
        n += d * h * k + 2 * h * k   # W_r, content bias u, position bias v
    return n


def _mlp_params(cfg: TransformerConfig) -> int:
    mats = 3 if cfg.mlp == "swiglu" else 2
    n = mats * cfg.d_model * cfg.d_ff
    if cfg.use_bias:
        n += (mats - 1) * cfg.d_ff + cfg.d_model
    return n


def _norm_params(cfg: TransformerConfig) -> int:
    return cfg.d_model * (2 if cfg.norm == "layernorm" and cfg.use_bias else 1)


def _block_params(cfg: TransformerConfig, cross: bool) -> int:
    relative = cfg.position == "relative"
    n = _attention_params(cfg, relative) + _mlp_params(cfg)
    if cross:
        n += _attention_params(cfg, False)
    sublayers = 2 + int(cross)
    n += _norm_params(cfg) * (1 if cfg.parallel_block else sublayers)
    return n


def param_counts(cfg: TransformerConfig) -> dict[str, int]:
    """Exact parameter counts of `Transformer(cfg)`, without building it.

    'non_embedding' follows Kaplan et al. (2020, sec. 2.1): everything except
    the token, position and segment embeddings and an untied output matrix.
    """
    d = cfg.d_model
    token = cfg.vocab_size * d
    position = cfg.max_len * d if cfg.position == "learned" else 0
    segment = cfg.num_segments * d
    unembed = 0 if cfg.tie_embeddings else cfg.vocab_size * d
    stacks = (cfg.encoder_layers > 0) + (cfg.decoder_layers > 0)
    body = (cfg.encoder_layers * _block_params(cfg, cross=False)
            + cfg.decoder_layers * _block_params(cfg, cross=cfg.kind == "encoder_decoder"))
    body += _norm_params(cfg) * stacks * int(cfg.pre_norm)
    body += _norm_params(cfg) * stacks * int(cfg.embed_norm)
    body += (d * d + (d if cfg.use_bias else 0)) * int(cfg.pooler)
    embedding = token + position + segment + unembed
    return {"total": embedding + body, "embedding": embedding, "non_embedding": body}


def flops_per_token(cfg: TransformerConfig, seq_len: int | None = None) -> dict[str, float]:
    """Forward FLOPs (2 x multiply-accumulates) per token at context `seq_len`.

    Counts the matrix multiplications the module performs, with the attention
    scores over the full context (a causal mask is applied to a dense product,
    as `jax.nn.dot_product_attention` does; Kaplan et al. 2020 count the same
    way). Elementwise work (norms, softmax, activations) is left out; it is a
    few percent for any model in the tables. For an encoder-decoder a "token"
    is one source token plus one target token with equal lengths.

    Returns forward, forward_no_attention (the context-independent part, what
    2N estimates), train and train_no_attention (3 x forward: the backward
    pass costs two forward passes).
    """
    t = cfg.max_len if seq_len is None else seq_len
    d, h, kv, k, f = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.d_head, cfg.d_ff
    proj = d * h * k + 2 * d * kv * k + h * k * d          # q, k, v, out per token
    mlp = (3 if cfg.mlp == "swiglu" else 2) * d * f
    scores = 2 * t * h * k                                 # q.k and p.v per token
    rel = 0.0
    if cfg.position == "relative":
        # the (q+v).W_r R product over 2T-1 distances; projecting R itself happens once
        # per batch (it has no batch axis), so it vanishes per token
        rel = (2 * t - 1) * h * k
    enc_layer_dense, enc_layer_attn = proj + mlp, scores + rel
    dec_layer_dense, dec_layer_attn = proj + mlp, scores + rel
    if cfg.kind == "encoder_decoder":
        dec_layer_dense += proj                            # cross q/out per target, k/v per source
        dec_layer_attn += scores
    logits = d * cfg.vocab_size
    pooler = d * d / t if cfg.pooler else 0.0
    dense = (cfg.encoder_layers * enc_layer_dense + cfg.decoder_layers * dec_layer_dense
             + logits + pooler)
    attn = cfg.encoder_layers * enc_layer_attn + cfg.decoder_layers * dec_layer_attn
    fwd, fwd_no_attn = 2.0 * (dense + attn), 2.0 * dense
    return {"forward": fwd, "forward_no_attention": fwd_no_attn,
            "train": 3.0 * fwd, "train_no_attention": 3.0 * fwd_no_attn}


def from_mapping(m: Mapping[str, Any]) -> TransformerConfig:
    """A config from a plain mapping (e.g. a ConfigDict); unknown keys are errors."""
    fields = {f.name for f in dataclasses.fields(TransformerConfig)}
    unknown = set(m) - fields
    if unknown:
        raise ValueError(f"unknown Transformer config keys {sorted(unknown)}; "
                         f"valid: {sorted(fields)}")
    return TransformerConfig(**dict(m))
