"""`vision-jax fit`: scaling laws fitted to results, with bootstrap confidence intervals.

Forms (x is parameters N, examples/tokens D or compute C):

  power       L(x) = (x_c / x)^alpha                  Kaplan et al. 2020, eqs. 1.1-1.3
  power+E     L(x) = E + (x_c / x)^alpha              with an irreducible loss E
  chinchilla  L(N, D) = E + A / N^alpha + B / D^beta  Hoffmann et al. 2022, approach 3
  saturating  L(C) = a (C + d)^(-b) + c               Zhai et al. 2022, eq. 1
  isoflop     N_opt ~ C^a, D_opt ~ C^b                Hoffmann et al. 2022, approach 2

All forms are fitted to log-loss, the way the papers did: the noise of a
final loss is roughly multiplicative, and a fit in linear space would be
dominated by the smallest, worst models. The Chinchilla form follows Hoffmann
et al. exactly: Huber loss (delta = 1e-3) on log L residuals, A, B, E
parameterised as exp(a), exp(b), exp(e) so the prediction is a log-sum-exp
(E >= 0 by construction), minimised from their grid of initialisations. Here
the whole grid is scored at once, a batched Levenberg-Marquardt on the same
Huber objective refines its best points (it reaches the minima their L-BFGS
reaches, and refits all bootstrap resamples together), and L-BFGS-B polishes
the best. Every bootstrap resample is refitted from its own best grid points
and the full-data optimum, so that a resample can leave the basin of the
full-data fit.

A Chinchilla fit says when it cannot be trusted. It is *unidentifiable* when
the Gauss-Newton Hessian of the log-loss fit at the optimum, in the fitted
parameters (log A, log B, log E, alpha, beta, with N and D measured from their
geometric means so that it does not depend on their units), has a condition
number above 1e8 (well-spread sweeps give 1e3 to 1e5); when the optimum lies
on a bound (alpha, beta in [0, 5]; E between negligible, 20 nats below the
smallest loss, and the largest loss); or when more than half of the bootstrap
refits end on a bound. Its summary and fit.json then say why, and give no
confidence intervals: the spread of the refits is kept in fit.json as
`diagnostics.bootstrap_range95`, not as a CI.

The isoflop form is approach 2: runs grouped by compute budget, a parabola in
log N fitted to log L per budget gives N_opt(C) and D_opt = C / (6 N_opt),
and power laws in C are fitted to those, with intervals from resampling runs
within each budget.

Confidence intervals are percentile bootstrap intervals over runs (resampled
with replacement). R^2 is computed on log L.

    vision-jax fit --results runs.csv --x params --y loss --form power+E --out fits/
    vision-jax fit --results runs.jsonl --form chinchilla --out fits/
    vision-jax fit --results runs.jsonl --form isoflop --out fits/
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
from typing import Any, Callable, Mapping

import numpy as np
from scipy import optimize

FORMS = ("power", "power+E", "chinchilla", "saturating")
CLI_FORMS = FORMS + ("isoflop",)  # isoflop fits N_opt(C), D_opt(C), not a loss law
HUBER_DELTA = 1e-3
EXPONENT_BOUNDS = (0.0, 5.0)  # alpha, beta of the Chinchilla form
E_FLOOR_NATS = 20.0  # log E, log A, log B this far below the smallest log loss: zero in effect
MAX_CONDITION = 1e8  # of the Hessian at the optimum; above it a Chinchilla fit is unidentifiable
MIN_ISOFLOP_DOF = 2  # residual degrees of freedom an isoFLOP interval needs

# N_opt ~ C^a, D_opt ~ C^b as published, to print beside an isoFLOP fit.
PUBLISHED_EXPONENTS = {
    "Chinchilla (Hoffmann et al. 2022, approach 2)": {"a": 0.49, "b": 0.51},
    "Kaplan et al. 2020": {"a": 0.73, "b": 0.27},
}


@dataclasses.dataclass
class Fit:
    """A fitted law: point estimates, 95% bootstrap intervals, R^2 on log L.

    `identifiable` is None where it was not assessed (all forms but chinchilla);
    False means the data do not determine the parameters: `why` says how, `ci`
    is empty, and `diagnostics` holds the evidence.
    """

    form: str
    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    r2: float
    n: int
    x: str = "x"
    identifiable: bool | None = None
    why: str = ""
    diagnostics: dict[str, Any] = dataclasses.field(default_factory=dict)

    def predict(self, *x: np.ndarray) -> np.ndarray:
        return PREDICT[self.form](self.params, *x)

    def to_json(self) -> dict[str, Any]:
        out = {"form": self.form, "x": self.x, "n": self.n, "r2": self.r2,
               "params": self.params, "ci95": {k: list(v) for k, v in self.ci.items()}}
        if self.identifiable is not None:
            out.update(identifiable=self.identifiable, why=self.why, diagnostics=self.diagnostics)
        return out

    def summary(self) -> str:
        lines = [f"{self.form} fit of loss vs {self.x} on {self.n} runs, "
                 f"R^2 (log loss) = {self.r2:.4f}"]
        if self.identifiable is False:
            lines.append(f"  UNIDENTIFIABLE: {self.why}")
            lines.append("  The values below are one of many near-equal fits, not estimates; "
                         "no confidence intervals.")
            for k, v in self.params.items():
                lines.append(f"  {k:<8} = {v:.6g}   (no CI: not identifiable)")
            return "\n".join(lines)
        for k, v in self.params.items():
            lo, hi = self.ci.get(k, (float("nan"), float("nan")))
            lines.append(f"  {k:<8} = {v:.6g}   95% CI [{lo:.6g}, {hi:.6g}]")
        return "\n".join(lines)


def _one_blas_thread():
    """Many tiny (5 x 5) solves and L-BFGS-B steps: BLAS threads only contend for them
    (L-BFGS-B ran 30x slower with OpenBLAS's threads on a busy 2-core machine)."""
    try:
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


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
# The fitted parameters theta, in order. N and D are measured from their geometric means
# (ln N - mean ln N): then log A is the log of the A-term at the central N, theta's scale
# and condition number do not depend on the units of N and D, and the solver needs fewer
# steps. A = exp(log A + alpha mean ln N), likewise B; E = exp(log E).
_CHINCHILLA_THETA = ("log A", "log B", "log E", "alpha", "beta")


def _chinchilla_objective(theta, ln, ld, ly, weights=None, delta=HUBER_DELTA):
    """Huber loss of log-sum-exp(a - alpha ln, b - beta ld, e) - log L, and its gradient.

    `weights` are the runs' counts in a bootstrap resample. The log-sum-exp is
    written out: scipy.special.logsumexp costs more than the rest together.
    """
    a, b, e, alpha, beta = theta
    t0, t1 = a - alpha * ln, b - beta * ld
    m = np.maximum(np.maximum(t0, t1), e)
    p0, p1, p2 = np.exp(t0 - m), np.exp(t1 - m), np.exp(e - m)
    s = p0 + p1 + p2
    r = m + np.log(s) - ly
    absr = np.abs(r)
    w = 1.0 if weights is None else weights
    loss = (w * np.where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta))).sum()
    dr = w * np.clip(r, -delta, delta) / s           # dHuber/dr x the softmax denominator
    g0, g1 = p0 * dr, p1 * dr
    grad = np.array([g0.sum(), g1.sum(), (p2 * dr).sum(), -(g0 * ln).sum(), -(g1 * ld).sum()])
    return loss, grad


