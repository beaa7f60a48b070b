"""Three scaling analyses of one language-model sweep (configs/scaling/lm.py).

The runs of an isoFLOP design (several model sizes at each of several compute
budgets C, each run trained on D = C / (6 N) tokens) serve all three:

  kaplan     L(N) = (N_c / N)^alpha_N (Kaplan et al. 2020, eq. 1.1), N the
             non-embedding parameters. Kaplan's L(N) is the loss of a model
             trained to convergence; in an isoFLOP design the large models
             see few tokens, so the loss of each size's longest run is not it
             (it rises with N when the big models are starved). As Kaplan et
             al. did for runs of finite data, their joint law (eq. 1.5)
                 L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D
             is fitted to every run (least squares on log L, 95% bootstrap
             intervals over runs), and L(N) is its D -> infinity limit.
             Published (their Table 2): alpha_N = 0.076, alpha_D = 0.103
             (BPE tokens of WebText2; eq. 1.1 alone: alpha_N = 0.076).
  isoflop    Hoffmann et al. (2022) approach 2: a parabola in log N per
             budget, N_opt ~ C^a, D_opt ~ C^b (vision_jax.scaling.fit.fit_isoflop).
             Published: a = 0.49, b = 0.51 (Chinchilla), a = 0.73 (Kaplan).
  chinchilla Hoffmann et al. approach 3: L(N, D) = E + A/N^alpha + B/D^beta
             over all runs, with its identifiability verdict; where the fit is
             identifiable, its compute-optimal exponents a = beta/(alpha+beta),
             b = alpha/(alpha+beta).

N is the non-embedding parameter count and D the tokens seen (examples seen x
seq_len; one example is one window), and C = 6 N D throughout, so that the
three analyses share their axes.

It runs as a 'custom' plots entry of a sweep config:

    c.plots = [dict(kind="custom", function="vision_jax.scaling.lm_laws:analyse",
                    seq_len=64)]

and writes <sweepdir>/plots/lm_kaplan.png, lm_isoflop.png, lm_chinchilla/
loss_vs_N_D_C.png (+ isoflops.png, frontier.png when identifiable), and
lm_laws.txt, the three summaries as text; its table goes into fits.json.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

# Kaplan et al. 2020, Table 2: the fit of eq. 1.5 (and eq. 1.1's alpha_N).
KAPLAN_PUBLISHED = {"alpha_N": 0.076, "alpha_D": 0.103, "N_c": 6.4e13, "D_c": 1.8e13}


def _plain(x):
    """numpy scalars and arrays inside a fit's JSON as Python values (json.dump takes them)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x


def columns(df, *, seq_len: int, params: str = "non_embedding_params",
            loss: str = "final_eval_loss", budget: str | None = "lm.budget_flops"
            ) -> dict[str, np.ndarray]:
    """N, D (tokens), C = 6ND, L and the budget label of every finished run."""
    n = df[params].to_numpy(float)
    d = df["examples_seen"].to_numpy(float) * seq_len
    out = {"N": n, "D": d, "C": 6.0 * n * d, "L": df[loss].to_numpy(float)}
    if budget and budget in df.columns:
        out["budget"] = df[budget].to_numpy(float)
    return out


# ----------------------------------------------------------------------------- Kaplan's L(N, D)

