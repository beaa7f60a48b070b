"""Plots of scaling fits (matplotlib, Agg backend), each saved as PNG and SVG.

  plot_law         loss vs one x (N, D or C) on log-log axes with the fitted law
  plot_chinchilla  loss vs N, D and C; isoFLOP curves; the compute-optimal frontier
  plot_law_groups  loss vs x for several groups of runs (e.g. per data size), each with its fit
  plot_chinchilla_groups  loss vs N with one curve of a joint L(N, D) fit per value of D
  plot_isoflop     isoFLOP profiles: loss vs N per budget with its parabola; N_opt, D_opt vs C
  plot_curves      train and eval error against step for every run of a sweep
  plot_versus      final metrics against one swept value (e.g. test error vs width)

Every function returns the paths it wrote.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, stem: str) -> list[str]:
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    paths = [f"{stem}.png", f"{stem}.svg"]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def _label(fit) -> str:
    p, ci = fit.params, fit.ci
    exps = [k for k in ("alpha", "beta", "b") if k in p]
    parts = []
    for k in exps:
        s = f"{k}={p[k]:.3f}"
        if k in ci:
            s += f" [{ci[k][0]:.3f}, {ci[k][1]:.3f}]"
        parts.append(s)
    return f"{fit.form}: " + ", ".join(parts) + f", R²={fit.r2:.3f}"


def plot_law(x, y, fit, *, xlabel: str, ylabel: str, stem: str) -> list[str]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    grid = np.geomspace(x.min() / 2, x.max() * 4, 200)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(x, y, s=18, color="k", zorder=3, label="runs")
    ax.plot(grid, fit.predict(grid), color="C0", label=_label(fit))
    if "E" in fit.params:
        ax.axhline(fit.params["E"], color="C0", ls=":", lw=1, label=f"E={fit.params['E']:.3g}")
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, stem)


def _unidentifiable(fit) -> str:
    """A title line for a fit whose parameters the data do not determine, else ''."""
    if getattr(fit, "identifiable", None) is False:
        return "UNIDENTIFIABLE, no CIs (its 'why' is in the JSON)"
    return ""


def plot_chinchilla(n, d, c, y, fit, frontier: Mapping[str, Any] | None, out: str) -> list[str]:
    """Loss vs N/D/C, isoFLOP curves of the fit with the runs, and N_opt(C), D_opt(C).
    Without a frontier (an unidentifiable fit) only the first figure is drawn."""
    n, d, c, y = (np.asarray(v, float) for v in (n, d, c, y))
    written = []
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    pred = fit.predict(n, d)
    for ax, x, name in zip(axes, (n, d, c), ("parameters N", "examples D", "compute C (FLOPs)")):
        sc = ax.scatter(x, y, c=np.log10(c), s=18, cmap="viridis", zorder=3)
        ax.scatter(x, pred, marker="x", s=14, color="C3", label="fit at each run")
        ax.set(xscale="log", yscale="log", xlabel=name)
        ax.grid(True, which="both", alpha=0.3)
    if frontier is not None:
        axes[2].plot(frontier["compute"], frontier["loss"], color="C1", label="compute-optimal")
    axes[0].set_ylabel("loss")
    warn = _unidentifiable(fit)
    axes[0].set_title(_label(fit) + (f"\n{warn}" if warn else ""), fontsize=8, loc="left")
    axes[2].legend(fontsize=7)
    fig.colorbar(sc, ax=axes, label="log10 C")
    written += _save(fig, os.path.join(out, "loss_vs_N_D_C"))
    if frontier is None:
        return written

    # isoFLOP: at fixed C = 6ND, loss along N (Hoffmann et al. approach 2's view of the fit)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    budgets = np.geomspace(c.min(), c.max(), 5)
    for i, budget in enumerate(budgets):
        ns = np.geomspace(n.min() / 10, n.max() * 10, 200)
        ax.plot(ns, fit.predict(ns, budget / (6 * ns)), color=f"C{i}", label=f"C={budget:.2g}")
        opt = np.interp(np.log(budget), np.log(frontier["compute"]), np.log(frontier["params"]))
        ax.axvline(np.exp(opt), color=f"C{i}", ls=":", lw=0.8)
    ax.scatter(n, y, c="k", s=10, zorder=3, label="runs")
    ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="loss", title="isoFLOP curves")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    written += _save(fig, os.path.join(out, "isoflops"))

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(frontier["compute"], frontier["params"], label=f"N_opt ∝ C^{frontier['a']:.3f}")
    ax.plot(frontier["compute"], frontier["examples"], label=f"D_opt ∝ C^{frontier['b']:.3f}")
    ax.scatter(c, n, s=10, color="C0", alpha=0.5)
    ax.scatter(c, d, s=10, color="C1", alpha=0.5)
    ax.set(xscale="log", yscale="log", xlabel="compute C = 6ND (FLOPs)",
           ylabel="N or D", title="compute-optimal frontier")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    written += _save(fig, os.path.join(out, "frontier"))
    return written


def plot_law_groups(series, *, xlabel: str, ylabel: str, stem: str) -> list[str]:
    """Log-log loss vs x, one colour per group: series = [{label, x, y, fit or None}]."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for i, s in enumerate(series):
        x, y = np.asarray(s["x"], float), np.asarray(s["y"], float)
        ax.scatter(x, y, s=20, color=f"C{i}", zorder=3, label=s["label"] or "runs")
        if s.get("fit") is not None:
            grid = np.geomspace(x.min() / 1.5, x.max() * 1.5, 100)
            ax.plot(grid, s["fit"].predict(grid), color=f"C{i}", lw=1.2,
                    label=_label(s["fit"]))
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=6.5)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, stem)


