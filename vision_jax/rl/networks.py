"""Policy and value networks (Flax Linen): an MLP for vector observations, a
small CNN for pixels. Orthogonal initialisation with purejaxrl's gains (sqrt 2
in the torso, 0.01 on the policy head so the first policy is near uniform, 1 on
the value head), which PPO on CartPole is known to be sensitive to."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

_ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def _dense(features: int, gain: float = np.sqrt(2)) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain),
                    bias_init=nn.initializers.zeros)


class Torso(nn.Module):
    """`kind='mlp'`: len(hidden) dense layers on the flattened observation;
    `kind='cnn'`: 3x3 convolutions with `channels` and `strides`, then the
    dense layers. Observations [..., *obs_shape] with any leading batch axes."""

    kind: str = "mlp"
    hidden: Sequence[int] = (64, 64)
    channels: Sequence[int] = ()
    strides: Sequence[int] = ()
    activation: str = "tanh"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        act = _ACTIVATIONS[self.activation]
        batch = obs.shape[:obs.ndim - self.obs_ndim]
        x = obs.reshape((-1,) + obs.shape[obs.ndim - self.obs_ndim:]).astype(jnp.float32)
        if self.kind == "cnn":
            for c, s in zip(self.channels, self.strides):
                x = act(nn.Conv(c, (3, 3), strides=s, padding="SAME",
                                kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
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
                activation=network.activation, obs_ndim=len(obs_shape))