def _huber(r, delta=HUBER_DELTA):
    absr = np.abs(r)
    return np.where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta))


def _chinchilla_residuals(theta, ln, ld, ly, jacobian: bool = True):
    """Log-loss residuals (P, runs) of P parameter vectors (P, 5), and their Jacobian
    (P, runs, 5) or None: d log L / d term is the softmax of the three terms."""
    a, b, e, alpha, beta = (theta[:, i:i + 1] for i in range(5))
    t0, t1 = a - alpha * ln, b - beta * ld
    t2 = np.broadcast_to(e, t0.shape)
    m = np.maximum(np.maximum(t0, t1), t2)
    p0, p1, p2 = np.exp(t0 - m), np.exp(t1 - m), np.exp(t2 - m)
    s = p0 + p1 + p2
    if not jacobian:
        return m + np.log(s) - ly, None
    q0, q1 = p0 / s, p1 / s
    jac = np.stack([q0, q1, p2 / s, -q0 * ln, -q1 * ld], axis=-1)
    return m + np.log(s) - ly, jac


def _chinchilla_lm(theta0, ln, ld, ly, bounds, counts, *, delta=HUBER_DELTA, iters=500,
                   rtol=1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Minimises the Huber objective for P problems at once: starts (P, 5), run counts
    (P, runs) -> (theta (P, 5), loss (P,)).

    Projected Levenberg-Marquardt on Huber's iteratively reweighted least squares
    (weight min(1, delta/|r|) per run): all starts of all bootstrap resamples take
    their steps together, which is what makes refitting every resample from the grid
    affordable. It reaches the minima L-BFGS-B reaches (to ~1e-12 in the objective).
    A parameter on a bound whose gradient points out of the box is held there.
    """
    lo, hi = np.array(bounds, float).T
    theta = np.clip(np.array(theta0, float), lo, hi)
    r, jac = _chinchilla_residuals(theta, ln, ld, ly)
    loss = (counts * _huber(r, delta)).sum(axis=1)
    lam = np.full(len(theta), 1e-2)
    stall = np.zeros(len(theta), int)
    live = np.ones(len(theta), bool)
    eye = np.eye(5)
    for _ in range(iters):
        idx = np.flatnonzero(live)
        if not len(idx):
            break
        th, rr, jj, c = theta[idx], r[idx], jac[idx], counts[idx]
        jt = jj.transpose(0, 2, 1)                     # matmul: 5x faster than einsum here
        g = np.matmul(jt, (c * np.clip(rr, -delta, delta))[:, :, None])[:, :, 0]
        w = c * np.minimum(1.0, delta / np.maximum(np.abs(rr), 1e-300))
        h = np.matmul(jt * w[:, None, :], jj)
        free = ~(((th <= lo) & (g > 0)) | ((th >= hi) & (g < 0)))
        h = h * free[:, :, None] * free[:, None, :] + eye * (~free)[:, :, None]
        g = g * free
        diag = np.diagonal(h, axis1=1, axis2=2)
        damp = lam[idx, None] * (diag + 1e-12 * diag.max(axis=1, keepdims=True))
        try:
            step = -np.linalg.solve(h + damp[:, :, None] * eye, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -np.einsum("pkl,pl->pk", np.linalg.pinv(h + damp[:, :, None] * eye), g)
        new = np.clip(th + step, lo, hi)
        rn, jn = _chinchilla_residuals(new, ln, ld, ly)
        ln_ = (c * _huber(rn, delta)).sum(axis=1)
        better = ln_ < loss[idx]
        gain = (loss[idx] - ln_) / np.maximum(loss[idx], 1e-300)
        keep = idx[better]
        theta[keep], r[keep], jac[keep], loss[keep] = new[better], rn[better], jn[better], ln_[better]
        lam[idx] = np.where(better, np.maximum(lam[idx] / 3, 1e-9), lam[idx] * 4)
        # done after 8 accepted steps in a row that gain < rtol, or when no step of any
        # length below 1e-10 of Gauss-Newton's lowers the loss
        stall[idx] = np.where(better, np.where(gain > rtol, 0, stall[idx] + 1), stall[idx])
        live[idx] = (stall[idx] < 8) & (lam[idx] < 1e10)
    return theta, loss


def _chinchilla_grid(ly, centre) -> np.ndarray:
    """Hoffmann et al.'s grid in theta; its e values (E from 0.37 to 2.7, made for losses
    of 2-3 nats) joined by E at 5% to 90% of the smallest loss, so any loss scale has starts."""
    e = np.union1d(_CHINCHILLA_GRID["e"], ly.min() + np.log([0.05, 0.3, 0.6, 0.9]))
    axes = (_CHINCHILLA_GRID["a"], _CHINCHILLA_GRID["b"], e, _CHINCHILLA_GRID["alpha"],
            _CHINCHILLA_GRID["beta"])
    grid = np.array(list(itertools.product(*axes)))
    grid[:, 0] -= grid[:, 3] * centre[0]
    grid[:, 1] -= grid[:, 4] * centre[1]
    return grid


def _chinchilla_grid_huber(grid, ln, ld, ly, delta=HUBER_DELTA) -> np.ndarray:
    """The Huber loss of every grid point at every run, (points, runs): the grid's scores
    on a bootstrap resample are this matrix times the resample's counts."""
    r, _ = _chinchilla_residuals(grid, ln, ld, ly, jacobian=False)
    return _huber(r, delta)


