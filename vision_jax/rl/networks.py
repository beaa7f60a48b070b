"""Policy and value networks (Flax Linen): an MLP for vector observations, a
small CNN for pixels. Orthogonal initialisation with purejaxrl's gains (sqrt 2
in the torso, 0.01 on the policy head so the first policy is near uniform, 1 on
the value head), which PPO on CartPole is known to be sensitive to."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def _dense(features: int, gain: float = np.sqrt(2)) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain),
                    bias_init=nn.initializers.zeros)


class PatchConv(nn.Module):
    """A 'SAME' convolution computed as image patches times the kernel (im2col),
    with nn.Conv's parameters (`kernel` [kh, kw, in, out], `bias`).

    Why: XLA:CPU runs a convolution's gradient inside a while loop, which is
    where every RL update lives (the run is one `lax.scan`), about 7-10x slower
    than outside one (measured 2026-12-04, jax 0.10.2: 16 SGD steps of this
    torso's two convolutions on 256 30x30 images, 5.9 s in a scan, 0.56 s
    unrolled, 1.0 s in a scan as patches). A matmul's gradient has no such
    penalty. Accelerators keep nn.Conv (`Torso.conv='auto'`)."""

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    strides: int = 1
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        kh, kw = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        patches = jax.lax.conv_general_dilated_patches(  # features ordered (in, kh, kw)
            x, (kh, kw), (self.strides, self.strides), "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        out = patches @ kernel.transpose(2, 0, 1, 3).reshape(-1, self.features)
        return out + bias.reshape((1,) * (out.ndim - 1) + (-1,))


class Torso(nn.Module):
    """`kind='mlp'`: len(hidden) dense layers on the flattened observation;
    `kind='cnn'`: 3x3 convolutions with `channels` and `strides`, then the
    dense layers. Observations [..., *obs_shape] with any leading batch axes.
    `conv`: 'xla' (nn.Conv), 'patches' (PatchConv, the same parameters) or
    'auto' (patches on CPU, where XLA's convolution gradients in loops are slow)."""

    kind: str = "mlp"
    hidden: Sequence[int] = (64, 64)
    channels: Sequence[int] = ()
    strides: Sequence[int] = ()
    activation: str = "tanh"
    obs_ndim: int = 1
    conv: str = "auto"

    @nn.compact
    def __call__(self, obs):
        act = _ACTIVATIONS[self.activation]
        batch = obs.shape[:obs.ndim - self.obs_ndim]
        x = obs.reshape((-1,) + obs.shape[obs.ndim - self.obs_ndim:]).astype(jnp.float32)
        if self.kind == "cnn":
            if self.conv not in ("auto", "xla", "patches"):
                raise ValueError(f"network.conv={self.conv!r}: expected 'auto', 'xla' or 'patches'")
            patches = self.conv == "patches" or (self.conv == "auto"
                                                 and jax.default_backend() == "cpu")
            for i, (c, s) in enumerate(zip(self.channels, self.strides)):
                init = nn.initializers.orthogonal(np.sqrt(2))
                layer = (PatchConv(c, (3, 3), s, init, name=f"Conv_{i}") if patches else
                         nn.Conv(c, (3, 3), strides=s, padding="SAME", kernel_init=init,
                                 name=f"Conv_{i}"))
                x = act(layer(x))
        elif self.kind != "mlp":
            raise ValueError(f"network.kind={self.kind!r}: expected 'mlp' or 'cnn'")
        x = x.reshape(x.shape[0], -1)
        for h in self.hidden:
            x = act(_dense(h)(x))
        return x.reshape(batch + x.shape[1:])


class ActorCritic(nn.Module):
    """(logits [..., A], value [...]); actor and critic have their own torsos."""

    num_actions: int
    torso: dict

    @nn.compact
    def __call__(self, obs):
        logits = _dense(self.num_actions, 0.01)(Torso(**self.torso, name="actor")(obs))
        value = _dense(1, 1.0)(Torso(**self.torso, name="critic")(obs))
        return logits, value[..., 0]


class QNetwork(nn.Module):
    """Q-values [..., A]."""

    num_actions: int
    torso: dict

    @nn.compact
    def __call__(self, obs):
        return _dense(self.num_actions, 1.0)(Torso(**self.torso)(obs))


def torso_kwargs(network, obs_shape) -> dict:
    """The Torso's arguments from a config's `network` section."""
    return dict(kind=network.kind, hidden=tuple(network.hidden),
                channels=tuple(network.channels), strides=tuple(network.strides),
                activation=network.activation, obs_ndim=len(obs_shape),
                conv=network.get("conv", "auto"))