@dataclasses.dataclass
class KaplanFit:
    """Kaplan et al. (2020) eq. 1.5 fitted to runs: point estimates, 95% bootstrap intervals,
    R^2 on log L."""

    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    r2: float
    n: int

    def predict(self, n, d=np.inf) -> np.ndarray:
        p = self.params
        n, d = np.asarray(n, float), np.asarray(d, float)
        return ((p["N_c"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / d) ** p["alpha_D"]

    def predict_n(self, n) -> np.ndarray:
        """L(N) = (N_c / N)^alpha_N: the law at D -> infinity (eq. 1.1)."""
        return (self.params["N_c"] / np.asarray(n, float)) ** self.params["alpha_N"]

    def to_json(self) -> dict[str, Any]:
        return {"form": "kaplan L(N, D), eq. 1.5", "n": self.n, "r2": self.r2,
                "params": self.params, "ci95": {k: list(v) for k, v in self.ci.items()},
                "published": KAPLAN_PUBLISHED}

    def summary(self) -> str:
        lines = [(f"Kaplan L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D on {self.n} "
                  f"runs, R^2 (log loss) = {self.r2:.4f}")]
        for k, v in self.params.items():
            lo, hi = self.ci.get(k, (float("nan"), float("nan")))
            pub = KAPLAN_PUBLISHED[k]
            lines.append(f"  {k:<8} = {v:.4g}   95% CI [{lo:.4g}, {hi:.4g}]   (published {pub:g})")
        return "\n".join(lines)


def _kaplan_residuals(theta, x, z, ly):
    """log L = alpha_D logaddexp(u - (alpha_N/alpha_D) x, v - z), x and z centred logs."""
    alpha_n, alpha_d, u, v = theta
    return alpha_d * np.logaddexp(u - (alpha_n / alpha_d) * x, v - z) - ly


def _kaplan_theta(x, z, ly, starts) -> np.ndarray:
    from scipy import optimize
    bounds = ([1e-4, 1e-4, -200.0, -200.0], [5.0, 5.0, 200.0, 200.0])
    best = None
    for s in starts:
        r = optimize.least_squares(_kaplan_residuals, s, args=(x, z, ly), bounds=bounds,
                                   method="trf")
        if best is None or r.cost < best.cost:
            best = r
    return best.x


def _kaplan_starts(ly) -> list[list[float]]:
    starts = []
    for a_n in (0.03, 0.1, 0.3):
        for a_d in (0.03, 0.1, 0.3):
            s = float(np.mean(ly)) / a_d
            for du in (-3.0, -0.7, 0.0):
                for dv in (-3.0, -0.7, 0.0):
                    starts.append([a_n, a_d, s + du, s + dv])
    return starts


def fit_kaplan(n, d, y, *, bootstrap: int = 200, seed: int = 0) -> KaplanFit:
    """Kaplan et al. (2020) eq. 1.5 by least squares on log L from a grid of starts; each
    bootstrap resample of the runs is refitted from the full-data optimum."""
    n, d, y = (np.asarray(v, float) for v in (n, d, y))
    mn, md = float(np.log(n).mean()), float(np.log(d).mean())
    x, z, ly = np.log(n) - mn, np.log(d) - md, np.log(y)

    def params(theta) -> dict[str, float]:
        a_n, a_d, u, v = theta
        return {"alpha_N": float(a_n), "alpha_D": float(a_d),
                "N_c": float(np.exp(mn + u * a_d / a_n)), "D_c": float(np.exp(md + v))}

    theta = _kaplan_theta(x, z, ly, _kaplan_starts(ly))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(bootstrap):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(n[i])) < 2 or len(np.unique(d[i])) < 2:
            continue
        draws.append(params(_kaplan_theta(x[i], z[i], ly[i], [theta])))
    ci = {}
    if draws:
        # N_c, D_c span orders of magnitude: percentiles of their logs, then back
        for k in draws[0]:
            vals = np.array([p[k] for p in draws])
            ci[k] = (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5)))
    fit = KaplanFit(params(theta), ci, 0.0, len(y))
    pred = np.log(fit.predict(n, d))
    fit.r2 = float(1.0 - np.sum((ly - pred) ** 2) / np.sum((ly - ly.mean()) ** 2))
    return fit


def plot_kaplan(n, d, y, fit: KaplanFit, *, xlabel: str, ylabel: str, stem: str) -> list[str]:
    """Loss vs N, runs coloured by tokens D, the fitted L(N, D) at each run's D (x), and
    L(N) = (N_c/N)^alpha_N, the D -> infinity limit."""
    from vision_jax.scaling import plots
    plt = plots.plt
    n, d, y = (np.asarray(v, float) for v in (n, d, y))
    fig, ax = plt.subplots(figsize=(6, 4.4))
    sc = ax.scatter(n, y, c=np.log10(d), s=22, cmap="viridis", zorder=3, label="runs")
    ax.scatter(n, fit.predict(n, d), marker="x", s=16, color="C3", label="L(N, D) at each run")
    grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
    p, ci = fit.params, fit.ci
    lo, hi = ci.get("alpha_N", (float("nan"), float("nan")))
    ax.plot(grid, fit.predict_n(grid), color="C0",
            label=f"L(N) = (N_c/N)^alpha_N, alpha_N = {p['alpha_N']:.3f} [{lo:.3f}, {hi:.3f}]")
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel,
           title=f"Kaplan et al. eq. 1.5 fit, R² = {fit.r2:.3f} (published alpha_N = 0.076)")
    ax.title.set_fontsize(8)
    fig.colorbar(sc, ax=ax, label="log10 tokens D")
    ax.legend(fontsize=6.5)
    ax.grid(True, which="both", alpha=0.3)
    return plots._save(fig, stem)