def plot_chinchilla_groups(n, d, y, fit, *, xlabel: str, ylabel: str, dlabel: str,
                           stem: str) -> list[str]:
    """Log-log loss vs N, one colour per value of D: the runs, and the joint
    fit's L(N, D) along N at that D; the fitted E as a dotted line when it lies
    near the runs. The title gives every parameter with its 95% bootstrap interval."""
    n, d, y = (np.asarray(v, float) for v in (n, d, y))
    grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
    fig, ax = plt.subplots(figsize=(6, 4.4))
    for i, dv in enumerate(np.unique(d)):
        keep = d == dv
        ax.scatter(n[keep], y[keep], s=20, color=f"C{i}", zorder=3, label=f"{dlabel}={dv:g}")
        ax.plot(grid, fit.predict(grid, np.full_like(grid, dv)), color=f"C{i}", lw=1.2)
    if fit.params["E"] >= y.min() / 3:  # else far below the runs: its value is in the title
        ax.axhline(fit.params["E"], color="0.4", ls=":", lw=1, label="E (fit)")
    lines = []
    for k in ("E", "A", "alpha", "B", "beta"):
        lo, hi = fit.ci.get(k, (float("nan"), float("nan")))
        lines.append(f"{k}={fit.params[k]:.3g} [{lo:.3g}, {hi:.3g}]")
    warn = _unidentifiable(fit)
    if warn:
        lines = [f"{k}={fit.params[k]:.3g}" for k in ("E", "A", "alpha", "B", "beta")]
    ax.set_title(f"L = E + A/N^alpha + B/D^beta, {warn or '95% CI'}:\n" + ", ".join(lines[:3])
                 + ",\n" + ", ".join(lines[3:]) + f", R²={fit.r2:.3f}", fontsize=7, loc="left")
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, stem)


