"""MobileNet v1-v3, EfficientNet and RegNet: published sizes, scaling rules, behaviour, training.

Published models are only traced (`jax.eval_shape`, or the CNN table's stored
traced counts); everything that runs uses
tiny widths at 32x32, and one train step per family is compiled per layout.
"""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.models import blocks, efficientnet, regnet
from vision_jax.models.efficientnet import EfficientNet
from vision_jax.models.mobilenet import MobileNetV1, MobileNetV2, MobileNetV3
from vision_jax.models.regnet import RegNet
from vision_jax.scaling import tables

from helpers import DATA_AND_FSDP, check_one_train_step, one_train_step, tiny_config

NUM_CLASSES = 10


# --- Published parameter counts (224x224x3, 1000 classes) ---------------------
# torchvision's `num_params` metadata (BN scale and bias counted, running
# statistics not). MobileNetV1 is not in torchvision: 4,231,976 is the paper's
# "4.2 million" (Howard et al. 2017, Table 8) counted the same way, with the
# classifier's bias and BN after every convolution.
PUBLISHED = [
    (MobileNetV1, {}, 4_231_976),
    (MobileNetV2, {}, 3_504_872),
    (MobileNetV3, dict(variant="large"), 5_483_032),
    (MobileNetV3, dict(variant="small"), 2_542_856),
    *[(EfficientNet, dict(variant=f"B{i}"), n) for i, n in enumerate([
        5_288_548, 7_794_184, 9_109_994, 12_233_232,
        19_341_616, 30_389_784, 43_040_704, 66_347_960])],
    (RegNet, dict(variant="X-400MF"), 5_495_976),
    (RegNet, dict(variant="X-800MF"), 7_259_656),
    (RegNet, dict(variant="X-1.6GF"), 9_190_136),
    (RegNet, dict(variant="Y-400MF"), 4_344_144),
    (RegNet, dict(variant="Y-800MF"), 6_432_512),
    (RegNet, dict(variant="Y-1.6GF"), 11_202_430),
]


@pytest.mark.parametrize("cls,options,expected", PUBLISHED,
                         ids=[f"{c.__name__}-{o.get('variant', '')}" for c, o, _ in PUBLISHED])
def test_published_parameter_counts(cls, options, expected):
    # At the CNN table's resolution (EfficientNet's own; parameters do not depend on it), so
    # `tables.cnn_counts` reads the table's stored count while the model's code is unchanged
    # and traces it otherwise (tests/test_scaling_tables.py re-traces one model per class).
    size = efficientnet.VARIANTS[options["variant"]][2] if cls is EfficientNet else 224
    model = cls(num_classes=1000, **options)
    assert tables.cnn_counts(model, (size, size, 3))["params"] == expected


def test_every_published_variant_is_counted():
    counted = {(c, o.get("variant")) for c, o, _ in PUBLISHED}
    assert {(EfficientNet, v) for v in efficientnet.VARIANTS} <= counted
    assert {(RegNet, v) for v in regnet.VARIANTS} <= counted


# --- Generators: stages are derived, not listed --------------------------------

def test_efficientnet_stages_follow_round_filters_and_ceil_repeats():
    assert efficientnet.stage_specs(1.0, 1.0) == list(efficientnet.B0_STAGES)
    # B7 (width 2.0, depth 3.1): torchvision's efficientnet_b7 stages.
    b7 = efficientnet.stage_specs(2.0, 3.1)
    assert [s[3] for s in b7] == [32, 48, 80, 160, 224, 384, 640]
    assert [s[4] for s in b7] == [4, 7, 7, 10, 10, 13, 4]
    # B2 (width 1.1): 40 * 1.1 = 44 rounds up to 48, not down to 40.
    assert [s[3] for s in efficientnet.stage_specs(1.1, 1.2)] == [16, 24, 48, 88, 120, 208, 352]


def test_make_divisible_never_loses_more_than_ten_percent():
    assert blocks.make_divisible(44) == 48
    assert blocks.make_divisible(36) == 40    # round half up
    assert blocks.make_divisible(3.0) == 8    # at least one divisor
    assert blocks.make_divisible(20, 16) == 32  # 16 would lose 20%: one divisor back
    for v in range(1, 2000):
        assert blocks.make_divisible(v) % 8 == 0 and blocks.make_divisible(v) >= 0.9 * v


