"""ViT scaling studies: BiT's ResNet options, the two sweep configs, and their analyses.

Nothing here trains. The ResNet's weight standardisation and group norm are
checked on small models; every trial of configs/scaling/vit_vs_resnet.py and
configs/scaling/vit.py is built abstractly; the crossover and the frontier
analyses are run on synthetic results rows with a known answer.
"""

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from helpers import ROOT
from ml_collections import ConfigDict

from vision_jax import config as config_lib
from vision_jax import flops, models
from vision_jax.models import resnet
from vision_jax.scaling import crossover, fit, frontier, store, sweep

VIT_VS_RESNET = os.path.join(ROOT, "configs", "scaling", "vit_vs_resnet.py")
VIT = os.path.join(ROOT, "configs", "scaling", "vit.py")


def _abstract_params(model, size=16):
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                                  jnp.zeros((1, size, size, 3)), train=False))
    return variables


# ---------------------------------------------------------------------------
# BiT options of the ResNet.


def test_standardized_kernels_have_zero_mean_unit_variance_per_output_channel():
    kernel = 3.0 + 0.5 * jax.random.normal(jax.random.PRNGKey(0), (3, 3, 5, 7))
    w = resnet.standardize_kernel(kernel)
    np.testing.assert_allclose(jnp.mean(w, axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.var(w, axis=(0, 1, 2)), 1.0, atol=1e-4)

    # StdConv convolves with the standardised kernel and stores the raw one.
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 6, 5))
    conv = resnet.StdConv(7, (3, 3), use_bias=False)
    variables = conv.init(jax.random.PRNGKey(2), x)
    raw = variables["params"]["kernel"]
    assert raw.shape == (3, 3, 5, 7) and float(jnp.std(raw)) < 0.9  # lecun-normal, not unit
    plain = nn.Conv(7, (3, 3), use_bias=False)
    expected = plain.apply({"params": {"kernel": resnet.standardize_kernel(raw)}}, x)
    np.testing.assert_allclose(conv.apply(variables, x), expected, rtol=1e-5, atol=1e-5)


def test_resnet_bit_options_keep_the_parameters_and_default_off():
    kwargs = dict(num_classes=8, depth=18, width=8, stem="cifar")
    default = resnet.ResNet(**kwargs)
    assert (default.norm, default.weight_standardization) == ("batch", False)
    bit = resnet.ResNet(**kwargs, norm="group", norm_groups=4, weight_standardization=True)
    plain_vars, bit_vars = _abstract_params(default), _abstract_params(bit)
    # Same parameter tree (names and shapes), so the same count; GN keeps no statistics.
    shapes = lambda v: jax.tree.map(lambda x: x.shape, nn.unbox(v["params"]))  # noqa: E731
    assert shapes(plain_vars) == shapes(bit_vars)
    assert flops.count_params(plain_vars["params"]) == flops.count_params(bit_vars["params"])
    assert flops.count_params(bit_vars["params"]) == 176_272  # as configs/scaling/vit_vs_resnet.py says
    assert "batch_stats" in plain_vars and "batch_stats" not in bit_vars
    # ResNet-18's published count (torchvision) is unchanged by the new options.
    r18 = resnet.ResNet(num_classes=1000, depth=18)
    assert flops.count_params(_abstract_params(r18, 32)["params"]) == 11_689_512
    # The defaults take the plain-conv, batch-norm path: identical outputs to the
    # options spelled out.
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 3))
    variables = default.init(jax.random.PRNGKey(1), x, train=False)
    spelled = resnet.ResNet(**kwargs, norm="batch", weight_standardization=False)
    np.testing.assert_array_equal(default.apply(variables, x, train=False),
                                  spelled.apply(variables, x, train=False))
    ws = resnet.ResNet(**kwargs, weight_standardization=True)
    assert not np.allclose(default.apply(variables, x, train=False),
                           ws.apply(variables, x, train=False))


def test_resnet_group_norm_groups_must_divide_the_widths():
    with pytest.raises(ValueError, match="norm_groups=32 does not divide"):
        resnet.ResNet(num_classes=8, depth=18, width=8, norm="group")
    with pytest.raises(ValueError, match="norm='layer' is not supported"):
        resnet.ResNet(num_classes=8, depth=18, width=8, norm="layer")
    # The options are model config keys like any other.
    assert {"norm", "norm_groups", "weight_standardization"} <= set(models.model_options("resnet"))


