"""Classic CNN families: LeNet-5, AlexNet, VGG, GoogLeNet and ResNeXt.

Published parameter counts are checked on traced models only
(`jax.eval_shape`); everything that runs on numbers uses widths small enough
for a CPU, at 32x32, and each family takes one real training step through the
trainer's own pieces under data parallel and FSDP on the 8 emulated devices.
"""

from __future__ import annotations

import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import flops
from vision_jax.models.alexnet import AlexNet
from vision_jax.models.layers import adaptive_avg_pool
from vision_jax.models.googlenet import GoogLeNet, max_pool_ceil
from vision_jax.models.lenet import LeNet
from vision_jax.models.resnet import RESNEXTS, ResNet
from vision_jax.models.vgg import VGG
from vision_jax.scaling import tables

from helpers import DATA_AND_FSDP, check_one_train_step, one_train_step, tiny_config

# The families of this file by registry name (ResNeXt is the 'resnet' model).
FAMILIES = {"lenet": LeNet, "alexnet": AlexNet, "vgg": VGG, "googlenet": GoogLeNet}
NUM_CLASSES = 10


def count(model, shape=(1, 224, 224, 3)) -> int:
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                               jax.ShapeDtypeStruct(shape, jnp.float32))
    return flops.count_params(variables["params"])


# --- Published parameter counts (224x224x3, 1000 classes) --------------------

# LeNet-5 on its own 32x32x1 input (LeCun et al. 1998, Fig. 2) with full C3
# connectivity and a dense output layer: weights + biases layer by layer.
LENET5 = ((5 * 5 * 1 * 6 + 6)           # C1
          + (5 * 5 * 6 * 16 + 16)       # C3
          + (5 * 5 * 16 * 120 + 120)    # C5
          + (120 * 84 + 84)             # F6
          + (84 * 10 + 10))             # output


def test_lenet5_param_count():
    assert LENET5 == 61_706
    assert count(LeNet(num_classes=10), (1, 32, 32, 1)) == LENET5
    # Colour images only widen C1's kernel.
    assert count(LeNet(num_classes=10), (1, 32, 32, 3)) == LENET5 + 5 * 5 * 2 * 6


def build(cls, **options):
    """What build_model does once the class is registered."""
    return cls(num_classes=1000, dtype=jnp.float32, param_dtype=jnp.float32, **options)