def test_regnet_widths_are_quantised_linear():
    stages = regnet.generate_stages(regnet.VARIANTS["Y-400MF"])
    # Radosavovic et al. 2020, RegNetY-400MF: widths and depths per stage.
    assert [s.width for s in stages] == [48, 104, 208, 440]
    assert [s.depth for s in stages] == [1, 3, 6, 6]
    for name, p in regnet.VARIANTS.items():
        stages = regnet.generate_stages(p)
        assert sum(s.depth for s in stages) == p.depth, name
        widths = [s.width for s in stages]
        assert widths == sorted(widths) and all(w % 8 == 0 for w in widths), name
        assert all(s.width % s.group_width == 0 for s in stages), name


# --- Compound scaling -----------------------------------------------------------

def test_compound_scale():
    assert efficientnet.compound_scale(0) == (1.0, 1.0, 224)
    d, w, r = efficientnet.compound_scale(1)
    assert (d, w, r) == (pytest.approx(1.2), pytest.approx(1.1), 258)  # 224 * 1.15
    # alpha * beta^2 * gamma^2 ~= 2 (Tan & Le 2019, Eq. 3): FLOPs double per unit of phi.
    flops_per_phi = 1.2 * 1.1**2 * 1.15**2
    assert flops_per_phi == pytest.approx(1.92, abs=0.01)
    d, w, r = efficientnet.compound_scale(3)
    assert d * w**2 * (r / 224) ** 2 == pytest.approx(flops_per_phi**3, rel=0.01)


def test_fast_compound_scale():
    assert efficientnet.fast_compound_scale(1.0) == (1.0, 1.0, 224)
    d, w, r = efficientnet.fast_compound_scale(4.0)  # alpha=0.8: "dWr"
    assert d == pytest.approx(4**0.1) and w == pytest.approx(4**0.4)
    assert r == round(224 * 4**0.05) == 240
    # pycls `scaling_factors("d1_w8_r1", s)`: d = s^(1/10), w = s^(8/20), r = s^(1/20).
    d, w, _ = efficientnet.fast_compound_scale(16.0, alpha=1.0)  # width only
    assert (d, w) == (1.0, pytest.approx(4.0))
    d, w, r = efficientnet.fast_compound_scale(8.0, alpha=1 / 3)  # FLOPs spread evenly
    assert d == pytest.approx(2.0) and w**2 == pytest.approx(2.0)
    with pytest.raises(ValueError, match="alpha"):
        efficientnet.fast_compound_scale(2.0, alpha=1.5)


# --- Tiny models: shapes, stochastic depth, options -------------------------------

TINY = {
    "mobilenet_v1": (MobileNetV1, dict(width_mult=0.25)),
    "mobilenet_v2": (MobileNetV2, dict(width_mult=0.25)),
    "mobilenet_v3": (MobileNetV3, dict(variant="small", width_mult=0.25)),
    "efficientnet": (EfficientNet, dict(width_mult=0.25, depth_mult=0.25)),
    # A three-block point of the design space: widths 8, 16, 32 and group width 8.
    "regnet": (RegNet, dict(variant="Y-400MF", depth=3, w_0=8, w_a=8.0, w_m=2.0,
                            group_width=8)),
}


def tiny(family, dtype=jnp.float32):
    cls, options = TINY[family]
    return cls(num_classes=NUM_CLASSES, dtype=dtype, param_dtype=jnp.float32, **options)


@pytest.mark.parametrize("family", sorted(TINY))
def test_forward_shapes_and_logical_names(family):
    model = tiny(family, dtype=jnp.bfloat16)
    images = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    variables = jax.eval_shape(functools.partial(model.init, train=False),
                               jax.random.key(0), images)
    # Every parameter is boxed with one logical name per axis.
    boxes = jax.tree.leaves(variables["params"],
                            is_leaf=lambda x: hasattr(x, "names"))
    assert boxes and all(len(b.names) == b.value.ndim for b in boxes)
    assert set(variables) == {"params", "batch_stats"}
    for is_training in (False, True):
        out = jax.eval_shape(
            functools.partial(model.apply, train=is_training, mutable=["batch_stats"]),
            variables, images, rngs={"dropout": jax.random.key(1)})
        logits = out[0]
        assert logits.shape == (2, NUM_CLASSES) and logits.dtype == jnp.float32


def test_regnet_tiny_design_is_generated():
    stages = regnet.generate_stages(tiny("regnet").design)
    assert [(s.width, s.depth, s.group_width) for s in stages] == [(8, 1, 8), (16, 1, 8), (32, 1, 8)]


def test_drop_path_rates_rise_linearly():
    assert blocks.drop_path_rates(4, 0.2) == pytest.approx([0.0, 0.05, 0.1, 0.15])


