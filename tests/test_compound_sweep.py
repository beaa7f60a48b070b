"""Scaling rules as sweep axes: expansion into overrides, errors, store columns, the config.

Nothing here trains: rule points are expanded against real base configs, the
results store is fed a hand-written summary, and every trial of
configs/scaling/compound.py is built abstractly (the sweep-config counterpart
of tests/test_config.py's abstract build of every config).
"""

import json
import os

import jax
import pytest
from helpers import ROOT
from ml_collections import ConfigDict

from vision_jax import config as config_lib
from vision_jax import data, flops, models
from vision_jax.models import efficientnet
from vision_jax.scaling import rules, store, sweep

BASE = "configs/efficientnet.py:B0,dataset=shapes,width_mult=0.25,depth_mult=0.25"
COMPOUND = os.path.join(ROOT, "configs", "scaling", "compound.py")


def _sweep(values, base=BASE, overrides=()) -> ConfigDict:
    c = ConfigDict()
    c.base = base
    c.overrides = list(overrides)
    c.axes = (("compound", values),)
    return c


# ---------------------------------------------------------------------------
# The rules.


def test_rule_factors():
    # Tan & Le 2019, Eq. 3 with alpha, beta, gamma = 1.2, 1.1, 1.15.
    assert rules.factors("efficientnet", 2) == pytest.approx((1.44, 1.21, 1.3225))
    assert rules.factors("efficientnet", 1, alpha=1.0, beta=2.0) == pytest.approx((1.0, 2.0, 1.15))
    # Dollar et al. 2021: FLOPs x s = 2^phi, 80% of it on width.
    d, w, r = rules.factors("fast", 3)
    assert (d, w, r) == pytest.approx((8**0.1, 8**0.4, 8**0.05))
    assert rules.factors("fast", 3, alpha=1.0) == pytest.approx((1.0, 8**0.5, 1.0))
    # One dimension at a time; every phi-rule but Tan & Le's doubles FLOPs per unit of phi.
    assert rules.factors("depth", 2) == (4.0, 1.0, 1.0)
    assert rules.factors("width", 2) == (1.0, 2.0, 1.0)
    assert rules.factors("resolution", 2) == (1.0, 1.0, 2.0)
    for rule in ("fast", "width", "depth", "resolution"):
        d, w, r = rules.factors(rule, 1.5)
        assert d * w**2 * r**2 == pytest.approx(2**1.5), rule
    d, w, r = rules.factors("efficientnet", 1.5)
    assert d * w**2 * r**2 == pytest.approx((1.2 * 1.1**2 * 1.15**2) ** 1.5)
    # The published B3 relative to B0.
    assert rules.factors("official", variant="B3") == pytest.approx((1.4, 1.2, 300 / 224))


def test_resolution_rounding():
    assert rules.round_resolution(32, 1.15) == 40          # 36.8 -> nearest multiple of 8
    assert rules.round_resolution(32, 1.15, multiple=4) == 36
    assert rules.round_resolution(32, 1.15**2, multiple=4) == 44   # 42.3
    assert rules.round_resolution(224, 1.0) == 224
    assert rules.round_resolution(32, 0.1) == 8              # never below one multiple
    with pytest.raises(ValueError, match="multiple"):
        rules.round_resolution(32, 1.0, multiple=0)


# ---------------------------------------------------------------------------
# Expansion into trials.


@pytest.mark.parametrize("rule", ["efficientnet", "fast"])
def test_compound_axis_expands_into_overrides(rule):
    phis = (0, 1, 2, 3)
    trials = sweep.expand(_sweep(rules.axis(rule, phis, multiple=4)))
    assert [t.name for t in trials] == [f"rule={rule},phi={p}" for p in phis]
    for trial, phi in zip(trials, phis):
        d, w, r = rules.factors(rule, phi)
        assert trial.values == {"model.depth_mult": round(0.25 * d, 4),
                                "model.width_mult": round(0.25 * w, 4),
                                "data.image_size": 4 * round(32 * r / 4)}
        assert trial.labels == {"compound.rule": rule, "compound.phi": phi}
        assert trial.overrides == tuple(f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}"
                                        for k, v in trial.values.items())
        config = sweep.trial_config(_sweep(rules.axis(rule, phis, multiple=4)), trial)
        assert config.model.depth_mult == trial.values["model.depth_mult"]
        assert config.data.image_size == trial.values["data.image_size"]
    # Hand-checked at phi=3: Tan & Le multiply depth by 1.728, width by 1.331 and 32px by
    # 1.521 (48.7 -> 48); the fast rule (width-heavy) width by 8^0.4 = 2.3, depth by
    # 8^0.1 = 1.23 and 32px by 8^0.05 = 1.11 (35.5 -> 36).
    assert trials[3].values == {
        "efficientnet": {"model.depth_mult": 0.432, "model.width_mult": 0.3328,
                         "data.image_size": 48},
        "fast": {"model.depth_mult": 0.3078, "model.width_mult": 0.5743, "data.image_size": 36},
    }[rule]


def test_single_dimension_rules_keep_the_others_at_the_base():
    values = rules.axis("width", [2]) + rules.axis("depth", [2]) + rules.axis("resolution", [2])
    width, depth, resolution = sweep.expand(_sweep(values))
    assert width.values == {"model.depth_mult": 0.25, "model.width_mult": 0.5,
                            "data.image_size": 32}
    assert depth.values == {"model.depth_mult": 1.0, "model.width_mult": 0.25,
                            "data.image_size": 32}
    assert resolution.values == {"model.depth_mult": 0.25, "model.width_mult": 0.25,
                                 "data.image_size": 64}


