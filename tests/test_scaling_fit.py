"""Scaling-law fits recover known laws from noisy data; their intervals cover the truth;
degenerate data are reported as unidentifiable; `vision-jax fit` writes its outputs.

Data are generated from a known law with multiplicative log-normal noise (the
noise model the fits assume), with a fixed seed.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest

from vision_jax.scaling import fit as F


def _noisy(loss, sigma, seed):
    rng = np.random.default_rng(seed)
    return loss * np.exp(rng.normal(0.0, sigma, np.shape(loss)))


def test_power_law_recovers_exponent_with_ci():
    # Kaplan et al. 2020 L(N): alpha_N = 0.076, N_c = 8.8e13
    n = np.geomspace(1e6, 1e10, 30)
    y = _noisy((8.8e13 / n) ** 0.076, 0.005, seed=1)
    fit = F.fit_power(n, y, bootstrap=200)
    assert fit.params["alpha"] == pytest.approx(0.076, rel=0.02)
    lo, hi = fit.ci["alpha"]
    assert lo < 0.076 < hi and hi - lo < 0.01
    assert fit.r2 > 0.99


def test_power_law_with_irreducible_term():
    d = np.geomspace(1e7, 1e12, 30)
    y = _noisy(1.7 + (5.4e8 / d) ** 0.3, 0.003, seed=2)
    fit = F.fit_power(d, y, irreducible=True, bootstrap=50)
    assert fit.params["alpha"] == pytest.approx(0.3, rel=0.02)
    assert fit.params["E"] == pytest.approx(1.7, rel=0.02)
    assert fit.ci["alpha"][0] < fit.params["alpha"] < fit.ci["alpha"][1]


def _chinchilla_data(sigma, seed):
    # Hoffmann et al. 2022 eq. 10: E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28
    # A 10 x 10 grid of (N, D): the form is poorly conditioned (E trades off against the
    # B/D^beta term), so it needs a wide D range to pin beta down.
    n = np.repeat(np.geomspace(1e7, 1e10, 10), 10)
    d = np.tile(np.geomspace(1e8, 1e12, 10), 10)
    y = _noisy(1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28, sigma, seed)
    return n, d, y


def test_chinchilla_form_recovers_exponents_and_frontier():
    n, d, y = _chinchilla_data(0.002, seed=0)
    fit = F.fit_chinchilla(n, d, y, bootstrap=0)
    assert fit.params["alpha"] == pytest.approx(0.34, rel=0.02)
    assert fit.params["beta"] == pytest.approx(0.28, rel=0.02)
    assert fit.params["E"] == pytest.approx(1.69, rel=0.02)
    # frontier exponents: N_opt ~ C^(beta/(alpha+beta)), D_opt ~ C^(alpha/(alpha+beta))
    front = F.compute_optimal(fit, np.array([1e20, 1e22, 1e24]))
    assert front["a"] == pytest.approx(0.28 / 0.62, rel=0.03)
    np.testing.assert_allclose(6 * front["params"] * front["examples"], front["compute"], rtol=1e-9)
    # N_opt minimises the fitted loss along its isoFLOP curve
    c = 1e22
    ns = np.geomspace(1e8, 1e12, 4001)
    best = ns[np.argmin(fit.predict(ns, c / (6 * ns)))]
    assert best == pytest.approx(F.compute_optimal(fit, c)["params"], rel=0.01)


# Hoffmann et al. 2022 eq. 10, and the same law with an irreducible loss near zero.
HOFFMANN = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def _law(p, n, d):
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def _grid_6x6(truth, seed, sigma=0.01):
    # 36 runs on a 6 x 6 log grid, N over 3 decades and D over 3: wide enough that the
    # Hessian's condition number (in the fitted, centred parameters) is ~1e3-1e4.
    n = np.repeat(np.geomspace(1e7, 1e10, 6), 6)
    d = np.tile(np.geomspace(1e9, 1e12, 6), 6)
    return n, d, _noisy(_law(truth, n, d), sigma, seed)


@pytest.mark.filterwarnings("error")  # no log(0), no overflow
@pytest.mark.parametrize("e_true", [1.69, 0.05])
def test_chinchilla_recovers_truth_inside_intervals(e_true):
    truth = {**HOFFMANN, "E": e_true}
    n, d, y = _grid_6x6(truth, seed=7)
    fit = F.fit_chinchilla(n, d, y, bootstrap=100)
    assert fit.identifiable, fit.why
    assert fit.diagnostics["hessian_condition"] < F.MAX_CONDITION
    assert fit.diagnostics["bootstrap_on_bound"] <= 0.5
    for k, v in truth.items():
        lo, hi = fit.ci[k]
        assert lo < fit.params[k] < hi and lo <= v <= hi, (k, v, lo, hi)
    assert fit.ci["alpha"][1] - fit.ci["alpha"][0] < 0.05  # informative, not just wide
    report = fit.to_json()
    assert report["identifiable"] is True and report["why"] == ""


def test_chinchilla_interval_coverage():
    """Over 20 synthetic draws each true parameter lies inside its 95% interval at least
    16 times (the intervals are percentile bootstraps of 40 grid-started refits)."""
    n, d, _ = _grid_6x6(HOFFMANN, seed=0)
    covered = dict.fromkeys(HOFFMANN, 0)
    widths = []
    for draw in range(20):
        y = _noisy(_law(HOFFMANN, n, d), 0.01, seed=100 + draw)
        fit = F.fit_chinchilla(n, d, y, bootstrap=40, seed=draw)
        assert fit.identifiable, fit.why
        for k, v in HOFFMANN.items():
            covered[k] += fit.ci[k][0] <= v <= fit.ci[k][1]
        widths.append(fit.ci["alpha"][1] - fit.ci["alpha"][0])
    assert min(covered.values()) >= 16, covered
    assert np.median(widths) < 0.1  # coverage bought with informative intervals


def _demo_like():
    """configs/scaling/demo.py's sweep as its docstring reports it: 6 model sizes at 1,000,
    2,000 and 8,000 scenes, losses 2.02 at 1.7k params down to 1.37, 1.20, 1.09 at 72.6k."""
    n = np.repeat([1.7e3, 4.8e3, 6.3e3, 1.8e4, 2.5e4, 7.26e4], 3)
    d = np.tile([1000.0, 2000.0, 8000.0], 6)
    end = np.select([d == 1000, d == 2000], [1.37, 1.20], 1.09)
    return n, d, _noisy(2.02 * (n / 1.7e3) ** (-np.log(2.02 / end) / np.log(7.26e4 / 1.7e3)), 0.01, 0)


@pytest.mark.filterwarnings("error")
def test_chinchilla_degenerate_data_is_reported_unidentifiable():
    # One data size (the demo sweep at one budget): B/D^beta and E are one constant.
    n, d, y = _grid_6x6(HOFFMANN, seed=1)
    d = np.full_like(d, 1e10)
    y = _noisy(_law(HOFFMANN, n, d), 0.01, seed=1)
    fit = F.fit_chinchilla(n, d, y, bootstrap=50)
    assert fit.identifiable is False and "one D" in fit.why
    assert fit.diagnostics["hessian_condition"] == "inf"
    assert fit.ci == {} and "bootstrap_range95" in fit.diagnostics
    text = fit.summary()
    assert "UNIDENTIFIABLE" in text and "95% CI" not in text
    report = json.loads(json.dumps(fit.to_json()))
    assert report["identifiable"] is False and report["why"] == fit.why and report["ci95"] == {}

    # The demo sweep itself: E collapses to zero, the data term is a ridge.
    fit = F.fit_chinchilla(*_demo_like(), bootstrap=100)
    assert fit.identifiable is False
    assert fit.diagnostics["hessian_condition"] > F.MAX_CONDITION
    assert "E ~ 0" in fit.diagnostics["optimum_on_bound"]
    assert fit.params["E"] > 0 and all(np.isfinite(v) for v in fit.params.values())


def test_saturating_form_recovers_all_parameters():
    # Zhai et al. 2022: E = a (C + d)^(-b) + c; C in TPU core-days (1) or FLOP-like units (2).
    for (a, b, c, d), (lo, hi) in (((0.6, 0.35, 0.08, 3.0), (0.5, 5e4)),
                                   ((12.0, 0.3, 0.1, 2e3), (1e2, 1e8))):
        compute = np.geomspace(lo, hi, 30)
        for sigma in (0.0, 0.001):
            y = _noisy(a * (compute + d) ** -b + c, sigma, seed=3)
            fit = F.fit_saturating(compute, y, bootstrap=0)
            for k, v in dict(a=a, b=b, c=c, d=d).items():
                assert fit.params[k] == pytest.approx(v, rel=0.05), (k, sigma)
            assert fit.r2 > 0.999


def _isoflop_data(budgets, span=4.0, sizes=9, sigma=0.0, seed=0):
    """Runs from the Chinchilla law along isoFLOP curves C = 6ND, N from N_opt/span to
    N_opt*span, where N_opt = G (C/6)^(beta/(alpha+beta)), G = (alpha A/(beta B))^(1/(alpha+beta))."""
    p = HOFFMANN
    s = p["alpha"] + p["beta"]
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / s)
    n_opt = lambda c: g * (c / 6) ** (p["beta"] / s)  # noqa: E731
    n = np.concatenate([n_opt(c) * np.geomspace(1 / span, span, sizes) for c in budgets])
    c = np.repeat(budgets, sizes)
    d = c / (6 * n)
    return n, d, c, _noisy(_law(p, n, d), sigma, seed), n_opt


def test_isoflop_recovers_the_known_optimum():
    budgets = np.array([1e18, 1e19, 1e20, 1e21, 1e22])
    n, d, c, y, n_opt = _isoflop_data(budgets)
    fit = F.fit_isoflop(n, d, y, bootstrap=0)
    assert [b["runs"] for b in fit.budgets] == [9] * 5 and all(b["used"] for b in fit.budgets)
    for b, c_true in zip(fit.budgets, budgets):
        assert b["compute"] == pytest.approx(c_true)
        # a parabola in log N is not the exact profile: ~1.4% off over N_opt/4..4 N_opt
        assert b["N_opt"] == pytest.approx(n_opt(c_true), rel=0.02)
        assert b["D_opt"] == pytest.approx(c_true / (6 * b["N_opt"]))
    a_true = HOFFMANN["beta"] / (HOFFMANN["alpha"] + HOFFMANN["beta"])
    assert fit.params["a"] == pytest.approx(a_true, abs=0.002)
    assert fit.params["a"] + fit.params["b"] == pytest.approx(1.0)
    np.testing.assert_allclose(fit.n_opt(budgets), [n_opt(x) for x in budgets], rtol=0.02)

    # 1% noise, N over N_opt/8..8 N_opt (flat profiles need the span), compute given per
    # run within 3% of its budget: the interval holds the truth and is informative
    n, d, c, y, _ = _isoflop_data(budgets, span=8.0, sigma=0.01, seed=2)
    c = c * np.exp(np.random.default_rng(0).uniform(-0.03, 0.03, len(c)))
    fit = F.fit_isoflop(n, d, y, c, bootstrap=200)
    assert len(fit.budgets) == 5
    assert fit.ci["a"][0] < a_true < fit.ci["a"][1]
    assert fit.ci["a"][1] - fit.ci["a"][0] < 0.2
    n, d, c, y, _ = _isoflop_data(budgets)  # noise-free again, for the checks below

    # a budget whose minimum lies beyond its sampled N is reported, not used
    n2 = np.concatenate([n, np.geomspace(1e6, 3e6, 5)])  # at C = 1e23, N_opt ~ 1e11
    d2 = np.concatenate([d, 1e23 / (6 * n2[-5:])])
    y2 = np.concatenate([y, _law(HOFFMANN, n2[-5:], d2[-5:])])
    fit = F.fit_isoflop(n2, d2, y2, bootstrap=0)
    (extra,) = [b for b in fit.budgets if not b["used"]]
    assert "outside the sampled N" in extra["note"]
    with pytest.raises(ValueError, match=">= 3 compute budgets"):
        F.fit_isoflop(n[:18], d[:18], y[:18], bootstrap=0)

    # 3 sizes per budget: each parabola interpolates, no scatter to draw from: no interval
    n, d, c, y, _ = _isoflop_data(budgets, sizes=3, sigma=0.01, seed=5)
    fit = F.fit_isoflop(n, d, y, c, bootstrap=50)
    assert fit.ci == {} and "degree" in fit.why and fit.diagnostics["residual_dof"] == 0
    assert "no CI" in fit.summary() and "95% CI" not in fit.summary()


def test_fit_main_isoflop_writes_plot_and_json(tmp_path, capsys):
    budgets = np.array([1e18, 1e19, 1e20, 1e21])
    n, d, _, y, _ = _isoflop_data(budgets, sizes=7, sigma=0.003, seed=4)
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"params": n, "examples_seen": d, "final_eval_loss": y,
                  "budget": np.repeat(["a", "b", "c", "d"], 7)}).to_csv(csv, index=False)
    out = tmp_path / "isoflop"
    assert F.main(["--results", str(csv), "--form", "isoflop", "--budget-col", "budget",
                   "--out", str(out), "--bootstrap", "50"]) == 0
    for ext in ("png", "svg"):
        assert os.path.getsize(out / f"isoflop.{ext}") > 1000
    report = json.loads((out / "fit.json").read_text())
    assert report["form"] == "isoflop" and report["compute"] == "6 N D"
    assert len(report["budgets"]) == 4 and set(report["ci95"]) == {"a", "b", "k_N", "k_D"}
    assert report["published"]["Kaplan et al. 2020"]["a"] == 0.73
    assert report["params"]["a"] == pytest.approx(0.4516, abs=0.03)
    printed = capsys.readouterr().out
    assert "N_opt ~ C^a" in printed and "Chinchilla 0.49" in printed and "Kaplan et al. 2020 0.73" in printed


def test_fit_main_says_when_a_chinchilla_fit_is_unidentifiable(tmp_path, capsys):
    n, d, y = _demo_like()
    csv = tmp_path / "demo.csv"
    pd.DataFrame({"params": n, "examples_seen": d, "final_eval_loss": y}).to_csv(csv, index=False)
    out = tmp_path / "fit"
    assert F.main(["--results", str(csv), "--form", "chinchilla", "--out", str(out),
                   "--bootstrap", "20", "--holdout", "0"]) == 0
    report = json.loads((out / "fit.json").read_text())
    assert report["identifiable"] is False and report["why"] and report["ci95"] == {}
    assert report["frontier"] is None
    assert os.path.getsize(out / "loss_vs_N_D_C.png") > 1000
    printed = capsys.readouterr().out
    assert "UNIDENTIFIABLE" in printed and "95% CI" not in printed


def test_saturating_form_recovers_exponent():
    # Zhai et al. 2022 form: E = a (C + d)^(-b) + c
    c = np.geomspace(0.5, 5e4, 30)
    y = _noisy(0.6 * (c + 3.0) ** -0.35 + 0.08, 0.002, seed=3)
    fit = F.fit_saturating(c, y, bootstrap=50)
    assert fit.params["b"] == pytest.approx(0.35, rel=0.02)
    assert fit.params["c"] == pytest.approx(0.08, rel=0.05)
    assert fit.ci["b"][0] < fit.params["b"] < fit.ci["b"][1]


def test_saturating_fit_of_flat_errors_is_flagged_not_overflowed():
    c = np.geomspace(1e9, 1e12, 8)
    y = _noisy(np.full(8, 0.9), 0.002, seed=1)  # chance level: no trend
    with np.errstate(all="raise"):
        fit = F.fit_saturating(c, y, bootstrap=20)
    assert all(np.isfinite(v) for v in fit.params.values())
    assert fit.identifiable is False and "no trend" in fit.why and fit.ci == {}
    step = np.where(c < 1e10, 0.9, 0.1)  # one jump: b runs to its bound
    fit = F.fit_saturating(c, step, bootstrap=0)
    assert all(np.isfinite(v) for v in fit.params.values())
    assert fit.identifiable is False and fit.ci == {}


def test_extrapolation_check_predicts_held_out_runs():
    d = np.geomspace(1e7, 1e12, 20)
    y = _noisy(1.7 + (5.4e8 / d) ** 0.3, 0.002, seed=4)
    check = F.extrapolation_check("power+E", {"x": d}, y, holdout=3)
    assert len(check["relative_error"]) == 3
    assert check["max_relative_error"] < 0.01


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="positive"):
        F.fit_power([1.0, 2.0, -3.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="chinchilla"):
        F.compute_optimal(F.fit_power(np.arange(1.0, 6.0), np.arange(5.0, 0.0, -1.0), bootstrap=0), 1e20)


def test_fit_main_writes_plots_and_json(tmp_path, capsys):
    n, d, y = _chinchilla_data(0.002, seed=5)
    df = pd.DataFrame({"params": n, "examples_seen": d, "compute_flops": 6 * n * d,
                       "final_eval_loss": y})
    csv = tmp_path / "runs.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "chinchilla"
    assert F.main(["--results", str(csv), "--form", "chinchilla", "--out", str(out),
                   "--bootstrap", "3"]) == 0
    for stem in ("isoflops", "frontier", "loss_vs_N_D_C"):
        for ext in ("png", "svg"):
            assert os.path.getsize(out / f"{stem}.{ext}") > 1000
    report = json.loads((out / "fit.json").read_text())
    assert report["form"] == "chinchilla" and "extrapolation" in report and "frontier" in report
    assert set(report["params"]) == {"A", "B", "E", "alpha", "beta"}
    assert report["identifiable"] is True and report["diagnostics"]["hessian_condition"] < 1e8

    jsonl = tmp_path / "runs.jsonl"
    df.to_json(jsonl, orient="records", lines=True)
    out = tmp_path / "power"
    assert F.main(["--results", str(jsonl), "--x", "compute", "--form", "power+E",
                   "--out", str(out), "--bootstrap", "10"]) == 0
    assert (out / "loss_vs_compute.png").exists() and (out / "loss_vs_compute.svg").exists()
    report = json.loads((out / "fit.json").read_text())
    assert report["x"] == "compute_flops" and "alpha" in report["ci95"]
    assert "R^2" in capsys.readouterr().out

    with pytest.raises(SystemExit):  # a missing column is a usage error naming the columns
        F.main(["--results", str(csv), "--params-col", "n_params", "--out", str(out)])