def _chinchilla_bounds(ly) -> list[tuple[float, float]]:
    """Bounds on theta. The log-scales may fall E_FLOOR_NATS below the smallest log loss
    (there a term is zero in effect); log E may not exceed the largest loss, nor a term
    at the central N or D the largest loss by E_FLOOR_NATS. Without a floor, log E drifts
    towards -inf where its gradient vanishes, and exp(log E) underflows to 0."""
    lo, hi = float(ly.min()) - E_FLOOR_NATS, float(ly.max())
    return [(lo, hi + E_FLOOR_NATS), (lo, hi + E_FLOOR_NATS), (lo, hi), EXPONENT_BOUNDS,
            EXPONENT_BOUNDS]


def _chinchilla_polish(theta, ln, ld, ly, bounds) -> np.ndarray:
    """L-BFGS-B (Hoffmann et al.'s optimiser) from the best point found; kept if better."""
    res = optimize.minimize(_chinchilla_objective, theta, args=(ln, ld, ly), jac=True,
                            method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 2000, "gtol": 1e-12, "ftol": 1e-15})
    return res.x if res.fun < _chinchilla_objective(theta, ln, ld, ly)[0] else theta


def _best_rows(grid, scores, k: int) -> np.ndarray:
    return grid[np.argsort(scores, kind="stable")[:k]]


def _chinchilla_params(theta, centre) -> dict[str, float]:
    a, b, e, alpha, beta = theta
    return {"A": float(np.exp(a + alpha * centre[0])), "B": float(np.exp(b + beta * centre[1])),
            "E": float(np.exp(e)), "alpha": float(alpha), "beta": float(beta)}


def _bound_hits(theta, bounds) -> list[str]:
    """Which parameters sit on a bound. A log-scale counts as on its floor within half
    the floor's depth of it: there its term is below e^-10 of every loss, and the solver
    stops short of the floor as the gradient in that log-scale vanishes."""
    (alo, ahi), (blo, bhi), (elo, ehi), (xlo, xhi), (ylo, yhi) = bounds
    near, eps = E_FLOOR_NATS / 2, 1e-3
    a, b, e, alpha, beta = theta
    checks = [(a <= alo + near, "A/N^alpha ~ 0"), (a >= ahi - near, "A at its upper bound"),
              (b <= blo + near, "B/D^beta ~ 0"), (b >= bhi - near, "B at its upper bound"),
              (e <= elo + near, "E ~ 0"), (e >= ehi - eps, "E = the largest loss"),
              (alpha <= xlo + eps, f"alpha = {xlo:g}"), (alpha >= xhi - eps, f"alpha = {xhi:g}"),
              (beta <= ylo + eps, f"beta = {ylo:g}"), (beta >= yhi - eps, f"beta = {yhi:g}")]
    return [name for hit, name in checks if hit]