def test_stochastic_depth_drops_whole_branches():
    conv, norm = blocks.conv_and_norm(train=True, momentum=0.9, epsilon=1e-5,
                                      dtype=jnp.float32, param_dtype=jnp.float32)
    rate, n = 0.3, 1000
    block = blocks.InvertedResidual(8, expanded=16, conv=conv, norm=norm, drop_path=rate)
    x = jax.random.normal(jax.random.key(0), (n, 4, 4, 8))
    variables = block.init(jax.random.key(1), x, train=False)

    @jax.jit
    def run(variables, x, seed):
        return block.apply(variables, x, train=True, rngs={"dropout": jax.random.key(seed)},
                           mutable=["batch_stats"])[0]

    out = run(variables, x, 2)
    dropped = np.all(np.asarray(out == x), axis=(1, 2, 3))  # the branch added exactly zero
    assert abs(dropped.mean() - rate) < 4 * math.sqrt(rate * (1 - rate) / n)
    kept = ~dropped
    assert np.all(np.any(np.asarray(out != x), axis=(1, 2, 3))[kept])
    # The kept branches are scaled by 1 / (1 - rate): the same with rate 0, times that.
    plain = blocks.InvertedResidual(8, expanded=16, conv=conv, norm=norm, drop_path=0.0)
    branch = plain.apply(variables, x, train=True, mutable=["batch_stats"])[0] - x
    np.testing.assert_allclose(np.asarray(out - x)[kept], np.asarray(branch)[kept] / (1 - rate),
                               rtol=1e-4, atol=1e-5)
    # At evaluation the block is deterministic and equals the one without stochastic depth.
    conv_e, norm_e = blocks.conv_and_norm(train=False, momentum=0.9, epsilon=1e-5,
                                          dtype=jnp.float32, param_dtype=jnp.float32)
    ev = blocks.InvertedResidual(8, expanded=16, conv=conv_e, norm=norm_e, drop_path=rate)
    ev_plain = blocks.InvertedResidual(8, expanded=16, conv=conv_e, norm=norm_e)
    np.testing.assert_array_equal(ev.apply(variables, x, train=False),
                                  ev_plain.apply(variables, x, train=False))


@pytest.mark.parametrize("cls,options,match", [
    (MobileNetV3, dict(variant="medium"), r"variant='medium'.*\['large', 'small'\]"),
    (MobileNetV1, dict(activation="mish"), r"activation='mish'.*'hard_swish'"),
    (MobileNetV2, dict(width_mult=0.0), "width_mult"),
    (MobileNetV2, dict(dropout=1.0), "dropout"),
    (EfficientNet, dict(variant="B8"), r"variant='B8'.*'B0'.*'B7'"),
    (EfficientNet, dict(depth_mult=-1.0), "depth_mult"),
    (EfficientNet, dict(stochastic_depth=1.0), "stochastic_depth"),
    (RegNet, dict(variant="Z-400MF"), r"variant='Z-400MF'.*'X-400MF'.*'Y-1.6GF'"),
    (RegNet, dict(w_m=1.0), "w_m > 1"),
    (RegNet, dict(group_width=0), "group_width"),
])
def test_bad_options_raise(cls, options, match):
    with pytest.raises(ValueError, match=match):
        cls(num_classes=NUM_CLASSES, **options)


# --- One sharded train step per family ----------------------------------------------

@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return tiny_config("efficientnet.py:B0,dataset=shapes", str(tmp_path_factory.mktemp("tfds")),
                       "batch_size=16", "optimizer.learning_rate=1e-3",
                       "schedule.warmup_steps=0")


def _family_config(config, family):
    _, options = TINY[family]
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.model = dict(name=family, **options)
    return config


@pytest.mark.parametrize("family", sorted(TINY))
def test_one_train_step_on_a_data_and_fsdp_mesh(family, config):
    """Every family trains through the trainer's step on a 2 (data) x 4 (fsdp) mesh."""
    check_one_train_step(*one_train_step(_family_config(config, family), DATA_AND_FSDP,
                                         num_classes=NUM_CLASSES))


# Two more compiles per family (15-30 s each on 2 CPU cores): run when asked for,
# VISION_JAX_SLOW_TESTS=1.
@pytest.mark.skipif(not os.environ.get("VISION_JAX_SLOW_TESTS"),
                    reason="two more CPU compiles per family; set VISION_JAX_SLOW_TESTS=1")
@pytest.mark.parametrize("family", sorted(TINY))
def test_data_parallel_and_fsdp_agree(family, config):
    config = _family_config(config, family)
    dp = one_train_step(config, {"data": -1}, num_classes=NUM_CLASSES)
    fsdp = one_train_step(config, {"data": 1, "fsdp": -1}, num_classes=NUM_CLASSES, state=dp[0])
    for result in (dp, fsdp):
        check_one_train_step(*result)
    np.testing.assert_allclose(fsdp[2]["loss"], dp[2]["loss"], rtol=1e-4)
