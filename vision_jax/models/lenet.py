"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-Based Learning
Applied to Document Recognition", Sec. II.B and Fig. 2).

The network of the paper on its own 32x32 input:

    C1  5x5 conv, 6 maps      -> 28x28      S2  2x2 subsampling -> 14x14
    C3  5x5 conv, 16 maps     -> 10x10      S4  2x2 subsampling ->  5x5
    C5  5x5 conv, 120 maps    ->  1x1       F6  dense, 84 units
    output: one unit per class

as it is usually rebuilt today (61,706 parameters at 32x32x1, 10 classes):
C3 sees all six C1 maps (the paper's sparse table, Table I, was a 1998
economy), S2/S4 are parameter-free pools (the paper's subsampling units had a
trainable coefficient and bias per map), and the output is a dense layer
trained with cross-entropy instead of the fixed Euclidean RBF units. The
squashing function defaults to tanh, the paper's choice (it used the scaled
1.7159 tanh(2x/3), Appendix A).

C5 is a convolution, as in the paper, not a dense layer: on 32x32 inputs its
output is 1x1 and the two are the same; on larger inputs the network stays
convolutional and the C5 maps are averaged. Any channel count is accepted
(3-channel images only widen C1's kernel). Inputs must be at least 32x32,
the size for which the paper designed it (it padded 28x28 MNIST digits to 32x32).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import ACTIVATIONS, boxed, check_choice, check_positive

POOLS = ("avg", "max")
MIN_SIZE = 32
# LeCun et al. 1998, Appendix A: weights uniform with variance ~ 1/fan_in, the
# scale that keeps tanh units in their linear range.
_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")


class LeNet(nn.Module):
    """LeNet-5.

    Attributes:
      activation: the squashing function (a key of layers.ACTIVATIONS).
      pool: 'avg' (the paper's subsampling, without its per-map coefficient)
        or 'max' (the common modern substitute).
    """

    num_classes: int
    activation: str = "tanh"
    pool: str = "avg"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        check_choice(owner, "activation", self.activation, ACTIVATIONS)
        check_choice(owner, "pool", self.pool, POOLS)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        del train  # no dropout, no batch norm
        if min(images.shape[1:3]) < MIN_SIZE:
            raise ValueError(f"LeNet needs images of at least {MIN_SIZE}x{MIN_SIZE}, got "
                             f"{images.shape[1]}x{images.shape[2]}; pad or resize them "
                             "(config.data.image_size)")
        act = ACTIVATIONS[self.activation]
        pool = nn.avg_pool if self.pool == "avg" else nn.max_pool

        def conv(features, name):
            return nn.Conv(features, (5, 5), padding="VALID", dtype=self.dtype,
                           param_dtype=self.param_dtype,
                           kernel_init=boxed(_INIT, None, None, "conv_in", "conv_out"),
                           bias_init=boxed(nn.initializers.zeros, "conv_out"), name=name)

        x = images.astype(self.dtype)
        x = pool(act(conv(6, "c1")(x)), (2, 2), strides=(2, 2))
        x = pool(act(conv(16, "c3")(x)), (2, 2), strides=(2, 2))
        x = act(conv(120, "c5")(x)).mean(axis=(1, 2))
        x = act(nn.Dense(84, dtype=self.dtype, param_dtype=self.param_dtype,
                         kernel_init=boxed(_INIT, "embed", "mlp"),
                         bias_init=boxed(nn.initializers.zeros, "mlp"), name="f6")(x))
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                          kernel_init=boxed(_INIT, "mlp", "classes"),
                          bias_init=boxed(nn.initializers.zeros, "classes"), name="head")(x)
        return logits.astype(jnp.float32)