# ---------------------------------------------------------------------------
# The sweep configs: every trial builds.


def _build_all(path: str, arg: str) -> tuple[list, dict]:
    spec = sweep.load_sweep(path + arg)
    trials = sweep.expand(spec)
    assert len({t.name for t in trials}) == len(trials) > 0
    built = {}
    for trial in trials:
        config = sweep.trial_config(spec, trial)
        config_lib.validate(config, num_devices=8)
        assert config.data.image_size == config.data.shapes.resolution
        key = json.dumps(config.model.to_dict(), sort_keys=True)
        if key not in built:
            model = models.build_model(config.model, num_classes=8)
            params = _abstract_params(model, config.data.image_size)["params"]
            built[key] = (config, flops.count_params(params))
    return trials, built


@pytest.mark.parametrize("arg, count, params", [
    ("", 32, (115_928, 176_272)), (":runlocal", 8, (115_928, 176_272)),
    (":pod", 30, (21_316_232, 23_516_744))])  # the docstring's
def test_vit_vs_resnet_trials_build(arg, count, params):
    trials, built = _build_all(VIT_VS_RESNET, arg)
    assert len(trials) == count
    by_name = {c.model.name: (c, n) for c, n in built.values()}
    assert set(by_name) == {"vit", "resnet"}
    assert (by_name["vit"][1], by_name["resnet"][1]) == params
    vit_cfg, res_cfg = by_name["vit"][0], by_name["resnet"][0]
    assert res_cfg.model.norm == "group" and res_cfg.model.weight_standardization
    if arg == ":pod":
        return  # its compute match (XLA's count at 32px) is in the docstring
    # Roughly matched compute: the ViT's analytic FLOPs within 20% of the ResNet's
    # 3.53M (XLA's count of the plain-conv model, quoted in the config).
    vit_fwd = flops.vit_flops(vit_cfg.model.variant, 16, 8, pool="gap", width=48, depth=4,
                              mlp_dim=192, num_heads=3)["forward"]
    assert abs(vit_fwd / 3.53e6 - 1) < 0.2
    # Nested subsets of one prepared set: every trial names the same dataset.
    datasets = {(c.data.shapes.train_size, c.data.shapes.test_size) for c, _ in built.values()}
    assert len(datasets) == 1
    sizes = sorted({t.values["data.num_train_examples"] for t in trials})
    assert max(sizes) <= next(iter(datasets))[0] and len(sizes) >= 2
    seeds = {t.values["seed"] for t in trials}
    assert len(seeds) >= 2


@pytest.mark.parametrize("arg", ["", ":runlocal", ":pod"])
def test_vit_scaling_trials_build(arg):
    trials, built = _build_all(VIT, arg)
    shapes = {(c.model.width, c.model.depth) for c, _ in built.values()}
    budgets = {t.values["total_examples"] for t in trials}
    assert len(trials) == len(shapes) * len(budgets)
    assert len(budgets) >= 5  # >= 4 to fit E = a (C + d)^-b + c, one held out
    # At least one wider-and-shallower vs narrower-and-deeper pair of equal params.
    params = {(c.model.width, c.model.depth): n for c, n in built.values()}
    assert any(a[0] > b[0] and a[1] < b[1] and abs(params[a] / params[b] - 1) < 0.1
               for a in shapes for b in shapes)
    for c, _ in built.values():
        assert c.model.mlp_dim == 4 * c.model.width
        assert c.model.width % c.model.num_heads == 0


# ---------------------------------------------------------------------------
# The crossover analysis on synthetic rows.

SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)


def _rows(vit_acc, resnet_acc, seeds=3, spread=0.004):
    rows = []
    for d in SIZES:
        for s in range(seeds):
            jitter = spread * (s - (seeds - 1) / 2)
            rows.append({"model": "vit", "data.num_train_examples": d, "seed": s,
                         "final_eval_accuracy": vit_acc(d) + jitter})
            rows.append({"model": "resnet", "data.num_train_examples": d, "seed": s,
                         "final_eval_accuracy": resnet_acc(d) + jitter})
    return pd.DataFrame(rows)


