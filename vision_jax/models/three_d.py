"""3-D networks for `vision_jax/tasks/three_d.py`: a NeRF field, PointNet and a
single-view voxel predictor. Tiny by default (CPU-sized); widths come from the config.

NeRF (Mildenhall et al. 2020, "NeRF: Representing Scenes as Neural Radiance
Fields for View Synthesis", arXiv:2003.08934): points x [..., 3] ->
positional encoding gamma(x) = (x, sin(2^k x), cos(2^k x))_{k < L} -> an MLP
with one skip (gamma(x) concatenated again half way) -> density
sigma = softplus(.) >= 0 and colour sigmoid(.) in [0, 1]. No view
directions: the dataset's radiance does not depend on them.

PointNet (Qi et al. 2017, "PointNet: Deep Learning on Point Sets for 3D
Classification and Segmentation", arXiv:1612.00593): a shared per-point MLP,
a max pool over the points (the symmetric function that makes the network
invariant to the points' order), then an MLP head. `tnet=True` adds the
input transform: a small PointNet predicts a 3x3 matrix (started at the
identity) that multiplies every point first.

VoxelNet (the 3D-R2N2 thread, Choy et al. 2016, arXiv:1604.00449, without
the recurrent unit): a 2-D CNN encodes the image to a vector, a dense layer
maps it to a 4^3 feature volume, 2x2x2 stride-2 transposed convolutions
(`upsample`) double it to the grid and a per-voxel Dense gives the
occupancy logits [B, V, V, V].
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def positional_encoding(x: jax.Array, num_freqs: int) -> jax.Array:
    """[..., D] -> [..., D (1 + 2 num_freqs)]: x, then sin and cos of 2^k x for k < num_freqs."""
    freqs = (2.0 ** jnp.arange(num_freqs, dtype=x.dtype)).reshape((1,) * x.ndim + (num_freqs,))
    xb = (x[..., None] * freqs).reshape(*x.shape[:-1], -1)  # [..., D * L]
    return jnp.concatenate([x, jnp.sin(xb), jnp.cos(xb)], -1)


class NeRFField(nn.Module):
    """x [..., 3] -> (density [...], rgb [..., 3])."""

    width: int = 64
    depth: int = 4
    num_freqs: int = 6

    @nn.compact
    def __call__(self, x):
        encoded = positional_encoding(x, self.num_freqs)
        h = encoded
        for i in range(self.depth):
            if i == self.depth // 2 and i > 0:  # the skip of NeRF's MLP
                h = jnp.concatenate([h, encoded], -1)
            h = nn.relu(nn.Dense(self.width)(h))
        sigma = jax.nn.softplus(nn.Dense(1)(h)[..., 0])
        rgb = jax.nn.sigmoid(nn.Dense(3)(h))
        return sigma, rgb


class PointNet(nn.Module):
    """points [B, N, 3] -> logits [B, num_classes]."""

    num_classes: int
    features: tuple[int, ...] = (32, 64, 128)
    head: tuple[int, ...] = (64,)
    tnet: bool = False

    @nn.compact
    def __call__(self, points):
        if self.tnet:
            h = points
            for f in self.features[:2]:
                h = nn.relu(nn.Dense(f)(h))
            matrix = nn.Dense(9, kernel_init=nn.initializers.zeros)(h.max(1))
            matrix = matrix.reshape(-1, 3, 3) + jnp.eye(3).reshape(1, 3, 3)
            points = jnp.einsum("bnd,bde->bne", points, matrix)
        h = points
        for f in self.features:  # shared per point: Dense acts on the last axis
            h = nn.relu(nn.Dense(f)(h))
        h = h.max(1)  # symmetric in the points
        for f in self.head:
            h = nn.relu(nn.Dense(f)(h))
        return nn.Dense(self.num_classes)(h)


class VoxelNet(nn.Module):
    """images [B, H, W, C] -> occupancy logits [B, V, V, V] (V = 4 * 2^levels)."""

    voxels: int = 16
    channels: tuple[int, ...] = (16, 32, 64)
    latent: int = 128
    volume_channels: int = 32

    @nn.compact
    def __call__(self, images):
        h = images
        for c in self.channels:
            h = nn.relu(nn.Conv(c, (3, 3), strides=2)(h))
        h = nn.relu(nn.Dense(self.latent)(h.reshape(h.shape[0], -1)))
        levels = int(round(math.log2(self.voxels / 4)))
        if 4 * 2 ** levels != self.voxels:
            raise ValueError(f"VoxelNet.voxels={self.voxels}: must be 4 * 2^k")
        c = self.volume_channels
        h = nn.relu(nn.Dense(4 * 4 * 4 * c)(h)).reshape(-1, 4, 4, 4, c)
        for _ in range(levels):
            c = max(c // 2, 8)
            h = nn.relu(upsample(h, c))
        return nn.Dense(1)(h)[..., 0]


def upsample(h, channels: int):
    """[B, D, H, W, C] -> [B, 2D, 2H, 2W, channels]: a 2x2x2 stride-2 transposed
    convolution written as a per-voxel Dense and a depth-to-space reshape. XLA:CPU
    ran nn.ConvTranspose's 3-D kernels 40-500x slower (13 s per step at 4^3)."""
    b, d, hh, w, _ = h.shape
    h = nn.Dense(8 * channels)(h).reshape(b, d, hh, w, 2, 2, 2, channels)
    return h.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, 2 * d, 2 * hh, 2 * w, channels)
