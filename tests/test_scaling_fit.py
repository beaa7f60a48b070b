"""Scaling-law fits recover known laws from noisy data; `vision-jax fit` writes its outputs.

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


def test_saturating_form_recovers_exponent():
    # Zhai et al. 2022 form: E = a (C + d)^(-b) + c
    c = np.geomspace(0.5, 5e4, 30)
    y = _noisy(0.6 * (c + 3.0) ** -0.35 + 0.08, 0.002, seed=3)
    fit = F.fit_saturating(c, y, bootstrap=50)
    assert fit.params["b"] == pytest.approx(0.35, rel=0.02)
    assert fit.params["c"] == pytest.approx(0.08, rel=0.05)
    assert fit.ci["b"][0] < fit.params["b"] < fit.ci["b"][1]


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