def test_find_crossover_interpolates_in_log_size():
    assert crossover.find_crossover([10, 100, 1000], [-0.2, -0.1, 0.1]) == pytest.approx(
        ("crossed", 10 ** 2.5))
    assert crossover.find_crossover([10, 100], [-0.3, 0.1])[1] == pytest.approx(10 ** 1.75)
    # Crossing back down is no crossover; a dip below zero then up again counts from the last.
    assert crossover.find_crossover([10, 100, 1000], [-0.1, 0.1, -0.1]) == ("none", None)
    assert crossover.find_crossover([10, 100, 1000], [0.1, -0.1, 0.1])[1] == pytest.approx(
        10 ** 2.5)
    assert crossover.find_crossover([10, 100, 1000], [0.1, 0.2, 0.3]) == ("below", None)


def test_crossover_found_with_an_interval():
    # ViT gains 10 points per decade, the ResNet 2: level at 10^4.5 = 31,623 scenes.
    df = _rows(lambda d: 0.50 + 0.10 * np.log10(d / 1000),
               lambda d: 0.62 + 0.02 * np.log10(d / 1000))
    table = crossover.compare(df, test_examples=10_000, bootstrap=300)
    c = table["crossover"]
    assert c["status"] == "crossed" and c["size"] == pytest.approx(10 ** 4.5, rel=0.05)
    lo, hi = c["ci95"]
    assert 10_000 < lo < c["size"] < hi < 100_000 and c["fraction_crossed"] > 0.95
    assert table["gap"]["mean"][0] == pytest.approx(-0.12)
    lo, hi = table["models"]["vit"]["ci95"][0]
    assert lo < 0.50 < hi and hi - lo < 0.03  # 3 seeds x 10,000 test scenes
    assert "vit overtakes resnet at D ~ 31,623" in table["summary"]
    assert ("vit ahead at D = 100,000; resnet ahead at D = 1,000, 3,000, 10,000"
            in table["summary"])


def test_no_crossover_is_reported_as_such():
    df = _rows(lambda d: 0.20 + 0.05 * np.log10(d / 1000),
               lambda d: 0.62 + 0.01 * np.log10(d / 1000))
    table = crossover.compare(df, test_examples=10_000, bootstrap=200)
    c = table["crossover"]
    assert c["status"] == "none" and c["size"] is None and c["fraction_none"] == 1.0
    assert c["ci95"][1] == crossover.BEYOND_RANGE
    assert table["trend"]["slope_per_decade"] == pytest.approx(0.04, abs=1e-6)
    assert "NO crossover" in table["summary"] and "extrapolation" in table["summary"]
    # A gap that widens says so instead of extrapolating.
    widening = crossover.compare(_rows(lambda d: 0.5 - 0.05 * np.log10(d / 1000),
                                       lambda d: 0.6 + 0.0 * d), bootstrap=100)
    assert "does not narrow" in widening["summary"]
    assert "extrapolated_crossover" not in widening["trend"]
    # Means a point apart with 2 seeds of 500 test scenes: ahead in the mean, not in the data.
    level = crossover.compare(_rows(lambda d: 0.16, lambda d: 0.15, seeds=2),
                              test_examples=500, bootstrap=300)
    assert level["crossover"]["status"] == "below"
    assert "mean is ahead" in level["summary"] and "No size separates" in level["summary"]


def test_crossover_runs_as_a_sweep_hook(tmp_path):
    df = _rows(lambda d: 0.50 + 0.10 * np.log10(d / 1000),
               lambda d: 0.62 + 0.02 * np.log10(d / 1000), seeds=2)
    sweepdir = str(tmp_path)
    for i, row in df.iterrows():  # finished trials as the sweep and the trainer leave them
        values = {"data.num_train_examples": int(row["data.num_train_examples"]),
                  "seed": int(row["seed"]), "model.name": row["model"]}
        workdir = store.trial_dir(sweepdir, f"trial{i}")
        os.makedirs(workdir)
        with open(os.path.join(workdir, store.TRIAL_FILE), "w") as f:
            json.dump({"name": f"trial{i}", "index": i, "values": values, "params": 1}, f)
        with open(os.path.join(workdir, store.SUMMARY_FILE), "w") as f:
            json.dump({"model": row["model"], "dataset": "shapes", "params": 1,
                       "forward_flops_per_example": 1.0, "train_flops_per_example": 3.0,
                       "train_loss": 1.0, "eval_loss": 1.0,
                       "eval_accuracy": row["final_eval_accuracy"], "wall_seconds": 1.0,
                       "examples_per_second": 1.0, "mfu": None}, f)
    spec = ConfigDict(dict(plots=[dict(kind="custom", name="xover", bootstrap=200,
                                       function="vision_jax.scaling.crossover:analyse",
                                       test_examples=2000)]))
    report = sweep.analyse(spec, sweepdir)
    (table,) = report["custom"]
    assert table["crossover"]["status"] == "crossed"
    for ext in ("png", "svg", "json"):
        assert os.path.exists(os.path.join(sweepdir, "plots", f"xover.{ext}"))
    with pytest.raises(sweep.SweepError, match="importable function"):
        sweep.analyse(ConfigDict(dict(plots=[dict(kind="custom", function="nope:f")])),
                      sweepdir)