def _chinchilla_condition(theta, ln, ld, ly) -> tuple[float, dict[str, float]]:
    """Condition number of the Gauss-Newton Hessian J^T J of the log-loss residuals in
    theta, and its flattest direction (the eigenvector of its smallest eigenvalue).

    The exact Hessian of the Huber objective is no measure of identifiability: its
    second derivative is zero for residuals beyond delta = 1e-3, so it counts the runs
    fitted to within 0.1% (and is indefinite at 1% noise). J^T J is the Hessian of the
    squared log residuals at a good fit, the curvature that noise in log L meets.
    """
    _, jac = _chinchilla_residuals(np.asarray(theta, float)[None], ln, ld, ly)
    _, sv, vt = np.linalg.svd(jac[0], full_matrices=False)
    cond = float((sv[0] / sv[-1]) ** 2) if sv[-1] > sv[0] * 1e-15 else float("inf")
    v = vt[-1] * np.sign(vt[-1][np.argmax(np.abs(vt[-1]))])
    return cond, {k: float(round(c, 3)) for k, c in zip(_CHINCHILLA_THETA, v)}


def _direction_text(direction: Mapping[str, float]) -> str:
    terms = sorted(((c, k) for k, c in direction.items() if abs(c) >= 0.05), key=lambda t: -abs(t[0]))
    text = " ".join(f"{'-' if c < 0 else '+'} {abs(c):.2f} {k}" for c, k in terms)
    return text.removeprefix("+ ")


def _chinchilla_identifiability(theta, draws, n, d, ln, ld, ly, bounds) -> tuple[bool, str, dict]:
    """The rule in the module docstring: (identifiable, why not, the evidence)."""
    cond, flat = _chinchilla_condition(theta, ln, ld, ly)
    at_optimum = _bound_hits(theta, bounds)
    diag: dict[str, Any] = {
        "hessian_condition": cond if np.isfinite(cond) else "inf",
        "max_condition": MAX_CONDITION, "flattest_direction": flat,
        "optimum_on_bound": at_optimum,
        "bounds": {"alpha": list(EXPONENT_BOUNDS), "beta": list(EXPONENT_BOUNDS),
                   "E": [float(np.exp(bounds[2][0])), float(np.exp(bounds[2][1]))]},
        "bootstrap_refits": len(draws)}
    reasons = []
    for values, name, term in ((d, "D", "B/D^beta"), (n, "N", "A/N^alpha")):
        if len(np.unique(values)) < 2:
            reasons.append(f"all runs share one {name}, so {term} cannot be told apart from E")
    if cond > MAX_CONDITION:
        reasons.append(f"the Hessian at the optimum has condition number {cond:.3g} > "
                       f"{MAX_CONDITION:g} (flattest direction: {_direction_text(flat)})")
    if at_optimum:
        reasons.append(f"the best fit lies on a bound ({', '.join(at_optimum)})")
    if len(draws):
        hits = [_bound_hits(t, bounds) for t in draws]
        frac = float(np.mean([bool(h) for h in hits]))
        by_bound = {k: float(np.mean([k in h for h in hits]))
                    for k in sorted({k for h in hits for k in h})}
        diag.update(bootstrap_on_bound=frac, bootstrap_bound_hits=by_bound)
        if frac > 0.5:
            worst = ", ".join(f"{k} in {100 * v:.0f}%" for k, v in
                              sorted(by_bound.items(), key=lambda kv: -kv[1])[:3])
            reasons.append(f"{100 * frac:.0f}% of {len(draws)} bootstrap refits end on a bound "
                           f"({worst})")
    return not reasons, "; ".join(reasons), diag


SATURATING_B_MAX = 5.0  # Zhai et al. fit b ~ 0.3-0.6; beyond 5 the curve is a step


