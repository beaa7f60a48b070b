"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with
Deep Convolutional Neural Networks"), in torchvision's single-tower form.

The 2012 network split its layers over two GPUs (96-256-384-384-256 channels
in two halves, with local response normalisation). torchvision's `alexnet`,
whose parameter count (61,100,840 at 1000 classes) this file reproduces,
follows the one-tower variant of Krizhevsky 2014 ("One weird trick for
parallelizing convolutional neural networks"): 64-192-384-256-256 channels, no
LRN, and an adaptive average pool to 6x6 before the classifier so that any
input size meets the 256*6*6 = 9216 classifier inputs.

At 32x32 the ImageNet stem (11x11 stride 4) leaves a 1x1 map that the third
3x3/2 max-pool cannot pool, so `stem='cifar'` swaps the first layer for a
3x3 stride-1 convolution; everything after it is unchanged, and the adaptive
pool repeats the 3x3 map it then receives up to 6x6, as torchvision's
AdaptiveAvgPool2d does for inputs smaller than its output.

`adaptive_avg_pool`, `scaled` and the initialisations are shared with VGG and
GoogLeNet through layers.py.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import (
    CONV_INIT, DENSE_INIT, adaptive_avg_pool, boxed, check_choice, check_multiplier,
    check_positive, check_rate, scaled)


class ConvSpec(NamedTuple):
    features: int
    kernel: int
    stride: int
    padding: int  # symmetric, as torchvision's Conv2d(padding=p)
    pool: bool    # a 3x3 stride-2 max-pool follows


# torchvision.models.AlexNet `features` (Krizhevsky 2014, one-tower variant).
FEATURES: tuple[ConvSpec, ...] = (
    ConvSpec(64, 11, 4, 2, True),
    ConvSpec(192, 5, 1, 2, True),
    ConvSpec(384, 3, 1, 1, False),
    ConvSpec(256, 3, 1, 1, False),
    ConvSpec(256, 3, 1, 1, True),
)
CIFAR_STEM = ConvSpec(64, 3, 1, 1, True)
STEMS = ("imagenet", "cifar")
POOL_SIZE = (6, 6)
HIDDEN = 4096

class AlexNet(nn.Module):
    """AlexNet classifier.

    Attributes:
      stem: 'imagenet' (11x11 stride-4 first convolution, for ~224px inputs)
        or 'cifar' (3x3 stride 1, for 32px inputs).
      width_mult: scales every convolution and the 4096-unit hidden
        layers (1.0 is the published model).
      dropout: rate before each hidden dense layer (0.5 in the paper).
    """

    num_classes: int
    stem: str = "imagenet"
    width_mult: float = 1.0
    dropout: float = 0.5
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        check_positive(owner, "num_classes", self.num_classes)
        check_choice(owner, "stem", self.stem, STEMS)
        check_multiplier(owner, "width_mult", self.width_mult)
        check_rate(owner, "dropout", self.dropout)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        specs = FEATURES if self.stem == "imagenet" else (CIFAR_STEM, *FEATURES[1:])
        x = images.astype(self.dtype)
        for i, spec in enumerate(specs):
            x = nn.Conv(scaled(spec.features, self.width_mult),
                        (spec.kernel, spec.kernel), spec.stride, padding=spec.padding,
                        dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=boxed(CONV_INIT, None, None, "conv_in", "conv_out"),
                        bias_init=boxed(nn.initializers.zeros, "conv_out"),
                        name=f"conv{i + 1}")(x)
            x = nn.relu(x)
            if spec.pool:
                x = nn.max_pool(x, (3, 3), strides=(2, 2))
        x = adaptive_avg_pool(x, POOL_SIZE).reshape(x.shape[0], -1)

        hidden = scaled(HIDDEN, self.width_mult)

        def dense(features, names, name):
            return nn.Dense(features, dtype=self.dtype, param_dtype=self.param_dtype,
                            kernel_init=boxed(DENSE_INIT, *names),
                            bias_init=boxed(nn.initializers.zeros, names[1]), name=name)

        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.relu(dense(hidden, ("embed", "mlp"), "fc1")(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.relu(dense(hidden, ("mlp", "embed"), "fc2")(x))
        logits = dense(self.num_classes, ("embed", "classes"), "head")(x)
        return logits.astype(jnp.float32)
