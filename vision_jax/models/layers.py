"""Small helpers shared by the model families.

Kept deliberately thin: parameter boxing with logical axis names, the tables
of activation functions and weight initialisations that configs may name,
option validation that raises errors naming the valid choices, and the
parameter-free operations several families use (adaptive average pooling,
width multipliers, patches <-> tokens). The layers of the training toolbox
(normalisation factory, DropConnect, fractional max pooling) live in
toolbox.py.
"""

from __future__ import annotations

from typing import Any, Callable, Collection

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Initializer = Callable[..., jax.Array]


@jax.custom_vjp
def guided_relu(x: jax.Array) -> jax.Array:
    """ReLU whose backward pass lets through only positive gradients at positive
    inputs: guided backpropagation (Springenberg et al. 2015, "Striving for
    Simplicity", Sec. 3.4). The forward pass is ReLU's, so a trained ReLU
    network rebuilt with it computes the same logits (vision_jax/explain.py)."""
    return jnp.maximum(x, 0)


def _guided_relu_fwd(x):
    return jnp.maximum(x, 0), x


def _guided_relu_bwd(x, g):
    return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_relu_fwd, _guided_relu_bwd)

# Activations a config may name (strings keep configs plain data). 'silu' is
# x * sigmoid(x), the Swish of Ramachandran et al. 2017 with beta = 1.
# 'guided_relu' is for explanation only (its gradient is not the loss's).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "gelu": nn.gelu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "silu": nn.silu,
    "swish": nn.silu,
    "elu": nn.elu,
    "leaky_relu": nn.leaky_relu,
    "guided_relu": guided_relu,
}

# Kernel initialisations a config may name, each with the variance it promises
# for a kernel [..., fan_in, fan_out] (fan_in of a convolution counts the
# receptive field: kh * kw * in_channels):
#   xavier_*  2 / (fan_in + fan_out)  Glorot & Bengio 2010, eq. 16 (keeps both
#                                     forward and backward variances for tanh)
#   he_*      2 / fan_in              He et al. 2015, "Delving Deep into
#                                     Rectifiers", eq. 10 (ReLU halves the variance)
#   lecun_*   1 / fan_in              LeCun et al. 1998, "Efficient BackProp", Sec. 4.6
#   small_normal  1e-4: N(0, 0.01^2)  CS231n's naive init, whose activations
#                                     vanish with depth (see vision_jax/initstats.py)
# The '_normal' ones draw from an untruncated Gaussian (He et al.'s law; Glorot
# & Bengio's own is the uniform one) except lecun_normal: that is Flax's
# nn.Dense default (a Gaussian truncated at two standard deviations and
# rescaled to the same variance), kept so that the models whose default it is
# initialise exactly as before.
INITIALIZERS: dict[str, Initializer] = {
    "xavier_normal": nn.initializers.variance_scaling(1.0, "fan_avg", "normal"),
    "xavier_uniform": nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
    "he_normal": nn.initializers.variance_scaling(2.0, "fan_in", "normal"),
    "he_uniform": nn.initializers.variance_scaling(2.0, "fan_in", "uniform"),
    "lecun_normal": nn.initializers.lecun_normal(),
    "lecun_uniform": nn.initializers.variance_scaling(1.0, "fan_in", "uniform"),
    "small_normal": nn.initializers.normal(0.01),
}


# Kaiming-normal on fan-out for convolutions (torchvision's initialisation of
# its CNN families) and N(0, 0.01) for dense layers (its VGG, AlexNet, MobileNet
# and RegNet classifiers).
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
DENSE_INIT = nn.initializers.normal(0.01)


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


def check_pool_ratio(owner: str, option: str, value: Any) -> None:
    """A fractional pooling ratio: strictly between 1 (no pooling) and 2 (2x2 pooling)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1.0 < value < 2.0:
        raise ValueError(f"{owner}: {option}={value!r} must be a number in the open interval "
                         "(1, 2), e.g. 1.414 (sqrt 2)")


def flatten_images(images: jax.Array) -> jax.Array:
    """[B, H, W, C] -> [B, H*W*C]."""
    return images.reshape(images.shape[0], -1)


def _pool_matrix(size_in: int, size_out: int) -> np.ndarray:
    """[size_out, size_in] averaging weights of adaptive pooling along one axis.

    Output cell i averages inputs floor(i*n/m) .. ceil((i+1)*n/m) - 1 (n in,
    m out), PyTorch's AdaptiveAvgPool rule: cells overlap when n is not a
    multiple of m, and each input is repeated when n < m.
    """
    m = np.zeros((size_out, size_in), np.float32)
    for i in range(size_out):
        start = (i * size_in) // size_out
        end = -(-((i + 1) * size_in) // size_out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
    """[B, H, W, C] -> [B, *output_size, C] with PyTorch's adaptive-pool cells.

    Separable, so it is two small matrix products whose weights are fixed at
    trace time; it therefore also upsamples maps smaller than `output_size`.
    """
    h, w = x.shape[1:3]
    if (h, w) == tuple(output_size):
        return x
    rows = jnp.asarray(_pool_matrix(h, output_size[0]), x.dtype)
    cols = jnp.asarray(_pool_matrix(w, output_size[1]), x.dtype)
    return jnp.einsum("ih,bhwc,jw->bijc", rows, x, cols)


def scaled(channels: int, multiplier: float) -> int:
    """A layer's width under a width multiplier (at least one channel)."""
    return max(1, round(channels * multiplier))


def patchify(images: jax.Array, patch: int = 1) -> jax.Array:
    """[B, H, W, C] -> [B, (H/p)(W/p), p*p*C]: non-overlapping p x p patches in
    row-major order, each flattened (row, column, channel). With p = 1, the
    positions of a feature map as a token sequence (the ViT's strided-conv
    patch embedding)."""
    return einops.rearrange(images, "b (h p) (w q) c -> b (h w) (p q c)", p=patch, q=patch)


def unpatchify(tokens: jax.Array, height: int, patch: int = 1) -> jax.Array:
    """The inverse of `patchify`: [B, N, p*p*C] -> [B, height, N*p*p/height, C]."""
    return einops.rearrange(tokens, "b (h w) (p q c) -> b (h p) (w q) c",
                            h=height // patch, p=patch, q=patch)


def apply_with_features(model, variables, images, **kwargs):
    """(model.apply's output, the input of the model's top-level `head` layer
    as float32 [B, D]). kwargs go to `model.apply` (train, rngs, mutable)."""
    captured = []

    def grab(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and context.module.scope is not None \
                and context.module.scope.path == ("head",):
            captured.append(args[0])
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(grab):
        out = model.apply(variables, images, **kwargs)
    if len(captured) != 1:
        raise ValueError(f"model {type(model).__name__} has no top-level layer named 'head': "
                         "no representation to read")
    feats = captured[0]
    return out, feats.reshape(feats.shape[0], -1).astype(jnp.float32)