def _saturating_bounds(cs, y) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on (log a, b, log c, log d'), C scaled to median 1: b in [0, 5], the floor c
    below the smallest error, d' within 30 e-folds of the scaled compute. Flat errors
    otherwise send b and a to infinity together (an overflow, not a fit)."""
    lo_c = np.log(y.min()) - E_FLOOR_NATS
    lo = np.array([-60.0, 0.0, lo_c, np.log(cs.min()) - 30.0])
    hi = np.array([60.0, SATURATING_B_MAX, np.log(y.min()), np.log(cs.max()) + 30.0])
    return lo, hi


def _saturating_point(c, y, init: Mapping[str, float] | None = None) -> dict[str, float]:
    """log L = log(a (C + d)^-b + c) by bounded least squares; C scaled by its median."""
    scale = float(np.median(c))
    cs, ly = c / scale, np.log(y)
    lo, hi = _saturating_bounds(cs, y)

    def resid(theta):
        la, b, lc, ld = theta
        return np.logaddexp(la - b * np.log(cs + np.exp(ld)), lc) - ly

    if init:  # bootstrap resamples start from the full-data optimum
        starts = [[np.log(init["a"] * scale ** -init["b"]), init["b"],
                   np.log(max(init["c"], 1e-300)), np.log(max(init["d"] / scale, 1e-300))]]
    else:
        starts = []
        for b0, ld0, cfrac in itertools.product((0.2, 0.5, 1.0), (-6.0, -2.0, 0.0), (0.3, 0.8)):
            c0 = cfrac * y.min()
            starts.append([np.log(max(y.max() - c0, 1e-6)), b0, np.log(c0), ld0])
    margin = 1e-9 * (hi - lo)
    starts = [np.clip(x0, lo + margin, hi - margin) for x0 in starts]
    best = min((optimize.least_squares(resid, x0, bounds=(lo, hi), method="trf")
                for x0 in starts), key=lambda r: r.cost)
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


def fit_chinchilla(n, d, y, *, bootstrap: int = 100, seed: int = 0, starts: int = 8,
                   boot_starts: int = 2) -> Fit:
    """Hoffmann et al. (2022) approach 3: L(N, D) = E + A/N^alpha + B/D^beta.

    The whole grid of initialisations is scored; the solver refines its `starts`
    best points and the best result is kept. Each bootstrap resample is refitted
    from its own `boot_starts` best grid points and the full-data optimum. The
    fit's `identifiable`, `why` and `diagnostics` say whether the data determine
    the parameters (see the module docstring); if not, `ci` is empty.
    """
    n, y = _check(n, y, "fit_chinchilla")
    d, _ = _check(d, y, "fit_chinchilla")
    ln, ld, ly = np.log(n), np.log(d), np.log(y)
    centre = (float(ln.mean()), float(ld.mean()))
    ln, ld = ln - centre[0], ld - centre[1]
    bounds = _chinchilla_bounds(ly)
    grid = _chinchilla_grid(ly, centre)
    huber = _chinchilla_grid_huber(grid, ln, ld, ly)
    rng = np.random.default_rng(seed)
    resamples = [i for i in rng.integers(0, len(n), (bootstrap, len(n))) if len(np.unique(i)) >= 4]
    counts = np.array([np.bincount(i, minlength=len(n)) for i in resamples], float)
    with _one_blas_thread():
        inits = _best_rows(grid, huber.sum(axis=1), starts)
        thetas, losses = _chinchilla_lm(inits, ln, ld, ly, bounds, np.ones((len(inits), len(n))))
        theta = _chinchilla_polish(thetas[np.argmin(losses)], ln, ld, ly, bounds)
        draws = np.empty((0, 5))
        if len(counts):
            k = 1 + boot_starts
            firsts = np.argpartition(counts @ huber.T, boot_starts, axis=1)[:, :boot_starts]
            inits = np.concatenate([theta[None, None].repeat(len(counts), 0), grid[firsts]], 1)
            thetas, losses = _chinchilla_lm(inits.reshape(-1, 5), ln, ld, ly, bounds,
                                            counts.repeat(k, axis=0))
            best = np.argmin(losses.reshape(-1, k), axis=1)
            draws = thetas.reshape(-1, k, 5)[np.arange(len(counts)), best]
    ok, why, diag = _chinchilla_identifiability(theta, draws, n, d, ln, ld, ly, bounds)
    ci: dict[str, tuple[float, float]] = {}
    if len(draws):
        values = [_chinchilla_params(t, centre) for t in draws]
        ci = {k: (float(np.percentile([v[k] for v in values], 2.5)),
                  float(np.percentile([v[k] for v in values], 97.5))) for k in values[0]}
        stuck = [k for k, (lo, hi) in ci.items() if hi - lo <= 1e-9 * max(abs(hi), 1e-300)]
        if ok and len(draws) >= 10 and stuck:
            ok, why = False, (f"every bootstrap refit returned the same {', '.join(stuck)}: "
                              f"the resamples do not move it, so its interval has zero width")
        if not ok:
            diag["bootstrap_range95"] = {k: list(v) for k, v in ci.items()}
            ci = {}
    fit = Fit("chinchilla", _chinchilla_params(theta, centre), ci, 0.0, len(n), "N, D",
              identifiable=ok, why=why, diagnostics=diag)
    fit.r2 = _r2_log(y, fit.predict(n, d))
    return fit


def _saturating_degenerate(params, c, y) -> str:
    """Why a saturating fit describes no power law, or ''."""
    if params["b"] >= 0.99 * SATURATING_B_MAX:
        return (f"b ran to its bound {SATURATING_B_MAX:g}: the errors fall in one step, "
                "not as a power of compute")
    lp = np.log(_saturating(params, np.array([c.min(), c.max()])))
    scatter = float(np.sqrt(np.mean((np.log(y) - np.log(_saturating(params, c))) ** 2)))
    if lp[0] - lp[1] < 2 * scatter:
        return (f"the fitted error falls by {lp[0] - lp[1]:.3g} in log over the sampled "
                f"compute, less than twice the scatter ({scatter:.3g}): no trend to fit")
    return ""


def fit_saturating(c, y, *, bootstrap: int = 200, seed: int = 0, x_name: str = "C") -> Fit:
    """Zhai et al. (2022): L(C) = a (C + d)^(-b) + c, with a, b, c, d >= 0."""
    c, y = _check(c, y, "fit_saturating")
    params = _saturating_point(c, y)
    point = lambda i: _saturating_point(c[i], y[i], params)  # noqa: E731
    why = _saturating_degenerate(params, c, y)
    if why:
        fit = Fit("saturating", params, {}, 0.0, len(c), x_name, identifiable=False, why=why)
    else:
        fit = Fit("saturating", params, _bootstrap(point, len(c), bootstrap, seed), 0.0,
                  len(c), x_name)
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


# ----------------------------------------------------------------------------- isoFLOP profiles

@dataclasses.dataclass
class IsoFlopFit:
    """Hoffmann et al. (2022) approach 2: N_opt = k_N C^a and D_opt = k_D C^b, fitted to the
    minima of parabolas in log N fitted to log L at each compute budget.

    `budgets` holds one entry per budget: its compute (geometric mean of its runs), the
    runs (N, loss), and, where the parabola has a minimum, N_opt, D_opt = C / (6 N_opt),
    the loss there, the parabola, its 95% interval on N_opt, and whether it was used
    (a minimum outside the budget's sampled N is an extrapolation and is not).
    """

    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    budgets: list[dict[str, Any]]
    n: int
    why: str = ""  # why there are no intervals, when there are none
    diagnostics: dict[str, Any] = dataclasses.field(default_factory=dict)

    def n_opt(self, compute) -> np.ndarray:
        return self.params["k_N"] * np.asarray(compute, float) ** self.params["a"]

    def d_opt(self, compute) -> np.ndarray:
        return self.params["k_D"] * np.asarray(compute, float) ** self.params["b"]

    def to_json(self) -> dict[str, Any]:
        return {"form": "isoflop", "n": self.n, "params": self.params,
                "ci95": {k: list(v) for k, v in self.ci.items()}, "budgets": self.budgets,
                "published": PUBLISHED_EXPONENTS, "why_no_ci": self.why,
                "diagnostics": self.diagnostics}

    def summary(self) -> str:
        used = sum(b["used"] for b in self.budgets)
        lines = [(f"isoFLOP profiles (Hoffmann et al. 2022, approach 2) of {self.n} runs at "
                  f"{len(self.budgets)} compute budgets ({used} used)"),
                 f"  {'C':>10}  {'runs':>4}  {'N_opt':>10}  {'D_opt':>10}  {'loss at N_opt':>13}"]
        for b in self.budgets:
            if "N_opt" in b:
                row = (f"  {b['compute']:10.3g}  {b['runs']:4d}  {b['N_opt']:10.3g}  "
                       f"{b['D_opt']:10.3g}  {b['loss_opt']:13.4g}")
            else:
                row = f"  {b['compute']:10.3g}  {b['runs']:4d}  {'-':>10}  {'-':>10}  {'-':>13}"
            lines.append(row + (f"  not used: {b['note']}" if not b["used"] else ""))
        for k, axis in (("a", "N_opt"), ("b", "D_opt")):
            refs = ", ".join(f"{name.split(' (')[0]} {v[k]:.2f}" for name, v in
                             PUBLISHED_EXPONENTS.items())
            if k in self.ci:
                interval = f"95% CI [{self.ci[k][0]:.3f}, {self.ci[k][1]:.3f}]"
            else:
                interval = "no CI"
            lines.append(f"  {axis} ~ C^{k}: {k} = {self.params[k]:.3f}   {interval}   "
                         f"(published: {refs})")
        if self.why:
            lines.append(f"  NO INTERVALS: {self.why}")
        return "\n".join(lines)


def _budget_groups(compute, rtol: float) -> np.ndarray:
    """Budget index of each run: sorted by compute, a run opens a new budget when its
    compute exceeds the first of the current budget by more than a factor 1 + rtol."""
    lc = np.log(compute)
    groups = np.empty(len(lc), int)
    group, first = -1, -np.inf
    for i in np.argsort(lc, kind="stable"):
        if lc[i] > first + np.log1p(rtol):
            group, first = group + 1, lc[i]
        groups[i] = group
    return groups


def _isoflop_vertex(ln, ly) -> tuple[float, float, list[float]] | str:
    """Minimum of log L = c2 x^2 + c1 x + c0, x = ln N - mean ln N: (ln N_opt, log L there,
    [c2, c1, c0, mean ln N]), or why there is none."""
    if len(np.unique(ln)) < 3:
        return "fewer than 3 model sizes"
    centre = float(ln.mean())
    c2, c1, c0 = np.polyfit(ln - centre, ly, 2)
    if c2 <= 0:
        return "loss is not convex in log N (no minimum)"
    x = -c1 / (2 * c2)
    return centre + x, c0 - c1 * c1 / (4 * c2), [float(c2), float(c1), float(c0), centre]


def _parabola(coef, ln) -> np.ndarray:
    c2, c1, c0, centre = coef
    x = ln - centre
    return c2 * x * x + c1 * x + c0


def _power_in_c(lc, lx) -> tuple[float, float]:
    """x = k C^s by least squares in log-log: (s, log k)."""
    slope, intercept = np.polyfit(lc, lx, 1)
    return float(slope), float(intercept)


def fit_isoflop(n, d, y, compute=None, *, budget=None, rtol: float = 0.25, bootstrap: int = 200,
                seed: int = 0) -> IsoFlopFit:
    """Hoffmann et al. (2022) approach 2 (isoFLOP profiles).

    Runs are grouped by compute budget (the `budget` labels if given, else compute
    within a factor 1 + rtol; compute is 6ND unless given). Per budget, a parabola in
    log N fitted to log L gives N_opt and D_opt = C / (6 N_opt); then N_opt = k_N C^a,
    D_opt = k_D C^b by least squares in log-log over the budgets whose minimum lies
    inside their sampled N (at least 3). Intervals: a residual bootstrap, each budget's
    log losses redrawn around its parabola with the pooled residual scatter; none (and
    `why` says so) when the parabolas leave fewer than MIN_ISOFLOP_DOF residual degrees
    of freedom, e.g. 3 sizes per budget, which a parabola interpolates exactly.
    """
    n, y = _check(n, y, "fit_isoflop")
    d, _ = _check(d, y, "fit_isoflop")
    c = 6.0 * n * d if compute is None else _check(compute, y, "fit_isoflop")[0]
    groups = (_budget_groups(c, rtol) if budget is None
              else np.unique(np.asarray(budget), return_inverse=True)[1].ravel())
    ln, ly = np.log(n), np.log(y)
    budgets, members = [], []
    by_compute = np.argsort([np.log(c[groups == g]).mean() for g in range(groups.max() + 1)])
    for g in by_compute:
        idx = np.flatnonzero(groups == g)
        cg = float(np.exp(np.log(c[idx]).mean()))
        entry: dict[str, Any] = {"compute": cg, "runs": len(idx), "N": n[idx].tolist(),
                                 "loss": y[idx].tolist(), "used": False}
        vertex = _isoflop_vertex(ln[idx], ly[idx])
        if isinstance(vertex, str):
            entry["note"] = vertex
        else:
            x, lmin, parabola = vertex
            inside = ln[idx].min() <= x <= ln[idx].max()
            entry.update(N_opt=float(np.exp(x)), D_opt=float(cg / (6 * np.exp(x))),
                         loss_opt=float(np.exp(lmin)), parabola=parabola, used=bool(inside))
            if not inside:
                entry["note"] = "its minimum lies outside the sampled N (an extrapolation)"
        budgets.append(entry)
        members.append(idx)
    used = [i for i, b in enumerate(budgets) if b["used"]]
    if len(used) < 3:
        notes = "; ".join(f"C={b['compute']:.3g}: {b['note']}" for b in budgets if not b["used"])
        raise ValueError(f"fit_isoflop: needs >= 3 compute budgets with a minimum inside their "
                         f"sampled N, got {len(used)} of {len(budgets)}"
                         + (f" ({notes})" if notes else ""))
    lc = np.log([budgets[i]["compute"] for i in used])
    a, log_kn = _power_in_c(lc, np.log([budgets[i]["N_opt"] for i in used]))
    b, log_kd = _power_in_c(lc, np.log([budgets[i]["D_opt"] for i in used]))
    params = {"a": a, "b": b, "k_N": float(np.exp(log_kn)), "k_D": float(np.exp(log_kd))}

    # Residual (parametric) bootstrap: redraw each used budget's losses around its parabola
    # with the pooled residual scatter. Resampling runs instead fails at 3-5 sizes per
    # budget: most resamples repeat a size, have no vertex, and the few that survive are
    # the original runs, a zero-width "interval".
    resid = [ly[members[i]] - _parabola(budgets[i]["parabola"], ln[members[i]]) for i in used]
    dof = sum(len(r) - 3 for r in resid)
    sigma = float(np.sqrt(sum(float(r @ r) for r in resid) / dof)) if dof > 0 else 0.0
    diagnostics = {"residual_sigma_log_loss": sigma, "residual_dof": dof}
    why = ""
    if dof < MIN_ISOFLOP_DOF:
        why = (f"the parabolas leave {dof} residual degree(s) of freedom (runs minus 3 per "
               f"budget; {MIN_ISOFLOP_DOF} needed): the scatter of the losses, and so the "
               f"uncertainty of each N_opt, cannot be estimated; run more sizes per budget")
    ci: dict[str, tuple[float, float]] = {}
    if bootstrap and not why:
        rng = np.random.default_rng(seed)
        draws: list[dict[str, float]] = []
        n_opt_draws: dict[int, list[float]] = {i: [] for i in used}
        for _ in range(bootstrap):
            points = []
            for i in used:  # a redraw's minimum may fall outside the sampled N: kept, unbiased
                idx = members[i]
                fitted = _parabola(budgets[i]["parabola"], ln[idx])
                vertex = _isoflop_vertex(ln[idx], fitted + rng.normal(0.0, sigma, len(idx)))
                if not isinstance(vertex, str):
                    points.append((i, vertex[0]))
                    n_opt_draws[i].append(float(np.exp(vertex[0])))
            if len(points) < 3:
                continue
            lcb = np.log([budgets[i]["compute"] for i, _ in points])
            lnb = np.array([x for _, x in points])
            ab, log_knb = _power_in_c(lcb, lnb)
            bb, log_kdb = _power_in_c(lcb, lcb - np.log(6.0) - lnb)
            draws.append({"a": ab, "b": bb, "k_N": log_knb, "k_D": log_kdb})
        diagnostics["bootstrap_draws"] = len(draws)
        if draws:
            ci = {k: (float(np.percentile([v[k] for v in draws], 2.5)),
                      float(np.percentile([v[k] for v in draws], 97.5))) for k in params}
            for k in ("k_N", "k_D"):  # percentiles of log k: a wild redraw cannot overflow
                ci[k] = (float(np.exp(ci[k][0])), float(np.exp(ci[k][1])))
            for i, values in n_opt_draws.items():
                if values:
                    budgets[i]["N_opt_ci95"] = [float(np.percentile(values, 2.5)),
                                                float(np.percentile(values, 97.5))]
    return IsoFlopFit(params, ci, budgets, len(n), why, diagnostics)


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
    parser.add_argument("--form", choices=CLI_FORMS, default="power",
                        help="a law of loss, or 'isoflop': N_opt(C), D_opt(C) from the runs grouped "
                             "by compute budget (Hoffmann et al. approach 2)")
    parser.add_argument("--out", required=True, help="directory for fit.json and the plots")
    parser.add_argument("--params-col", default="params",
                        help="e.g. non_embedding_params to fit as Kaplan et al. did")
    parser.add_argument("--examples-col", default="examples_seen")
    parser.add_argument("--compute-col", default="compute_flops")
    parser.add_argument("--loss-col", default="final_eval_loss")
    parser.add_argument("--budget-col", default=None,
                        help="isoflop: the column naming each run's compute budget (default: "
                             "group runs whose compute is within a factor 1 + --budget-rtol)")
    parser.add_argument("--budget-rtol", type=float, default=0.25)
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
        if args.form == "isoflop":
            return _main_isoflop(args, df, y, y_col)
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
        frontier = None
        if fit.identifiable:
            frontier = compute_optimal(fit, np.geomspace(columns["compute"].min(),
                                                         columns["compute"].max() * 100, 50))
            report["frontier"] = {"N_opt_exponent": frontier["a"],
                                  "D_opt_exponent": frontier["b"],
                                  "compute": frontier["compute"].tolist(),
                                  "params": frontier["params"].tolist(),
                                  "examples": frontier["examples"].tolist()}
            print(f"compute-optimal frontier: N_opt ~ C^{frontier['a']:.3f}, "
                  f"D_opt ~ C^{frontier['b']:.3f}")
        else:
            report["frontier"] = None
            print("compute-optimal frontier: not drawn, the fit is unidentifiable")
        written += plots.plot_chinchilla(columns["params"], columns["examples"],
                                         columns["compute"], y, fit, frontier, args.out)
    else:
        written += plots.plot_law(columns["x"], y, fit, xlabel=cols[args.x], ylabel=y_col,
                                  stem=os.path.join(args.out, f"loss_vs_{args.x}"))
    return _write_report(args.out, report, written)


def _write_report(out: str, report: dict, written: list[str]) -> int:
    """fit.json beside the plots already `written`; prints what was written."""
    path = os.path.join(out, "fit.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print("wrote " + ", ".join([*written, path]))
    return 0


def _main_isoflop(args, df, y, y_col: str) -> int:
    """`vision-jax fit --form isoflop`: fit.json and isoflop.png/svg in --out."""
    from vision_jax.scaling import plots
    n = _column(df, args.params_col, "--params-col")
    d = _column(df, args.examples_col, "--examples-col")
    compute = (_column(df, args.compute_col, "--compute-col") if args.compute_col in df.columns
               else None)
    budget = None
    if args.budget_col is not None:
        if args.budget_col not in df.columns:
            raise ValueError(f"--budget-col={args.budget_col!r} is not a column of the results; "
                             f"columns: {list(df.columns)}")
        budget = df[args.budget_col].to_numpy()
    fit = fit_isoflop(n, d, y, compute, budget=budget, rtol=args.budget_rtol,
                      bootstrap=args.bootstrap, seed=args.seed)
    print(fit.summary())
    os.makedirs(args.out, exist_ok=True)
    report = {"results": os.path.abspath(args.results), "loss_column": y_col,
              "compute": args.compute_col if compute is not None else "6 N D", **fit.to_json()}
    written = plots.plot_isoflop(fit, stem=os.path.join(args.out, "isoflop"))
    return _write_report(args.out, report, written)