def plot_isoflop(fit, *, stem: str) -> list[str]:
    """Hoffmann et al. 2022 fig. 3 for a `fit.IsoFlopFit`: left, loss vs N per compute
    budget with its parabola in log N and the minimum; right, N_opt (with its bootstrap
    interval) and D_opt vs C, the fitted power laws, and lines of the published exponents
    through the fit at the central budget, for comparison."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    used = [b for b in fit.budgets if b["used"]]
    for i, b in enumerate(fit.budgets):
        col = f"C{i % 10}"
        ns, ys = np.asarray(b["N"], float), np.asarray(b["loss"], float)
        left.scatter(ns, ys, s=16, color=col, zorder=3, alpha=1.0 if b["used"] else 0.4,
                     label=f"C={b['compute']:.2g}" + ("" if b["used"] else " (not used)"))
        if "parabola" in b:
            c2, c1, c0, centre = b["parabola"]
            x = np.linspace(np.log(ns.min()) - 0.2, np.log(ns.max()) + 0.2, 100) - centre
            left.plot(np.exp(x + centre), np.exp(c2 * x * x + c1 * x + c0), color=col, lw=1)
            left.scatter([b["N_opt"]], [b["loss_opt"]], marker="*", s=90, color=col,
                         edgecolor="k", zorder=4)
    left.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="loss",
             title="isoFLOP profiles (parabola in log N per budget)")
    left.legend(fontsize=6.5)
    left.grid(True, which="both", alpha=0.3)

    c = np.array([b["compute"] for b in used])
    grid = np.geomspace(c.min() / 2, c.max() * 2, 50)
    mid = np.exp(np.log(c).mean())
    for key, axis, col in (("a", "N_opt", "C0"), ("b", "D_opt", "C1")):
        vals = np.array([b[axis] for b in used])
        err = None
        if axis == "N_opt" and all("N_opt_ci95" in b for b in used):
            lo, hi = np.array([b["N_opt_ci95"] for b in used]).T
            err = np.clip(np.stack([vals - lo, hi - vals]), 0, None)
        right.errorbar(c, vals, yerr=err, fmt="o", ms=4, color=col, capsize=2)
        lo, hi = fit.ci.get(key, (float("nan"), float("nan")))
        pred = fit.n_opt(grid) if key == "a" else fit.d_opt(grid)
        right.plot(grid, pred, color=col,
                   label=f"{axis} ∝ C^{fit.params[key]:.3f} [{lo:.3f}, {hi:.3f}]")
        at_mid = fit.n_opt(mid) if key == "a" else fit.d_opt(mid)
        for (name, ref), ls in zip(fit.to_json()["published"].items(), (":", "-.")):
            right.plot(grid, at_mid * (grid / mid) ** ref[key], color=col, ls=ls, lw=0.8,
                       label=f"{name.split(' (')[0]}: C^{ref[key]:.2f}")
    right.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="N_opt or D_opt",
              title="compute-optimal N and D")
    right.legend(fontsize=6.5)
    right.grid(True, which="both", alpha=0.3)
    return _save(fig, stem)


def plot_curves(df, *, hue: str | None, stem: str) -> list[str]:
    """Train (dashed) and eval (solid) error against step, one colour per run.

    `df` is a sweep's results table (vision_jax/scaling/store.py), whose
    train_curve and eval_curve hold [step, loss, error] rows; runs are
    labelled by their `hue` column, else by trial name. The gap between the
    two curves of a run is its generalisation gap: with random labels, train
    error falls to zero while eval error stays at chance (Zhang et al. 2017).
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (_, r) in enumerate(df.iterrows()):
        label = f"{hue.split('.')[-1]}={r[hue]}" if hue else r["trial"]
        train = np.asarray(r["train_curve"], float).reshape(-1, 3)
        evals = np.asarray(r["eval_curve"], float).reshape(-1, 3)
        ax.plot(train[:, 0], train[:, 2], color=f"C{i}", ls="--", lw=1, label=f"{label} train")
        ax.plot(evals[:, 0], evals[:, 2], color=f"C{i}", marker="o", ms=3, lw=1.5,
                label=f"{label} test")
    ax.set(xlabel="step", ylabel="error (1 - accuracy)", ylim=(-0.02, 1.02))
    ax.legend(fontsize=6.5, ncol=2)
    ax.grid(True, alpha=0.3)
    return _save(fig, stem)


def plot_versus(x, ys: Mapping[str, Any], *, xlabel: str, stem: str, hue=None,
                logx: bool = True, marks: Mapping[str, float] | None = None) -> list[str]:
    """Each column of `ys` against x (sorted), one line per `hue` value if given;
    `marks` {label: x} draws labelled vertical lines (e.g. an interpolation threshold)."""
    x = np.asarray(x, float)
    groups = [None] if hue is None else list(dict.fromkeys(np.asarray(hue)))
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for gi, g in enumerate(groups):
        keep = np.ones(len(x), bool) if g is None else np.asarray(hue) == g
        order = np.argsort(x[keep])
        for yi, (name, y) in enumerate(ys.items()):
            label = name if g is None else f"{name}, {g}"
            ax.plot(x[keep][order], np.asarray(y, float)[keep][order], marker="o", ms=4,
                    color=f"C{gi * len(ys) + yi}", ls="-" if yi == 0 else "--", label=label)
    for label, at in (marks or {}).items():
        ax.axvline(at, color="0.4", ls=":", lw=1.2, label=f"{label} ({at:g})")
    ax.set(xlabel=xlabel, xscale="log" if logx else "linear")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, stem)
