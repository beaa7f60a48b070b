"""Video classifiers: clips [B, T, H, W, C] -> logits [B, num_classes].

The course's ladder of ways to let a network see time, each small enough for
a CPU and built from the same pieces (3x3 convolutions, ReLU, max pooling, a
dense head) so that they differ only in where time enters:

  single_frame  a 2D CNN on the middle frame (index T // 2) alone: the
                baseline that cannot see motion (Karpathy et al. 2014,
                "Large-scale Video Classification with CNNs", "single frame")
  late_fusion   the same 2D CNN on every frame, its final feature maps
                fused over time: 'concat' in time order into the head
                (Karpathy et al. 2014 merge two towers in their FC layers) or
                'mean' (order-blind: a clip and its time reversal look alike)
  early_fusion  frames stacked into channels, [H, W, T*C], into a 2D CNN:
                time is consumed by the first convolution (Karpathy et al. 2014)
  c3d           3x3x3 convolutions and 3-D pooling, the first pool spatial
                only (Tran et al. 2015, "Learning Spatiotemporal Features with
                3D Convolutional Networks")
  r2plus1d      every 3x3x3 convolution factorised into a 1x3x3 spatial one to
                M channels, a ReLU, and a 3x1x1 temporal one, M chosen so the
                pair has the parameters of the 3-D kernel (Tran et al. 2018,
                "A Closer Look at Spatiotemporal Convolutions", Sec. 3.5)
  two_stream    a spatial stream (2D CNN on the middle frame's RGB) and a
                temporal stream (2D CNN on the clip's motion stacked into
                channels: frame differences, or a dense Lucas-Kanade flow
                computed inside the model), their logits averaged or their
                features concatenated (Simonyan & Zisserman 2014, "Two-Stream
                Convolutional Networks for Action Recognition in Videos")
  timesformer   a ViT on per-frame patches with divided space-time attention:
                in each block, attention over time at each patch position,
                then attention over the patches of each frame, then the MLP
                (Bertasius et al. 2021, "Is Space-Time Attention All You Need
                for Video Understanding?"; ViViT's factorised variants, Arnab
                et al. 2021, are the same idea)

The convolutional models are norm-free (ReLU after every convolution), which
at these depths trains well with Adam; the papers use batch norm. Every
parameter carries logical axis names (vision_jax/sharding.py); the
Transformer reuses models/vit.py's attention, MLP and encoder block.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import boxed, check_choice, check_positive, check_rate, patchify
from vision_jax.models.vit import EncoderBlock, SelfAttention

LATE_FUSION_POOLS = ("concat", "mean")
MOTION_INPUTS = ("difference", "flow")
TWO_STREAM_FUSIONS = ("mean", "concat")


def _check_clips(owner: str, clips: jax.Array) -> None:
    if clips.ndim != 5:
        raise ValueError(f"{owner}: expects clips [B, T, H, W, C], got shape {clips.shape}; "
                         "train it on a video dataset (data.name='moving_shapes')")


def r2plus1d_mid_channels(t: int, d: int, n_in: int, n_out: int) -> int:
    """M of Tran et al. 2018, Sec. 3.5: floor(t d^2 N_in N_out / (d^2 N_in + t N_out)),
    which gives the (2+1)D pair (d x d to M, then t x 1 x 1 to N_out) the
    weights of one t x d x d convolution."""
    return (t * d * d * n_in * n_out) // (d * d * n_in + t * n_out)


class SpaceTimeConv(nn.Module):
    """A 'SAME' 3-D convolution of clips [B, T, H, W, C] with a (kt, kh, kw)
    kernel, computed as one 2-D convolution.

    The kt time-shifted copies of the clip are stacked into channels, and the
    kernel [kt, kh, kw, C, F] is reshaped to [kh, kw, kt * C, F] to match:
    the same sums as `nn.Conv` with a 3-D kernel (tested), but XLA's CPU
    backend runs 2-D convolutions far faster than 3-D ones (about 10x on the
    models here), which decides whether a CPU lab note fits in minutes.
    """

    features: int
    kernel_size: tuple[int, int, int]
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kt, kh, kw = self.kernel_size
        b, t, h, w, c = x.shape
        kernel = self.param("kernel", boxed(nn.initializers.he_normal(), None, None, None,
                                            "conv_in", "conv_out"),
                            (kt, kh, kw, c, self.features), self.param_dtype)
        bias = self.param("bias", boxed(nn.initializers.zeros, "conv_out"), (self.features,),
                          self.param_dtype)
        before = (kt - 1) // 2  # 'SAME' padding in time, as nn.Conv pads
        padded = jnp.pad(x, ((0, 0), (before, kt - 1 - before), (0, 0), (0, 0), (0, 0)))
        stacked = jnp.concatenate([padded[:, i:i + t] for i in range(kt)], axis=-1)
        kernel = kernel.transpose(1, 2, 0, 3, 4).reshape(kh, kw, kt * c, self.features)
        y = jax.lax.conv_general_dilated(
            stacked.reshape(b * t, h, w, kt * c).astype(self.dtype), kernel.astype(self.dtype),
            (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = y + bias.astype(self.dtype).reshape(1, 1, 1, self.features)
        return y.reshape(b, t, h, w, self.features)


class _ConvVideoNet(nn.Module):
    """What the convolutional video models share: widths, convolutions, head."""

    num_classes: int
    channels: tuple[int, ...] = (16, 32, 64)
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        if isinstance(self.channels, int) or not self.channels or not all(
                isinstance(c, int) and c > 0 for c in self.channels):
            raise ValueError(f"{owner}: channels={self.channels!r} must be a non-empty "
                             "sequence of positive integers, e.g. (16, 32, 64)")
        super().__post_init__()

    def conv(self, width: int, kernel: tuple[int, int], name: str) -> nn.Conv:
        """A 'SAME' 2-D convolution with He init."""
        return nn.Conv(width, kernel, padding="SAME", dtype=self.dtype,
                       param_dtype=self.param_dtype,
                       kernel_init=boxed(nn.initializers.he_normal(), None, None, "conv_in",
                                         "conv_out"),
                       bias_init=boxed(nn.initializers.zeros, "conv_out"), name=name)

    def frame_trunk(self, x: jax.Array, prefix: str = "") -> jax.Array:
        """2-D stages on images [N, H, W, C]: (3x3 conv, ReLU, 2x2 max pool) per
        width; `prefix` names a second tower in the same model."""
        for stage, width in enumerate(self.channels):
            x = nn.relu(self.conv(width, (3, 3), f"{prefix}conv{stage}")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        return x

    def head(self, features: jax.Array, name: str = "head") -> jax.Array:
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                          kernel_init=boxed(nn.initializers.lecun_normal(), "embed", "classes"),
                          bias_init=boxed(nn.initializers.zeros, "classes"), name=name)(features)
        return logits.astype(jnp.float32)


class SingleFrame(_ConvVideoNet):
    @nn.compact
    def __call__(self, clips: jax.Array, *, train: bool) -> jax.Array:
        _check_clips(type(self).__name__, clips)
        x = self.frame_trunk(clips[:, clips.shape[1] // 2].astype(self.dtype))
        return self.head(x.mean(axis=(1, 2)))


class LateFusion(_ConvVideoNet):
    pool: str = "concat"

    def __post_init__(self):
        check_choice(type(self).__name__, "pool", self.pool, LATE_FUSION_POOLS)
        super().__post_init__()

    @nn.compact
    def __call__(self, clips: jax.Array, *, train: bool) -> jax.Array:
        _check_clips(type(self).__name__, clips)
        b, t = clips.shape[:2]
        # One tower, shared by all frames: frames join the batch axis.
        x = self.frame_trunk(clips.reshape(b * t, *clips.shape[2:]).astype(self.dtype))
        # The final map keeps where things are; fusing it over time shows how they moved.
        x = x.reshape(b, t, -1)
        x = x.reshape(b, -1) if self.pool == "concat" else x.mean(axis=1)
        return self.head(x)


class EarlyFusion(_ConvVideoNet):
    @nn.compact
    def __call__(self, clips: jax.Array, *, train: bool) -> jax.Array:
        _check_clips(type(self).__name__, clips)
        b, t, h, w, c = clips.shape
        x = clips.transpose(0, 2, 3, 1, 4).reshape(b, h, w, t * c)  # channels: t-major
        x = self.frame_trunk(x.astype(self.dtype))
        return self.head(x.mean(axis=(1, 2)))


class C3D(_ConvVideoNet):
    """Stages of (3x3x3 convolution, ReLU, pooling), then global average pooling.

    Pooling halves H and W at every stage and T from the second stage on (C3D
    keeps time intact in its first pool so early layers see motion), never
    below one frame. Subclasses change how a stage convolves (`space_time_conv`).
    """

    def space_time_conv(self, x: jax.Array, width: int, name: str) -> jax.Array:
        return SpaceTimeConv(width, (3, 3, 3), self.dtype, self.param_dtype, name=name)(x)

    @nn.compact
    def __call__(self, clips: jax.Array, *, train: bool) -> jax.Array:
        _check_clips(type(self).__name__, clips)
        x = clips.astype(self.dtype)
        for stage, width in enumerate(self.channels):
            x = nn.relu(self.space_time_conv(x, width, f"conv{stage}"))
            pool_t = 2 if stage > 0 and x.shape[1] >= 2 else 1
            x = nn.max_pool(x, (pool_t, 2, 2), strides=(pool_t, 2, 2))
        return self.head(x.mean(axis=(1, 2, 3)))


class R2Plus1D(C3D):
    def space_time_conv(self, x, width, name):
        mid = r2plus1d_mid_channels(3, 3, x.shape[-1], width)
        x = nn.relu(SpaceTimeConv(mid, (1, 3, 3), self.dtype, self.param_dtype,
                                  name=f"{name}_space")(x))
        return SpaceTimeConv(width, (3, 1, 1), self.dtype, self.param_dtype,
                             name=f"{name}_time")(x)


def _box_sum(x: jax.Array, window: int) -> jax.Array:
    """Sums of x [N, H, W] over window x window neighbourhoods (zeros past the border)."""
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, window, window), (1, 1, 1), "SAME")


def lucas_kanade_flow(first: jax.Array, second: jax.Array, *, window: int = 5,
                      ridge: float = 1e-2) -> jax.Array:
    """Dense optical flow from images `first` to `second` [N, H, W, C] -> [N, H, W, 2]
    (u, v): pixels per frame along W and H.

    Lucas & Kanade 1981: at every pixel, the (u, v) that best satisfies the
    brightness-constancy constraint Ix u + Iy v + It = 0 over its window x window
    neighbourhood, in least squares, with the constraints of all C channels
    pooled (colour edges count as well as grey ones). Ix, Iy are central
    differences of the two frames' mean, It = second - first. The 2x2 normal
    equations get `ridge` added to their diagonal, so flat regions (no
    gradient) read as no motion rather than an ill-posed one. One level, no
    warping: it measures shifts of about a pixel per frame, the speeds of
    `moving_shapes`. Not differentiated: the caller stops gradients.
    """
    mean = (first + second) / 2
    padded = jnp.pad(mean, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    ix = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2
    iy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2
    it = second - first
    s = lambda a, b: _box_sum((a * b).sum(-1), window)  # noqa: E731
    sxx, sxy, syy, sxt, syt = s(ix, ix) + ridge, s(ix, iy), s(iy, iy) + ridge, s(ix, it), s(iy, it)
    det = sxx * syy - sxy * sxy
    u = (sxy * syt - syy * sxt) / det
    v = (sxy * sxt - sxx * syt) / det
    return jnp.stack([u, v], axis=-1)


def motion_input(clips: jax.Array, motion: str = "difference", *,
                 flow_window: int = 5) -> jax.Array:
    """What a two-stream model's temporal stream sees: clips [B, T, H, W, C] ->
    [B, T - 1, H, W, K], one map per consecutive pair of frames: the frame
    difference (K = C) or the Lucas-Kanade flow (K = 2). Zero on a static clip
    either way. A fixed function of the pixels (Simonyan & Zisserman compute
    flow before training), hence stop_gradient."""
    check_choice("motion_input", "motion", motion, MOTION_INPUTS)
    first, second = clips[:, :-1], clips[:, 1:]
    if motion == "difference":
        out = second - first
    else:
        b, t, h, w, c = first.shape
        out = lucas_kanade_flow(first.reshape(b * t, h, w, c), second.reshape(b * t, h, w, c),
                                window=flow_window).reshape(b, t, h, w, 2)
    return jax.lax.stop_gradient(out)


class TwoStream(_ConvVideoNet):
    """Simonyan & Zisserman 2014: a spatial stream on the middle frame (T // 2,
    the single-frame model's frame) and a temporal stream on the motion
    between every pair of consecutive frames stacked into channels,
    [H, W, (T - 1) * K] (`motion_input`), each the 2D trunk of the other
    models with its own weights. fusion='mean' averages the two streams'
    logits (the paper's averaging; here trained jointly, not one stream at a
    time), 'concat' joins their pooled features into one head."""

    motion: str = "difference"
    fusion: str = "mean"
    flow_window: int = 5

    def __post_init__(self):
        owner = type(self).__name__
        check_choice(owner, "motion", self.motion, MOTION_INPUTS)
        check_choice(owner, "fusion", self.fusion, TWO_STREAM_FUSIONS)
        check_positive(owner, "flow_window", self.flow_window)
        super().__post_init__()

    @nn.compact
    def __call__(self, clips: jax.Array, *, train: bool) -> jax.Array:
        _check_clips(type(self).__name__, clips)
        clips = clips.astype(self.dtype)
        b, t, h, w, _ = clips.shape
        if t < 2:
            raise ValueError(f"TwoStream: a clip of {t} frame has no motion; needs T >= 2")
        spatial = self.frame_trunk(clips[:, t // 2], "spatial_").mean(axis=(1, 2))
        motion = motion_input(clips, self.motion, flow_window=self.flow_window)
        motion = motion.transpose(0, 2, 3, 1, 4).reshape(b, h, w, -1)  # channels: t-major
        temporal = self.frame_trunk(motion, "temporal_").mean(axis=(1, 2))
        if self.fusion == "concat":
            return self.head(jnp.concatenate([spatial, temporal], axis=-1))
        return (self.head(spatial, "spatial_head") + self.head(temporal, "temporal_head")) / 2


class DividedSpaceTimeBlock(nn.Module):
    """x + time_attn(LN(x)) at each patch position, then vit.EncoderBlock over the
    patches of each frame (x + space_attn(LN(x)), x + mlp(LN(x))). x: [B, T, N, D]."""

    num_heads: int
    mlp_dim: int
    dropout: float
    attention_impl: str | None
    deterministic: bool
    dtype: Any
    param_dtype: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, n, d = x.shape
        y = x.transpose(0, 2, 1, 3).reshape(b * n, t, d)  # sequences over time
        y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, param_dtype=self.param_dtype,
                         scale_init=boxed(nn.initializers.ones, "embed"),
                         bias_init=boxed(nn.initializers.zeros, "embed"), name="norm_time")(y)
        y = SelfAttention(self.num_heads, self.attention_impl, self.dtype, self.param_dtype,
                          name="time_attention")(y)
        y = nn.Dropout(self.dropout, deterministic=self.deterministic)(y)
        x = x + y.reshape(b, n, t, d).transpose(0, 2, 1, 3)
        x = EncoderBlock(self.num_heads, self.mlp_dim, self.dropout, self.attention_impl,
                         self.deterministic, self.dtype, self.param_dtype,
                         name="space")(x.reshape(b * t, n, d))
        return x.reshape(b, t, n, d)


class TimeSformer(nn.Module):
    """Factorised space-time ViT: per-frame patch embedding, learned space and
    time position embeddings (added, as in TimeSformer), `depth` divided
    space-time blocks, LayerNorm, mean over all tokens, head."""

    num_classes: int
    patch: int = 4
    width: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_dim: int = 128
    dropout: float = 0.0
    attention_impl: str | None = None
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        for key in ("num_classes", "patch", "width", "depth", "num_heads", "mlp_dim"):
            check_positive(owner, key, getattr(self, key))
        if self.width % self.num_heads:
            raise ValueError(f"{owner}: width={self.width} is not divisible by "
                             f"num_heads={self.num_heads}")
        check_rate(owner, "dropout", self.dropout)
        check_choice(owner, "attention_impl", self.attention_impl, (None, "xla", "cudnn"))
        super().__post_init__()

    @nn.compact
    def __call__(self, clips: jax.Array, *, train: bool) -> jax.Array:
        _check_clips(type(self).__name__, clips)
        b, t, h, w, c = clips.shape
        if h % self.patch or w % self.patch:
            raise ValueError(f"TimeSformer: frames {h}x{w} are not divisible by "
                             f"patch={self.patch}")
        x = nn.Conv(self.width, (self.patch, self.patch), strides=(self.patch, self.patch),
                    padding="VALID", dtype=self.dtype, param_dtype=self.param_dtype,
                    kernel_init=boxed(nn.initializers.lecun_normal(), None, None, None, "embed"),
                    bias_init=boxed(nn.initializers.zeros, "embed"), name="embedding")(
                        clips.reshape(b * t, h, w, c).astype(self.dtype))
        x = patchify(x).reshape(b, t, -1, self.width)  # [B, T, N, D]
        pos = lambda name, shape: self.param(  # noqa: E731
            name, boxed(nn.initializers.normal(stddev=0.02), None, "seq", "embed"), shape,
            self.param_dtype).astype(self.dtype)
        x = x + pos("space_embedding", (1, x.shape[2], self.width))[:, None]
        x = x + pos("time_embedding", (1, t, self.width))[:, :, None]
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        for i in range(self.depth):
            x = DividedSpaceTimeBlock(self.num_heads, self.mlp_dim, self.dropout,
                                      self.attention_impl, not train, self.dtype,
                                      self.param_dtype, name=f"block_{i}")(x)
        x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, param_dtype=self.param_dtype,
                         scale_init=boxed(nn.initializers.ones, "embed"),
                         bias_init=boxed(nn.initializers.zeros, "embed"),
                         name="encoder_norm")(x)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                          kernel_init=boxed(nn.initializers.zeros, "embed", "classes"),
                          bias_init=boxed(nn.initializers.zeros, "classes"),
                          name="head")(x.mean(axis=(1, 2)))
        return logits.astype(jnp.float32)


VIDEO_MODELS: dict[str, type[nn.Module]] = {
    "single_frame": SingleFrame,
    "late_fusion": LateFusion,
    "early_fusion": EarlyFusion,
    "c3d": C3D,
    "r2plus1d": R2Plus1D,
    "two_stream": TwoStream,
    "timesformer": TimeSformer,
}
