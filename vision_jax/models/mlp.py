"""A multi-layer perceptron on flattened pixels.

The course's first deep network, and the bench for the training toolbox's
model-side options: the kernel initialisation (`kernel_init`, a name from
layers.INITIALIZERS; `init` itself is taken by Flax's Module.init),
the activation, a normalisation before each activation (`norm`: none, layer or
batch) and two regularisers, dropout on the hidden activations and DropConnect
on the hidden kernels (toolbox.DropConnectDense). Each hidden activation is
also sown into the 'intermediates' collection (a no-op unless a caller asks
for it) so that vision_jax/initstats.py can show how well it is scaled at init.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax import mup
from vision_jax.models.layers import (
    ACTIVATIONS, INITIALIZERS, boxed, check_choice, check_positive, check_rate,
    flatten_images)
from vision_jax.models.toolbox import NORM_PREFIXES, DropConnectDense, make_norm

# A normalisation over the features of a flat vector: group and instance norm
# are about channels of feature maps.
NORMS = ("none", "layer", "batch")


class MLP(nn.Module):
    """flatten -> [Dense(h) -> norm -> activation -> dropout] for h in hidden -> Dense(num_classes).

    Attributes:
      kernel_init: initialisation of the hidden kernels (a key of layers.INITIALIZERS);
        the head keeps LeCun normal, Flax's Dense default.
      norm: 'none', 'layer' (Ba et al. 2016) or 'batch' (Ioffe & Szegedy 2015),
        before the activation as in Ioffe & Szegedy; with a norm the hidden
        layers have no bias (the norm's bias replaces it).
      dropout: drop rate of the hidden activations (Srivastava et al. 2014).
      drop_connect: drop rate of the hidden kernels' weights (Wan et al. 2013).
      parametrization: 'sp' (standard) or 'mup' (Yang et al. 2022; vision_jax/mup.py):
        the head's init std times sqrt(m) and its input times 1/m, with
        m = hidden[-1] / mup_base_width; hidden_0 is muP's input layer, the
        other hidden layers its hidden ones (their LR factors: vision_jax/mup.py).
      mup_base_width: the width at which 'mup' equals 'sp'.

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
    kernel_init: str = "lecun_normal"
    norm: str = "none"
    dropout: float = 0.0
    drop_connect: float = 0.0
    parametrization: str = "sp"
    mup_base_width: int = 0
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
        check_choice(owner, "kernel_init", self.kernel_init, INITIALIZERS)
        check_choice(owner, "norm", self.norm, NORMS)
        check_rate(owner, "dropout", self.dropout)
        check_rate(owner, "drop_connect", self.drop_connect)
        mup.check(owner, self.parametrization, self.mup_base_width)
        if self.parametrization == "mup" and self.kernel_init == "small_normal":
            raise ValueError(f"{owner}: parametrization='mup' needs a fan-in-scaled kernel_init "
                             "(variance proportional to 1/fan_in); 'small_normal' is not")
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        norm = make_norm(self.norm, train=train, dtype=self.dtype, param_dtype=self.param_dtype)
        x = flatten_images(images.astype(self.dtype))
        features_name = "embed"
        for i, width in enumerate(self.hidden):
            out_name = "mlp" if features_name == "embed" else "embed"
            name = f"hidden_{i}"
            kernel_init = INITIALIZERS[self.kernel_init]
            if self.parametrization == "mup":  # factor 1 in Table 3: SP's init is muP's
                rule = mup.multipliers("input" if i == 0 else "hidden",
                                       width / self.mup_base_width)
                kernel_init = mup.scale_init(kernel_init, rule.init_std)
            x = DropConnectDense(
                width, rate=self.drop_connect, use_bias=self.norm == "none",
                dtype=self.dtype, param_dtype=self.param_dtype,
                kernel_init=boxed(kernel_init, features_name, out_name),
                bias_init=boxed(nn.initializers.zeros, out_name),
                name=name)(x, train=train)
            x = act(norm(x, f"{NORM_PREFIXES.get(self.norm, '')}{i}"))
            self.sow("intermediates", f"{name}_act", x)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
            features_name = out_name
        head_init = nn.initializers.lecun_normal()
        if self.parametrization == "mup":
            rule = mup.multipliers("output", self.hidden[-1] / self.mup_base_width)
            head_init = mup.scale_init(head_init, rule.init_std)
            x = x * jnp.asarray(rule.output, x.dtype)
        logits = nn.Dense(
            self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
            kernel_init=boxed(head_init, features_name, "classes"),
            bias_init=boxed(nn.initializers.zeros, "classes"),
            name="head")(x)
        return logits.astype(jnp.float32)