# ---------------------------------------------------------------------------
# The frontier analysis on synthetic rows.

BUDGETS = (4e3, 8e3, 16e3, 32e3, 64e3, 128e3)


def _frontier_rows(deep_flops=1e7):
    """Two shapes of equal params: deep (32, 8) learns faster early, wide (64, 2)
    saturates lower; C = examples x 1e7 FLOPs (deep: x deep_flops)."""
    laws = {(64, 2): dict(a=5.0, b=0.5, c=0.02, d=0.0),    # 81% -> 16% error
            (32, 8): dict(a=2.0, b=0.3, c=0.10, d=0.0)}    # 76% -> 33%
    rows = []
    for (w, depth), p in laws.items():
        for n in BUDGETS:
            c = n * (deep_flops if depth == 8 else 1e7)
            rows.append({"model.width": w, "model.depth": depth, "compute_flops": c,
                         "final_eval_error": float(fit.PREDICT["saturating"](p, c / 1e9))})
    return pd.DataFrame(rows), laws


def test_pareto_front_of_runs():
    assert frontier.pareto([1, 2, 3, 4], [0.5, 0.6, 0.4, 0.45]) == [0, 2]
    assert frontier.pareto([1, 1, 2], [0.5, 0.3, 0.3]) == [1]


def test_frontier_envelope_preference_and_extrapolation():
    df, laws = _frontier_rows()
    table = frontier.compare_shapes(df, bootstrap=0)
    by_label = {s["label"]: s for s in table["shapes"]}
    assert set(by_label) == {"width=64,depth=2", "width=32,depth=8"}
    for s in table["shapes"]:
        assert s["fit"]["r2"] > 0.999
        x = s["extrapolation"]
        assert x["fitted_on"] == 5 and x["abs_error"][0] < 0.005  # noiseless: predicts the held-out
    segs = table["frontier"]["segments"]
    # Deep is better at small compute, wide at large: the envelope switches once.
    assert [s["shape"] for s in segs] == [[32, 8], [64, 2]]
    c_switch = segs[1]["from"]
    err = {k: fit.PREDICT["saturating"](p, np.array([c_switch / 1e9]))[0]
           for k, p in laws.items()}
    assert err[(64, 2)] <= err[(32, 8)]
    assert table["frontier"]["preferred_at_max_compute"] == [64, 2]
    (pair,) = table["width_vs_depth"]["pairs"]
    assert pair["wider"] == [64, 2] and pair["deeper"] == [32, 8] and pair["winner"] == "width"
    assert table["width_vs_depth"]["verdict"] == "width"
    assert "prefers width=64,depth=2" in table["summary"]
    # The empirical frontier is made of runs; its last point is wide's largest run.
    assert table["frontier"]["empirical"][-1]["shape"] == [64, 2]
    # Deep costs 6% more per example: past wide's largest run only deep is left on the
    # envelope, uncontested; that does not make it the preferred shape.
    table = frontier.compare_shapes(_frontier_rows(deep_flops=1.06e7)[0], bootstrap=0)
    last = table["frontier"]["segments"][-1]
    assert last["shape"] == [32, 8] and not last["contested"]
    assert table["frontier"]["preferred_at_max_compute"] == [64, 2]


def test_frontier_with_too_few_budgets_says_why():
    df, _ = _frontier_rows()
    few = df[df["compute_flops"] <= 16e3 * 1e7]
    table = frontier.compare_shapes(few, bootstrap=0)
    for s in table["shapes"]:
        assert s["fit"] is not None  # 3 budgets: fitted
        assert "skipped" in s["extrapolation"]  # but 2 left after holding one out
    two = df[df["compute_flops"] <= 8e3 * 1e7]
    table = frontier.compare_shapes(two, bootstrap=0)
    assert all(s["fit"] is None and ">= 3" in s["why"] for s in table["shapes"])
    assert "no shape could be fitted" in table["summary"]
