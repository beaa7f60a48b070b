"""A softmax classifier on raw pixels: the floor every other model must beat."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import boxed, check_positive, flatten_images


class Linear(nn.Module):
    """flatten -> Dense(num_classes).

    The head starts at zero, so the initial prediction is uniform and the first
    loss is exactly log(num_classes), whatever the input scale.
    """

    num_classes: int
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        check_positive(type(self).__name__, "num_classes", self.num_classes)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        del train  # Nothing stochastic, no statistics.
        x = flatten_images(images.astype(self.dtype))
        logits = nn.Dense(
            self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
            kernel_init=boxed(nn.initializers.zeros, "embed", "classes"),
            bias_init=boxed(nn.initializers.zeros, "classes"),
            name="head")(x)
        return logits.astype(jnp.float32)
