"""`vision-jax fit`: scaling laws fitted to results, with bootstrap confidence intervals.

Forms (x is parameters N, examples/tokens D or compute C):

  power       L(x) = (x_c / x)^alpha                  Kaplan et al. 2020, eqs. 1.1-1.3
  power+E     L(x) = E + (x_c / x)^alpha              with an irreducible loss E
  chinchilla  L(N, D) = E + A / N^alpha + B / D^beta  Hoffmann et al. 2022, approach 3
  saturating  L(C) = a (C + d)^(-b) + c               Zhai et al. 2022, eq. 1

All forms are fitted to log-loss, the way the papers did: the noise of a
final loss is roughly multiplicative, and a fit in linear space would be
dominated by the smallest, worst models. The Chinchilla form follows Hoffmann
et al. exactly: Huber loss (delta = 1e-3) on log L residuals, A, B, E
parameterised as exp(a), exp(b), exp(e) so the prediction is a log-sum-exp,
L-BFGS started from their grid of initialisations (here: from the best grid
points, after scoring the whole grid at once).

Confidence intervals are percentile bootstrap intervals over runs (resampled
with replacement). R^2 is computed on log L.

    vision-jax fit --results runs.csv --x params --y loss --form power+E --out fits/
    vision-jax fit --results runs.jsonl --form chinchilla --out fits/
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy import optimize, special

FORMS = ("power", "power+E", "chinchilla", "saturating")
HUBER_DELTA = 1e-3


@dataclasses.dataclass
class Fit:
    """A fitted law: point estimates, 95% bootstrap intervals, R^2 on log L."""

    form: str
    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    r2: float
    n: int
    x: str = "x"

    def predict(self, *x: np.ndarray) -> np.ndarray:
        return PREDICT[self.form](self.params, *x)

    def to_json(self) -> dict[str, Any]:
        return {"form": self.form, "x": self.x, "n": self.n, "r2": self.r2,
                "params": self.params, "ci95": {k: list(v) for k, v in self.ci.items()}}

    def summary(self) -> str:
        lines = [f"{self.form} fit of loss vs {self.x} on {self.n} runs, "
                 f"R^2 (log loss) = {self.r2:.4f}"]
        for k, v in self.params.items():
            lo, hi = self.ci.get(k, (float("nan"), float("nan")))
            lines.append(f"  {k:<8} = {v:.6g}   95% CI [{lo:.6g}, {hi:.6g}]")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the forms

def _power(p, x):
    return (p["x_c"] / np.asarray(x, float)) ** p["alpha"]


def _power_e(p, x):
    return p["E"] + _power(p, x)


def _chinchilla(p, n, d):
    return p["E"] + p["A"] / np.asarray(n, float) ** p["alpha"] + p["B"] / np.asarray(d, float) ** p["beta"]


def _saturating(p, c):
    return p["a"] * (np.asarray(c, float) + p["d"]) ** (-p["b"]) + p["c"]


PREDICT: dict[str, Callable] = {"power": _power, "power+E": _power_e,
                                "chinchilla": _chinchilla, "saturating": _saturating}


def _r2_log(y, pred) -> float:
    ly, lp = np.log(y), np.log(np.maximum(pred, 1e-300))
    return float(1.0 - np.sum((ly - lp) ** 2) / np.sum((ly - ly.mean()) ** 2))


def _check(x, y, name):
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"{name}: x and y must be 1-D of equal length, got {x.shape}, {y.shape}")
    if len(x) < 3 or np.any(x <= 0) or np.any(y <= 0) or not np.all(np.isfinite(x * y)):
        raise ValueError(f"{name}: needs >= 3 runs with positive, finite x and loss")
    return x, y


# ----------------------------------------------------------------------------- estimators

def _power_point(x, y) -> dict[str, float]:
    """log L = alpha log x_c - alpha log x: ordinary least squares in log-log."""
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    alpha = -slope
    return {"alpha": float(alpha), "x_c": float(np.exp(intercept / alpha))}


def _power_e_point(x, y, init: Mapping[str, float] | None = None) -> dict[str, float]:
    """log L = log(E + exp(alpha (log x_c - log x))), least squares over (log E, alpha, log x_c)."""
    lx, ly = np.log(x), np.log(y)

    def resid(theta):
        le, alpha, lxc = theta
        return np.logaddexp(le, alpha * (lxc - lx)) - ly

    starts = []
    if init:
        starts.append([np.log(init["E"]), init["alpha"], np.log(init["x_c"])])
    for frac in (0.1, 0.5, 0.9):
        e = frac * y.min()
        p = _power_point(x, np.maximum(y - e, 1e-12 * y))
        starts.append([np.log(e), p["alpha"], np.log(p["x_c"])])
    best = min((optimize.least_squares(resid, s, method="lm") for s in starts),
               key=lambda r: r.cost)
    le, alpha, lxc = best.x
    return {"alpha": float(alpha), "x_c": float(np.exp(lxc)), "E": float(np.exp(le))}


# Hoffmann et al. 2022, App. D.2: the grid of initialisations.
_CHINCHILLA_GRID = dict(alpha=np.arange(0.0, 2.01, 0.5), beta=np.arange(0.0, 2.01, 0.5),
                        e=np.arange(-1.0, 1.01, 0.5), a=np.arange(0.0, 25.1, 5.0),
                        b=np.arange(0.0, 25.1, 5.0))


def _chinchilla_objective(theta, ln, ld, ly, delta=HUBER_DELTA):
    """Huber loss of log-sum-exp(a - alpha ln, b - beta ld, e) - log L, and its gradient."""
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * ln, b - beta * ld, np.full_like(ln, e)])
    lse = special.logsumexp(terms, axis=0)
    r = lse - ly
    absr = np.abs(r)
    loss = np.where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta)).sum()
    dr = np.clip(r, -delta, delta)
    w = np.exp(terms - lse) * dr                       # softmax weights x dHuber/dr
    grad = np.array([w[0].sum(), w[1].sum(), w[2].sum(), -(w[0] * ln).sum(), -(w[1] * ld).sum()])
    return loss, grad


def _chinchilla_grid_scores(ln, ld, ly, delta=HUBER_DELTA):
    grid = np.array(list(itertools.product(*(_CHINCHILLA_GRID[k] for k in ("a", "b", "e", "alpha", "beta")))))
    a, b, e, alpha, beta = (grid[:, i:i + 1] for i in range(5))
    terms = np.stack([a - alpha * ln[None], b - beta * ld[None], np.broadcast_to(e, (len(grid), len(ln)))])
    r = special.logsumexp(terms, axis=0) - ly[None]
    absr = np.abs(r)
    scores = np.where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta)).sum(axis=1)
    return grid, scores


def _chinchilla_point(n, d, y, starts: int = 4, init: Sequence[float] | None = None) -> dict[str, float]:
    ln, ld, ly = np.log(n), np.log(d), np.log(y)
    if init is None:
        grid, scores = _chinchilla_grid_scores(ln, ld, ly)
        inits = grid[np.argsort(scores)[:starts]]
    else:
        inits = np.asarray([init])
    best = None
    for theta0 in inits:
        res = optimize.minimize(_chinchilla_objective, theta0, args=(ln, ld, ly), jac=True,
                                method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-12,
                                                            "ftol": 1e-15})
        if best is None or res.fun < best.fun:
            best = res
    a, b, e, alpha, beta = best.x
    return {"A": float(np.exp(a)), "B": float(np.exp(b)), "E": float(np.exp(e)),
            "alpha": float(alpha), "beta": float(beta)}


def _saturating_point(c, y, init: Mapping[str, float] | None = None) -> dict[str, float]:
    """log L = log(a (C + d)^-b + c) by least squares; C scaled by its median for conditioning."""
    scale = float(np.median(c))
    cs, ly = c / scale, np.log(y)

    def resid(theta):
        la, b, lc, ld = theta
        return np.logaddexp(la - b * np.log(cs + np.exp(ld)), lc) - ly

    if init:  # bootstrap resamples start from the full-data optimum
        starts = [[np.log(init["a"] * scale ** -init["b"]), init["b"],
                   np.log(max(init["c"], 1e-12)), np.log(max(init["d"] / scale, 1e-12))]]
    else:
        starts = []
        for b0, ld0, cfrac in itertools.product((0.2, 0.5, 1.0), (-6.0, -2.0, 0.0), (0.3, 0.8)):
            c0 = cfrac * y.min()
            starts.append([np.log(max(y.max() - c0, 1e-6)), b0, np.log(c0), ld0])
    best = min((optimize.least_squares(resid, s, method="trf") for s in starts),
               key=lambda r: r.cost)
    la, b, lc, ld = best.x
    # back to unscaled C: a (C/s + d')^-b = a s^b (C + d' s)^-b
    return {"a": float(np.exp(la) * scale ** b), "b": float(b), "c": float(np.exp(lc)),
            "d": float(np.exp(ld) * scale)}


# ----------------------------------------------------------------------------- public API

def _bootstrap(point: Callable[[np.ndarray], dict[str, float]], n: int, samples: int,
               seed: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    draws: list[dict[str, float]] = []
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        if len(np.unique(idx)) < 4:
            continue
        try:
            draws.append(point(idx))
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue
    if not draws:
        return {}
    return {k: (float(np.percentile([d[k] for d in draws], 2.5)),
                float(np.percentile([d[k] for d in draws], 97.5))) for k in draws[0]}


def fit_power(x, y, *, irreducible: bool = False, bootstrap: int = 200, seed: int = 0,
              x_name: str = "x") -> Fit:
    """L(x) = (x_c/x)^alpha, or E + (x_c/x)^alpha with `irreducible`."""
    x, y = _check(x, y, "fit_power")
    if irreducible:
        params = _power_e_point(x, y)
        point = lambda i: _power_e_point(x[i], y[i], params)  # noqa: E731
        form = "power+E"
    else:
        params = _power_point(x, y)
        point = lambda i: _power_point(x[i], y[i])  # noqa: E731
        form = "power"
    fit = Fit(form, params, _bootstrap(point, len(x), bootstrap, seed), 0.0, len(x), x_name)
    fit.r2 = _r2_log(y, fit.predict(x))
    return fit


def fit_chinchilla(n, d, y, *, bootstrap: int = 100, seed: int = 0) -> Fit:
    """Hoffmann et al. (2022) approach 3: L(N, D) = E + A/N^alpha + B/D^beta."""
    n, y = _check(n, y, "fit_chinchilla")
    d, _ = _check(d, y, "fit_chinchilla")
    params = _chinchilla_point(n, d, y)
    theta = [np.log(params["A"]), np.log(params["B"]), np.log(params["E"]),
             params["alpha"], params["beta"]]
    point = lambda i: _chinchilla_point(n[i], d[i], y[i], init=theta)  # noqa: E731
    fit = Fit("chinchilla", params, _bootstrap(point, len(n), bootstrap, seed), 0.0, len(n), "N, D")
    fit.r2 = _r2_log(y, fit.predict(n, d))
    return fit


def fit_saturating(c, y, *, bootstrap: int = 200, seed: int = 0, x_name: str = "C") -> Fit:
    """Zhai et al. (2022): L(C) = a (C + d)^(-b) + c, with a, b, c, d >= 0."""
    c, y = _check(c, y, "fit_saturating")
    params = _saturating_point(c, y)
    point = lambda i: _saturating_point(c[i], y[i], params)  # noqa: E731
    fit = Fit("saturating", params, _bootstrap(point, len(c), bootstrap, seed), 0.0, len(c), x_name)
    fit.r2 = _r2_log(y, fit.predict(c))
    return fit


def compute_optimal(fit: Fit, compute) -> dict[str, np.ndarray]:
    """N_opt(C), D_opt(C) under C = 6 N D for a Chinchilla fit (Hoffmann et al. eq. 4).

    Minimising E + A/N^alpha + B/D^beta subject to 6ND = C gives
    N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = G^-1 (C/6)^(alpha/(alpha+beta)),
    G = (alpha A / (beta B))^(1/(alpha+beta)).
    """
    if fit.form != "chinchilla":
        raise ValueError(f"compute_optimal needs a chinchilla fit, got {fit.form!r}")
    p = fit.params
    s = p["alpha"] + p["beta"]
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / s)
    c6 = np.asarray(compute, float) / 6.0
    n_opt = g * c6 ** (p["beta"] / s)
    d_opt = c6 ** (p["alpha"] / s) / g
    return {"compute": np.asarray(compute, float), "params": n_opt, "examples": d_opt,
            "loss": fit.predict(n_opt, d_opt),
            "a": p["beta"] / s, "b": p["alpha"] / s}


def extrapolation_check(form: str, columns: Mapping[str, np.ndarray], y: np.ndarray, *,
                        holdout: int = 2, by: str | None = None) -> dict[str, Any]:
    """Fit on all but the `holdout` largest runs (by compute, else x), predict those.

    Returns the held-out predictions and their relative errors |pred/true - 1|.
    """
    y = np.asarray(y, float)
    key = by or ("compute" if "compute" in columns else next(iter(columns)))
    order = np.argsort(np.asarray(columns[key], float))
    if len(order) - holdout < 4:
        raise ValueError(f"extrapolation check: {len(order)} runs leave too few to fit "
                         f"after holding out {holdout}")
    train, test = order[:-holdout], order[-holdout:]
    fit = fit_form(form, {k: np.asarray(v, float)[train] for k, v in columns.items()}, y[train],
                   bootstrap=0)
    args = _form_args(form, {k: np.asarray(v, float)[test] for k, v in columns.items()})
    pred = fit.predict(*args)
    rel = np.abs(pred / y[test] - 1.0)
    return {"held_out_by": key, "held_out": [float(v) for v in np.asarray(columns[key], float)[test]],
            "predicted": pred.tolist(), "actual": y[test].tolist(),
            "relative_error": rel.tolist(), "max_relative_error": float(rel.max()),
            "fit_on_smaller": fit.to_json()}


def _form_args(form: str, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    if form == "chinchilla":
        return columns["params"], columns["examples"]
    return (columns["x"],)


def fit_form(form: str, columns: Mapping[str, np.ndarray], y, *, bootstrap: int = 200,
             seed: int = 0, x_name: str = "x") -> Fit:
    """Dispatch by form name; `columns` holds 'x', or 'params' and 'examples' for chinchilla."""
    if form == "power":
        return fit_power(columns["x"], y, bootstrap=bootstrap, seed=seed, x_name=x_name)
    if form == "power+E":
        return fit_power(columns["x"], y, irreducible=True, bootstrap=bootstrap, seed=seed,
                         x_name=x_name)
    if form == "saturating":
        return fit_saturating(columns["x"], y, bootstrap=bootstrap, seed=seed, x_name=x_name)
    if form == "chinchilla":
        return fit_chinchilla(columns["params"], columns["examples"], y, bootstrap=bootstrap,
                              seed=seed)
    raise ValueError(f"unknown form {form!r}; valid: {list(FORMS)}")


# ----------------------------------------------------------------------------- command line

def read_results(path: str):
    """A results table from .csv, .jsonl/.json (one object per line) or .parquet."""
    import pandas as pd
    lower = path.lower()
    if lower.endswith(".csv"):
        return pd.read_csv(path)
    if lower.endswith((".jsonl", ".json")):
        return pd.read_json(path, lines=lower.endswith(".jsonl"))
    if lower.endswith(".parquet"):
        return pd.read_parquet(path)
    raise ValueError(f"--results {path!r}: expected a .csv, .jsonl, .json or .parquet file")


def _column(df, name: str, flag: str):
    if name not in df.columns:
        raise ValueError(f"{flag}={name!r} is not a column of the results; columns: {list(df.columns)}")
    return df[name].to_numpy(dtype=float)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax fit", description=__doc__.split("\n")[0])
    parser.add_argument("--results", required=True, help=".csv, .jsonl or .parquet, one row per run")
    parser.add_argument("--x", choices=("params", "examples", "compute"), default="params")
    parser.add_argument("--y", default="loss", help="loss column ('loss' means --loss-col)")
    parser.add_argument("--form", choices=FORMS, default="power")
    parser.add_argument("--out", required=True, help="directory for fit.json and the plots")
    parser.add_argument("--params-col", default="params",
                        help="e.g. non_embedding_params to fit as Kaplan et al. did")
    parser.add_argument("--examples-col", default="examples_seen")
    parser.add_argument("--compute-col", default="compute_flops")
    parser.add_argument("--loss-col", default="final_eval_loss")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples (0: no CIs)")
    parser.add_argument("--holdout", type=int, default=2,
                        help="largest runs held out for the extrapolation check (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        df = read_results(args.results)
        y_col = args.loss_col if args.y == "loss" and "loss" not in df.columns else args.y
        y = _column(df, y_col, "--y")
        cols = {"params": args.params_col, "examples": args.examples_col,
                "compute": args.compute_col}
        columns: dict[str, np.ndarray] = {}
        if args.form == "chinchilla":
            columns["params"] = _column(df, args.params_col, "--params-col")
            columns["examples"] = _column(df, args.examples_col, "--examples-col")
            columns["compute"] = (_column(df, args.compute_col, "--compute-col")
                                  if args.compute_col in df.columns
                                  else 6.0 * columns["params"] * columns["examples"])
        else:
            flag = f"--{args.x}-col"
            columns["x"] = _column(df, cols[args.x], flag)
        fit = fit_form(args.form, columns, y, bootstrap=args.bootstrap, seed=args.seed,
                       x_name=cols[args.x])
    except ValueError as e:
        parser.error(str(e))

    os.makedirs(args.out, exist_ok=True)
    report: dict[str, Any] = {"results": os.path.abspath(args.results), "loss_column": y_col,
                              **fit.to_json()}
    print(fit.summary())
    if args.holdout:
        try:
            check = extrapolation_check(args.form, columns, y, holdout=args.holdout,
                                        by="compute" if args.form == "chinchilla" else "x")
            report["extrapolation"] = check
            print(f"extrapolation: fitted on the {len(y) - args.holdout} smaller runs, the "
                  f"{args.holdout} largest predicted within "
                  f"{100 * check['max_relative_error']:.2f}% (max relative error)")
        except (ValueError, RuntimeError) as e:
            print(f"extrapolation check skipped: {e}")

    from vision_jax.scaling import plots
    written = []
    if args.form == "chinchilla":
        frontier = compute_optimal(fit, np.geomspace(columns["compute"].min(),
                                                     columns["compute"].max() * 100, 50))
        report["frontier"] = {"N_opt_exponent": frontier["a"], "D_opt_exponent": frontier["b"],
                              "compute": frontier["compute"].tolist(),
                              "params": frontier["params"].tolist(),
                              "examples": frontier["examples"].tolist()}
        print(f"compute-optimal frontier: N_opt ~ C^{frontier['a']:.3f}, "
              f"D_opt ~ C^{frontier['b']:.3f}")
        written += plots.plot_chinchilla(columns["params"], columns["examples"],
                                         columns["compute"], y, fit, frontier, args.out)
    else:
        written += plots.plot_law(columns["x"], y, fit, xlabel=cols[args.x], ylabel=y_col,
                                  stem=os.path.join(args.out, f"loss_vs_{args.x}"))
    path = os.path.join(args.out, "fit.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    written.append(path)
    print("wrote " + ", ".join(written))
    return 0
