"""A multi-layer perceptron on flattened pixels."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import (
    ACTIVATIONS, boxed, check_choice, check_positive, check_rate, flatten_images)


class MLP(nn.Module):
    """flatten -> [Dense(h) -> activation -> dropout] for h in hidden -> Dense(num_classes).

    The logical names of consecutive hidden kernels alternate between
    ('embed', 'mlp') and ('mlp', 'embed'), as in Megatron-style tensor
    parallelism: a kernel never names the same logical axis twice (which a mesh
    could not map), and under tensor parallelism every other layer is split on
    its output and the next on its input, so activations stay sharded in
    between.
    """

    num_classes: int
    hidden: tuple[int, ...] = (512, 512)
    activation: str = "relu"
    dropout: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        if isinstance(self.hidden, int) or not all(
                isinstance(h, int) and h > 0 for h in self.hidden):
            raise ValueError(f"{owner}: hidden={self.hidden!r} must be a sequence of positive "
                             "integers, e.g. (512, 512)")
        check_choice(owner, "activation", self.activation, ACTIVATIONS)
        check_rate(owner, "dropout", self.dropout)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        x = flatten_images(images.astype(self.dtype))
        features_name = "embed"
        for i, width in enumerate(self.hidden):
            out_name = "mlp" if features_name == "embed" else "embed"
            x = nn.Dense(
                width, dtype=self.dtype, param_dtype=self.param_dtype,
                kernel_init=boxed(nn.initializers.lecun_normal(), features_name, out_name),
                bias_init=boxed(nn.initializers.zeros, out_name),
                name=f"hidden_{i}")(x)
            x = nn.Dropout(self.dropout, deterministic=not train)(act(x))
            features_name = out_name
        logits = nn.Dense(
            self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
            kernel_init=boxed(nn.initializers.lecun_normal(), features_name, "classes"),
            bias_init=boxed(nn.initializers.zeros, "classes"),
            name="head")(x)
        return logits.astype(jnp.float32)