# torchvision.models weights' `num_params` metadata (IMAGENET1K_V1): alexnet,
# vgg{11,13,16,19}[_bn], googlenet (without aux heads; 13,004,888 with them,
# torchvision's GoogLeNet(aux_logits=True)), resnext50_32x4d, resnext101_32x8d,
# resnext101_64x4d, wide_resnet50_2, wide_resnet101_2.
@pytest.mark.parametrize("cls,options,expected", [
    (AlexNet, {}, 61_100_840),
    (VGG, dict(depth=11), 132_863_336),
    (VGG, dict(depth=13), 133_047_848),
    (VGG, dict(depth=16), 138_357_544),
    (VGG, dict(depth=19), 143_667_240),
    (VGG, dict(depth=11, batch_norm=True), 132_868_840),
    (VGG, dict(depth=13, batch_norm=True), 133_053_736),
    (VGG, dict(depth=16, batch_norm=True), 138_365_992),
    (VGG, dict(depth=19, batch_norm=True), 143_678_248),
    (GoogLeNet, {}, 6_624_904),
    (GoogLeNet, dict(aux_logits=True), 13_004_888),
    (ResNet, dict(depth=50, groups=32, width_per_group=4), 25_028_904),
    (ResNet, dict(depth=101, groups=32, width_per_group=8), 88_791_336),
    (ResNet, dict(depth=101, groups=64, width_per_group=4), 83_455_272),
    (ResNet, dict(depth=50, width_per_group=128), 68_883_240),
    (ResNet, dict(depth=101, width_per_group=128), 126_886_696),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_published_param_counts(cls, options, expected):
    # The CNN table's stored count for the presets among these (unchanged code), traced for
    # the others or after a change (tests/test_scaling_tables.py re-traces one per class).
    assert tables.cnn_counts(build(cls, **options), (224, 224, 3))["params"] == expected


def test_resnext_table_names_the_published_models():
    # Xie et al. 2017 name a ResNeXt by depth, cardinality (groups) and the
    # width of each group at the first stage, "d": 50 (32x4d) etc.
    for name, (depth, groups, width_per_group) in RESNEXTS.items():
        assert name == f"{depth}_{groups}x{width_per_group}d"


def test_every_parameter_carries_logical_names():
    # Boxed leaves only: a bare array would have no sharding rule.
    for model in TINY_MODELS.values():
        variables = jax.eval_shape(functools.partial(model.init, train=False),
                                   jax.random.key(0), IMAGES)
        leaves = jax.tree.leaves(variables["params"],
                                 is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
        assert leaves and all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)


# --- Pooling helpers ---------------------------------------------------------

def _adaptive_reference(x, out):
    """PyTorch's AdaptiveAvgPool2d, one output cell at a time."""
    b, h, w, c = x.shape
    y = np.zeros((b, *out, c), x.dtype)
    for i in range(out[0]):
        for j in range(out[1]):
            h0, h1 = (i * h) // out[0], -(-((i + 1) * h) // out[0])
            w0, w1 = (j * w) // out[1], -(-((j + 1) * w) // out[1])
            y[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return y


@pytest.mark.parametrize("size_in,size_out", [
    ((1, 1), (7, 7)),    # VGG at 32x32: the 1x1 map repeated
    ((3, 3), (6, 6)),    # AlexNet's cifar stem: each pixel repeated 2x2
    ((13, 13), (6, 6)),  # AlexNet at 224: overlapping cells
    ((5, 9), (7, 4)),    # mixed up- and down-sampling
    ((14, 14), (7, 7)),  # a plain 2x2 average pool
])
def test_adaptive_avg_pool_matches_pytorch_cells(size_in, size_out):
    x = np.random.default_rng(0).normal(size=(2, *size_in, 3)).astype(np.float32)
    np.testing.assert_allclose(adaptive_avg_pool(jnp.asarray(x), size_out),
                               _adaptive_reference(x, size_out), rtol=1e-5, atol=1e-6)


def test_ceil_mode_max_pool_sizes():
    # GoogLeNet's stage sizes at 224 (112 -> 56 -> 28 -> 14 -> 7) and at 32.
    for n, window, stride, expected in [(112, 3, 2, 56), (56, 3, 2, 28), (28, 3, 2, 14),
                                        (14, 2, 2, 7), (16, 3, 2, 8), (8, 3, 2, 4),
                                        (4, 3, 2, 2), (2, 2, 2, 1), (5, 2, 2, 3)]:
        y = jax.eval_shape(functools.partial(max_pool_ceil, window=window, stride=stride),
                           jax.ShapeDtypeStruct((1, n, n, 1), jnp.float32))
        assert y.shape[1:3] == (expected, expected), (n, window, stride)
    # The overhanging window sees only real pixels (padding is -inf).
    x = -jnp.arange(25.0).reshape(1, 5, 5, 1)
    assert float(max_pool_ceil(x, 2, 2)[0, 2, 2, 0]) == -24.0


# --- Tiny models at 32x32 ----------------------------------------------------

# Widths small enough for CPU compiles; FSDP still finds axes that 8 divides.
TINY_OPTIONS = {
    "lenet": ("lenet", {}),
    "alexnet": ("alexnet", dict(stem="cifar", width_mult=1 / 16)),
    "vgg": ("vgg", dict(depth=11, batch_norm=True, width_mult=1 / 16)),
    "googlenet": ("googlenet", dict(width_mult=1 / 8)),
    # Zero-initialised last BN scales (the default) cut every residual branch's
    # gradient at step 0; off here so that one step reaches every parameter.
    "resnext": ("resnet", dict(depth=50, width=8, groups=4, width_per_group=32, stem="cifar",
                               zero_init_residual=False)),
}
CLASSES = {**FAMILIES, "resnet": ResNet}
TINY_MODELS = {key: CLASSES[name](num_classes=NUM_CLASSES, dtype=jnp.float32,
                                  param_dtype=jnp.float32, **options)
               for key, (name, options) in TINY_OPTIONS.items()}
IMAGES = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)


@pytest.mark.parametrize("key", sorted(TINY_MODELS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_forward_shapes_at_32px(key, dtype):
    model = TINY_MODELS[key].clone(dtype=dtype)
    variables = jax.eval_shape(functools.partial(model.init, train=False),
                               jax.random.key(0), IMAGES)
    for is_training in (False, True):
        logits, _ = jax.eval_shape(
            functools.partial(model.apply, train=is_training, mutable=["batch_stats"]),
            variables, IMAGES, rngs={"dropout": jax.random.key(0)})
        assert logits.shape == (2, NUM_CLASSES) and logits.dtype == jnp.float32


def test_googlenet_aux_heads_are_sown_in_training_only():
    model = TINY_MODELS["googlenet"].clone(aux_logits=True)
    variables = jax.eval_shape(functools.partial(model.init, train=False),
                               jax.random.key(0), IMAGES)
    assert {"aux4a_conv", "aux4d_fc2"} <= set(variables["params"])
    for is_training, expected in ((True, 2), (False, 0)):
        _, state = jax.eval_shape(
            functools.partial(model.apply, train=is_training,
                              mutable=["batch_stats", "intermediates"]),
            variables, IMAGES, rngs={"dropout": jax.random.key(0)})
        aux = state.get("intermediates", {}).get("aux_logits", ())
        assert len(aux) == expected
        assert all(a.shape == (2, NUM_CLASSES) and a.dtype == jnp.float32 for a in aux)


def test_lenet_rejects_images_below_32px():
    with pytest.raises(ValueError, match="at least 32x32"):
        jax.eval_shape(functools.partial(LeNet(num_classes=10).init, train=False),
                       jax.random.key(0), jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.float32))


# --- One training step under data parallel and FSDP --------------------------

def _config(key, tmp_path):
    name, options = TINY_OPTIONS[key]
    # No warm-up, so that the one step moves the parameters.
    config = tiny_config(f"{key}.py", str(tmp_path), "batch_size=16", "schedule.warmup_steps=0")
    with config.unlocked():
        config.model = dict(name=name, **options)
    return config


@pytest.mark.parametrize("key", sorted(TINY_OPTIONS))
def test_one_train_step_on_a_data_and_fsdp_mesh(key, tmp_path):
    """Every family trains through the trainer's step on a 2 (data) x 4 (fsdp) mesh."""
    check_one_train_step(*one_train_step(_config(key, tmp_path), DATA_AND_FSDP,
                                         num_classes=NUM_CLASSES))


# Comparing the layouts costs two more compiles per family (10-60 s each on 2
# CPU cores, GoogLeNet the slowest): run when asked for, VISION_JAX_SLOW_TESTS=1.
# The suite checks layout-invariance of the loss on the ViT (tests/test_train.py).
SLOW = pytest.mark.skipif(not os.environ.get("VISION_JAX_SLOW_TESTS"),
                          reason="two more CPU compiles per family; set VISION_JAX_SLOW_TESTS=1")


@SLOW
@pytest.mark.parametrize("key", sorted(TINY_OPTIONS))
def test_data_parallel_and_fsdp_agree(key, tmp_path):
    config = _config(key, tmp_path)
    dp = one_train_step(config, {"data": -1}, num_classes=NUM_CLASSES)
    fsdp = one_train_step(config, {"data": 1, "fsdp": -1}, num_classes=NUM_CLASSES,
                          state=dp[0])
    for result in (dp, fsdp):
        check_one_train_step(*result)
    # Same state, same batch: the layout changes where numbers live, not what they are.
    np.testing.assert_allclose(fsdp[2]["loss"], dp[2]["loss"], rtol=1e-4)


# --- Option validation -------------------------------------------------------

@pytest.mark.parametrize("cls,options,words", [
    (LeNet, dict(pool="median"), ["pool", "avg", "max"]),
    (LeNet, dict(activation="mish"), ["activation", "tanh", "relu"]),
    (AlexNet, dict(stem="tiny"), ["stem", "imagenet", "cifar"]),
    (AlexNet, dict(width_mult=0), ["width_mult"]),
    (VGG, dict(depth=15), ["depth", "11", "13", "16", "19"]),
    (VGG, dict(dropout=1.5), ["dropout"]),
    (GoogLeNet, dict(branch3_kernel=7), ["branch3_kernel", "3", "5"]),
    (ResNet, dict(depth=18, groups=32, width_per_group=4), ["groups", "50", "101", "152"]),
    (ResNet, dict(depth=50, width=8, width_per_group=4), ["width_per_group"]),
])
def test_bad_options_name_the_choices(cls, options, words):
    with pytest.raises(ValueError) as e:
        cls(num_classes=10, **options)
    for word in words:
        assert word in str(e.value)