def analyse(df, *, out: str, seq_len: int, params: str = "non_embedding_params",
            loss: str = "final_eval_loss", budget: str | None = "lm.budget_flops",
            bootstrap: int = 200, name: str = "lm_laws") -> tuple[list[str], dict[str, Any]]:
    """The three fits and their plots; returns (paths written, table for fits.json)."""
    from vision_jax.scaling import fit as fit_lib
    from vision_jax.scaling import plots

    cols = columns(df, seq_len=seq_len, params=params, loss=loss, budget=budget)
    n, d, c, y = cols["N"], cols["D"], cols["C"], cols["L"]
    table: dict[str, Any] = {"name": name, "runs": len(y), "N": params,
                             "D": f"tokens = examples_seen x {seq_len}", "C": "6 N D",
                             "loss": loss}
    paths: list[str] = []
    text: list[str] = [f"{len(y)} runs; N = {params}, D = tokens, C = 6ND, L = {loss} (nats)"]

    # Kaplan: eq. 1.5 over every run; L(N) is its D -> infinity limit.
    if len(np.unique(n)) >= 3 and len(np.unique(d)) >= 2 and len(y) >= 5:
        kaplan = fit_kaplan(n, d, y, bootstrap=bootstrap)
        table["kaplan"] = kaplan.to_json()
        text.append(kaplan.summary())
        paths += plot_kaplan(n, d, y, kaplan, xlabel=f"non-embedding parameters N ({params})",
                             ylabel=f"{loss} (nats/byte)", stem=os.path.join(out, "lm_kaplan"))
    else:
        table["kaplan"] = {"error": "needs >= 5 runs over >= 3 sizes and >= 2 token counts"}
        text.append("Kaplan L(N, D): not fitted: " + table["kaplan"]["error"])

    # Approach 2: isoFLOP profiles.
    try:
        iso = fit_lib.fit_isoflop(n, d, y, c, budget=cols.get("budget"), bootstrap=bootstrap)
        table["isoflop"] = iso.to_json()
        text.append(iso.summary())
        paths += plots.plot_isoflop(iso, stem=os.path.join(out, "lm_isoflop"))
    except ValueError as e:
        table["isoflop"] = {"error": str(e)}
        text.append(f"isoFLOP (approach 2): not fitted: {e}")

    # Approach 3: the parametric fit over every run.
    if len(np.unique(n)) >= 2 and len(np.unique(d)) >= 2 and len(y) >= 5:
        law = fit_lib.fit_chinchilla(n, d, y, bootstrap=bootstrap)
        entry = law.to_json()
        frontier = None
        if law.identifiable:
            frontier = fit_lib.compute_optimal(law, np.geomspace(c.min(), c.max() * 100, 50))
            entry["frontier"] = {"a": float(frontier["a"]), "b": float(frontier["b"])}
        text.append("Chinchilla approach 3: " + law.summary())
        if frontier is not None:
            text.append(f"  compute-optimal: N_opt ~ C^{frontier['a']:.3f}, "
                        f"D_opt ~ C^{frontier['b']:.3f}")
        table["chinchilla"] = entry
        paths += plots.plot_chinchilla(n, d, c, y, law, frontier,
                                       os.path.join(out, "lm_chinchilla"))
    else:
        table["chinchilla"] = {"error": "needs >= 5 runs over >= 2 sizes and >= 2 token counts"}
        text.append("Chinchilla approach 3: not fitted: " + table["chinchilla"]["error"])

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}.txt")
    with open(path, "w") as f:
        f.write("\n".join(text) + "\n")
    print("[lm_laws] " + "\n[lm_laws] ".join("\n".join(text).split("\n")))
    return paths + [path], _plain(table)