def test_official_variants_and_native_resolution_keys():
    keys = ["data.image_size", "data.shapes.resolution"]
    b0, b7 = sweep.expand(_sweep(rules.axis("official", ["B0", "B7"], resolution_keys=keys)))
    assert b0.name == "rule=official,variant=B0"
    assert b0.values == {"model.depth_mult": 0.25, "model.width_mult": 0.25,
                         "data.image_size": 32, "data.shapes.resolution": 32}
    # B7: depth 3.1, width 2.0, 600/224 of the resolution (85.7 -> 88).
    assert b7.values == {"model.depth_mult": 0.775, "model.width_mult": 0.5,
                         "data.image_size": 88, "data.shapes.resolution": 88}
    assert b7.labels == {"compound.rule": "official", "compound.variant": "B7"}


def test_rules_combine_with_other_axes_and_shared_overrides():
    c = _sweep(rules.axis("efficientnet", [0, 1]), overrides=["model.width_mult=0.5"])
    c.axes = c.axes + (("seed", [0, 1]),)
    trials = sweep.expand(c)
    assert [t.name for t in trials] == ["rule=efficientnet,phi=0,seed=0",
                                        "rule=efficientnet,phi=0,seed=1",
                                        "rule=efficientnet,phi=1,seed=0",
                                        "rule=efficientnet,phi=1,seed=1"]
    # The base width is the one after the sweep's shared overrides.
    assert trials[2].values == {"model.depth_mult": 0.3, "model.width_mult": 0.55,
                                "data.image_size": 40, "seed": 0}


@pytest.mark.parametrize("value, base, words", [
    ({"rule": "chinchilla", "phi": 1}, BASE,
     ["'chinchilla'", "efficientnet", "fast", "width", "depth", "resolution", "official"]),
    ({"rule": "efficientnet", "phi": 1, "beta2": 1.0}, BASE, ["beta2", "valid options", "gamma"]),
    ({"rule": "fast"}, BASE, ["phi"]),
    ({"rule": "official", "variant": "B9"}, BASE, ["B9", "B0", "B7"]),
    ({"rule": "efficientnet", "phi": 1, "resolution_keys": ["data.size"]}, BASE, ["data.size"]),
    # configs/efficientnet.py without explicit multipliers: nothing to scale from.
    ({"rule": "depth", "phi": 1}, "configs/efficientnet.py:B0,dataset=shapes",
     ["depth_mult", "efficientnet"]),
    # The default CNN has neither option: the error lists the families that do.
    ({"rule": "width", "phi": 1}, "configs/default.py", ["width_mult", "'cnn'", "mobilenet_v2"]),
])
def test_bad_rule_points_are_named(value, base, words):
    with pytest.raises(sweep.SweepError) as e:
        sweep.expand(_sweep([value], base=base))
    assert "'compound'" in str(e.value)
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_unknown_rule_error_from_the_rules_module():
    with pytest.raises(ValueError, match=r"rule 'efficientnet-v2' is not valid; choose one of"):
        rules.factors("efficientnet-v2", 1)


# ---------------------------------------------------------------------------
# The store records the rule's columns.


def test_store_records_rule_depth_width_resolution(tmp_path):
    tiny = [f"data.data_dir={tmp_path / 'tfds'}", "data.shapes.train_size=16",
            "data.shapes.test_size=8"]
    c = _sweep(rules.axis("fast", [2], multiple=4), overrides=tiny)
    (trial,) = sweep.expand(c)
    config = sweep.trial_config(c, trial)
    data.prepare(config.data)  # the trial file reads the dataset's classes
    workdir = sweep.write_trial_file(str(tmp_path / "sweep"), "compound-test", trial, config)
    # What the trainer's summary.json carries, by hand: the store needs no training.
    summary = {"model": "efficientnet", "dataset": "shapes", "params": 0,
               "forward_flops_per_example": 1.0e6, "train_flops_per_example": 3.0e6,
               "train_loss": 1.0, "eval_loss": 1.0, "eval_accuracy": 0.5,
               "wall_seconds": 1.0, "examples_per_second": 1.0, "mfu": None}
    with open(os.path.join(workdir, store.SUMMARY_FILE), "w") as f:
        json.dump(summary, f)
    row = store.row(workdir)
    assert row["compound.rule"] == "fast" and row["compound.phi"] == 2
    assert (row["model.depth_mult"], row["model.width_mult"], row["data.image_size"]) == (
        0.2872, 0.4353, 36)
    assert row["params"] > 0  # counted abstractly when the trial file was written


# ---------------------------------------------------------------------------
# configs/scaling/compound.py: every trial builds.


@pytest.mark.parametrize("arg", ["", ":runlocal", ":model=efficientnet",
                                 ":model=efficientnet,runlocal"])
def test_compound_config_trials_build_abstractly(arg):
    spec = sweep.load_sweep(COMPOUND + arg)
    trials = sweep.expand(spec)
    rules_seen = {t.labels["compound.rule"] for t in trials}
    if "runlocal" in arg:
        assert 2 <= len(trials) <= 3 and {"efficientnet", "fast"} <= rules_seen
    else:
        assert {"efficientnet", "fast", "width", "depth", "resolution"} <= rules_seen
    built = {}
    for trial in trials:
        config = sweep.trial_config(spec, trial)
        config_lib.validate(config, num_devices=8)
        assert config.data.image_size == config.data.shapes.resolution  # rendered, not resized
        key = (config.model.depth_mult, config.model.width_mult, config.data.image_size)
        if key in built:
            continue
        model = models.build_model(config.model, num_classes=8)
        size = config.data.image_size
        variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                                      jax.numpy.zeros((1, size, size, 3)),
                                                      train=False))
        built[key] = flops.count_params(variables["params"])
    assert len(set(built.values())) > 1  # the rules really change the model
    assert config.model.name == ("efficientnet" if "efficientnet" in arg else "cnn")
