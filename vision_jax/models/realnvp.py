"""RealNVP (Dinh et al. 2017, "Density estimation using Real NVP", arXiv:1605.08803),
sized for 16x16 images.

    forward: x [B, H, W, C], dequantised pixel values in [0, 256) -> (z [B, H*W*C], log_det [B])
    inverse: z [B, H*W*C] -> x

An invertible map whose Jacobian log-determinant is cheap, so the density is
exact: log p(x) = log N(z; 0, I) + log|det dz/dx|.

  - Into model space: y = a + (1 - 2a) x / 256 with a = 0.05 (`alpha`), then
    logit(y) (Dinh et al. Sec. 4.1 write logit(a + (1 - a) x / 256); the margin
    here is symmetric, so that y stays below 1 for x near 256). Its log-determinant, per subpixel
    log((1 - 2a) / 256) - log y - log(1 - y), is part of log_det, so the
    density is over raw pixel values, the [0, 255] scale bits/dim is defined on.
  - Affine coupling (Sec. 3.3): with a binary mask b, y = b x + (1 - b)(x exp(s(b x))
    + t(b x)); log_det += sum (1 - b) s. s = scale * tanh(s_raw) with a learned
    per-channel scale (their code's bounded scales); s and t come from one
    small ResNet (3x3 convolutions, ReLU) that also sees b as an extra channel.
    Checkerboard masks (b = (i + j) mod 2, alternating parity) act on the
    spatial layout; channel masks (the first or second half of the channels)
    after a squeeze.
  - Multi-scale (Sec. 3.6): each scale but the last is three checkerboard
    couplings, a squeeze (each 2x2 patch to 4x the channels), three channel
    couplings, and then half of the channels leave as latents (they are
    Gaussian from here on); the last scale is four checkerboard couplings.

The coupling networks' last convolution starts small (1% of the fan-in
variance: outputs ~0.1 of their inputs' scale), so the flow starts near the
identity after the logit; a zero start would give the layers before it no
gradient at the first step.

Sizes (`variant`), as (ResNet width, residual blocks per coupling, scales):
"""

from __future__ import annotations

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.models.layers import boxed, check_choice

SIZES: dict[str, tuple[int, int, int]] = {
    "T": (8, 1, 2),       # tests
    "S": (32, 1, 2),      # the CPU run of configs/realnvp.py
    # Dinh et al.'s CIFAR-10 model (their Sec. 4): 8 residual blocks of 64 features,
    # one squeeze (two scales); 3.49 bits/dim in their Table 1.
    "B": (64, 8, 2),
}
__doc__ += "".join(f"\n  {k:<2} {v}" for k, v in SIZES.items()) + "\n"

INIT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
OUT_INIT = nn.initializers.variance_scaling(0.01, "fan_in", "normal")
CONV_NAMES = (None, None, "conv_in", "conv_out")
LEVELS = 256.0


def squeeze(x):
    """[B, H, W, C] -> [B, H/2, W/2, 4C]: each 2x2 patch into the channels."""
    return einops.rearrange(x, "b (h p) (w q) c -> b h w (p q c)", p=2, q=2)


def unsqueeze(x):
    return einops.rearrange(x, "b h w (p q c) -> b (h p) (w q) c", p=2, q=2)


def checkerboard(height: int, width: int, parity: int) -> np.ndarray:
    """[1, H, W, 1]: 1 where (i + j) mod 2 == parity (the conditioning half)."""
    i, j = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return ((i + j) % 2 == parity).astype(np.float32)[None, :, :, None]


class CouplingNet(nn.Module):
    """A small ResNet: [B, H, W, Cin] -> (s_raw, t), each [B, H, W, out]."""

    out: int
    width: int
    blocks: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def conv(self, x, features, name, init=INIT):
        return nn.Conv(features, (3, 3), padding="SAME", dtype=self.dtype,
                       param_dtype=self.param_dtype, kernel_init=boxed(init, *CONV_NAMES),
                       bias_init=boxed(nn.initializers.zeros, "conv_out"), name=name)(x)

    @nn.compact
    def __call__(self, x):
        h = self.conv(x.astype(self.dtype), self.width, "conv_in")
        for i in range(self.blocks):
            r = self.conv(nn.relu(h), self.width, f"block_{i}_0")
            h = h + self.conv(nn.relu(r), self.width, f"block_{i}_1")
        out = self.conv(nn.relu(h), 2 * self.out, "conv_out", init=OUT_INIT)
        s_raw, t = jnp.split(out.astype(jnp.float32), 2, axis=-1)
        return s_raw, t


