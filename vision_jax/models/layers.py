"""Small helpers shared by the model families.

Kept deliberately thin: parameter boxing with logical axis names, the table of
activation functions that configs may name, and option validation that raises
errors naming the valid choices.
"""

from __future__ import annotations

from typing import Any, Callable, Collection

import flax.linen as nn
import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]

# Activations a config may name (strings keep configs plain data).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "gelu": nn.gelu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "silu": nn.silu,
    "elu": nn.elu,
    "leaky_relu": nn.leaky_relu,
}


def boxed(init: Initializer, *names: str | None) -> Initializer:
    """`init` whose parameters carry the logical axis `names` (see sharding.py).

    Every parameter of the zoo is created through this, so that
    `jax.eval_shape(model.init, ...)` yields `nn.LogicallyPartitioned` leaves
    from which the trainer derives shardings without allocating anything.
    """
    return nn.with_logical_partitioning(init, names)


def check_choice(owner: str, option: str, value: Any, choices: Collection[Any]) -> None:
    """Raises ValueError naming the option and its valid values."""
    if value not in choices:
        raise ValueError(
            f"{owner}: {option}={value!r} is not supported; valid choices: {list(choices)}")


def check_positive(owner: str, option: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {option}={value!r} must be a positive integer")


def check_multiplier(owner: str, option: str, value: Any) -> None:
    """A width or depth multiplier: a positive number (1.0 is the published size)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{owner}: {option}={value!r} must be a positive number, e.g. 1.0")


def check_rate(owner: str, option: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: {option}={value!r} must be a probability in [0, 1)")


def flatten_images(images: jax.Array) -> jax.Array:
    """[B, H, W, C] -> [B, H*W*C]."""
    return images.reshape(images.shape[0], -1)