class Coupling(nn.Module):
    """One affine coupling layer: (x, reverse) -> (y, log_det [B])."""

    kind: str = "checkerboard"    # or "channel"
    parity: int = 0
    width: int = 32
    blocks: int = 2
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, reverse: bool = False):
        check_choice("realnvp", "coupling", self.kind, ("checkerboard", "channel"))
        b, hh, ww, c = x.shape
        out = c if self.kind == "checkerboard" else c // 2
        scale = self.param("scale", boxed(nn.initializers.ones, "norm"), (out,),
                           self.param_dtype).reshape(1, 1, 1, out)
        net = CouplingNet(out=out, width=self.width, blocks=self.blocks,
                          dtype=self.dtype, param_dtype=self.param_dtype, name="net")
        if self.kind == "checkerboard":
            mask = jnp.asarray(checkerboard(hh, ww, self.parity))
            s_raw, t = net(jnp.concatenate([x * mask, jnp.broadcast_to(mask, (b, hh, ww, 1))],
                                           axis=-1))
            s = (1.0 - mask) * scale * jnp.tanh(s_raw)
            t = (1.0 - mask) * t
            y = (x - t) * jnp.exp(-s) if reverse else x * jnp.exp(s) + t
            return y, s.sum(axis=(1, 2, 3))
        if c % 2:
            raise ValueError(f"realnvp: a channel coupling needs an even channel count, got {c}")
        keep, change = jnp.split(x, 2, axis=-1)
        if self.parity:
            keep, change = change, keep
        s_raw, t = net(keep)
        s = scale * jnp.tanh(s_raw)
        change = (change - t) * jnp.exp(-s) if reverse else change * jnp.exp(s) + t
        parts = (change, keep) if self.parity else (keep, change)
        return jnp.concatenate(parts, axis=-1), s.sum(axis=(1, 2, 3))


class RealNVP(nn.Module):
    variant: str = "S"
    alpha: float = 0.05
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def setup(self):
        check_choice("realnvp", "variant", self.variant, SIZES)
        width, blocks, scales = SIZES[self.variant]
        common = {"width": width, "blocks": blocks, "dtype": self.dtype,
                  "param_dtype": self.param_dtype}
        layers, plan = [], []
        for s in range(scales):
            last = s == scales - 1
            for i in range(4 if last else 3):
                plan.append(("couple", len(layers)))
                layers.append(Coupling(kind="checkerboard", parity=i % 2, **common))
            if last:
                break
            plan.append(("squeeze", None))
            for i in range(3):
                plan.append(("couple", len(layers)))
                layers.append(Coupling(kind="channel", parity=i % 2, **common))
            plan.append(("factor", None))
        self.layers = layers
        self.plan = tuple(plan)

    def _check(self, shape):
        scales = SIZES[self.variant][2]
        if shape[1] % 2 ** (scales - 1) or shape[2] % 2 ** (scales - 1):
            raise ValueError(f"realnvp: image size {shape[1:3]} must be divisible by "
                             f"{2 ** (scales - 1)} ({scales} scales)")

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """Pixel values in [0, 256) -> (z [B, D], log|det dz/dx| [B])."""
        self._check(x.shape)
        a = self.alpha
        y = a + (1.0 - 2.0 * a) * x.astype(jnp.float32) / LEVELS
        h = jnp.log(y) - jnp.log1p(-y)
        log_det = (np.log((1.0 - 2.0 * a) / LEVELS) - jnp.log(y) - jnp.log1p(-y)).sum(
            axis=(1, 2, 3))
        out = []
        for op, i in self.plan:
            if op == "couple":
                h, ld = self.layers[i](h)
                log_det = log_det + ld
            elif op == "squeeze":
                h = squeeze(h)
            else:
                z, h = jnp.split(h, 2, axis=-1)
                out.append(z.reshape(z.shape[0], -1))
        out.append(h.reshape(h.shape[0], -1))
        return jnp.concatenate(out, axis=-1), log_det

    def inverse(self, z, image_shape):
        """z [B, D] -> pixel values x [B, *image_shape] (continuous; in [0, 256) for
        z in the image of `forward`)."""
        self._check((0, *image_shape))
        shapes = self._shapes(tuple(image_shape))
        sizes = [int(np.prod(s)) for s in shapes]
        pieces = jnp.split(z, np.cumsum(sizes)[:-1], axis=-1)
        pieces = [p.reshape(p.shape[0], *s) for p, s in zip(pieces, shapes)]
        h = pieces.pop()
        for op, i in reversed(self.plan):
            if op == "couple":
                h, _ = self.layers[i](h, reverse=True)
            elif op == "squeeze":
                h = unsqueeze(h)
            else:
                h = jnp.concatenate([pieces.pop(), h], axis=-1)
        a = self.alpha
        return (jax.nn.sigmoid(h) - a) / (1.0 - 2.0 * a) * LEVELS

    def _shapes(self, image_shape):
        """The per-example shapes of the latents `forward` concatenates, in its order."""
        h, w, c = image_shape
        shapes = []
        for op, _ in self.plan:
            if op == "squeeze":
                h, w, c = h // 2, w // 2, 4 * c
            elif op == "factor":
                shapes.append((h, w, c // 2))
                c -= c // 2
        return shapes + [(h, w, c)]
