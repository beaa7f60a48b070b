"""Error against compute per model shape, the compute-optimal frontier, and whether it
prefers width or depth (Zhai et al. 2022, "Scaling Vision Transformers", Sec. 3.1, Fig. 2).

Every trial of a sweep over model shape (width, depth) and examples seen is one
point (C, E): training compute C (the store's compute_flops, examples seen x
train FLOPs per example) and final test error E. Per shape, the saturating
form E = a (C + d)^-b + c (Zhai et al. eq. 1; vision_jax.scaling.fit's
'saturating' form, fitted to log E with bootstrap intervals) is fitted to its
runs. The compute-optimal frontier is the lower envelope of those curves, each
evaluated only over the compute its own runs span (no shape is credited with
an extrapolation), and the empirical frontier the runs that no cheaper run
beats. The frontier "prefers" the shape it follows at the largest compute
that at least two shapes reach (beyond that a shape is on the envelope only
because nothing else ran that far);
pairs of shapes where one is wider and shallower than the other are compared
at their largest common compute (fitted errors), which says whether spending
parameters on width or on depth paid off here.

The fit is checked the way a scaling law is meant to be used: per shape, the
`holdout` largest-compute runs are held out, the form is refitted to the
smaller ones, and its prediction of the held-out error is compared with the
measurement (absolute error in points of error rate, and relative error).

Used by configs/scaling/vit.py as a sweep 'custom' analysis:

    dict(kind='custom', function='vision_jax.scaling.frontier:analyse',
         shape=('model.width', 'model.depth'))
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

from vision_jax.scaling import fit as fit_lib

SHAPE_COLUMNS = ("model.width", "model.depth")


def shape_label(shape: Sequence[Any], columns: Sequence[str] = SHAPE_COLUMNS) -> str:
    """('model.width', 'model.depth'), (64, 2) -> 'width=64,depth=2'."""
    return ",".join(f"{c.split('.')[-1]}={v}" for c, v in zip(columns, shape))


def _groups(df, shape: Sequence[str], compute: str, error: str
            ) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """{shape values: (compute, error)} with each shape's runs sorted by compute."""
    for column in (*shape, compute, error):
        if column not in df.columns:
            raise ValueError(f"frontier: no column {column!r} in the results; columns: "
                             f"{list(df.columns)}")
    out: dict[tuple, tuple[list, list]] = {}
    for _, row in df.iterrows():
        key = tuple(int(row[c]) if float(row[c]).is_integer() else row[c] for c in shape)
        out.setdefault(key, ([], []))
        out[key][0].append(float(row[compute]))
        out[key][1].append(float(row[error]))
    result = {}
    for key, (c, e) in out.items():
        order = np.argsort(c, kind="stable")
        result[key] = (np.asarray(c)[order], np.asarray(e)[order])
    return result


def _fit(c: np.ndarray, e: np.ndarray, *, bootstrap: int, seed: int,
         floor: float) -> tuple[fit_lib.Fit | None, str]:
    """A saturating fit, or None and why not."""
    if len(np.unique(c)) < 3:
        return None, f"{len(np.unique(c))} compute value(s); the fit needs >= 3"
    try:
        with np.errstate(all="ignore"):  # a degenerate fit is reported below, not warned about
            law = fit_lib.fit_saturating(c, np.maximum(e, floor), bootstrap=bootstrap,
                                         seed=seed, x_name="compute")
    except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
        return None, f"fit failed: {err}"
    with np.errstate(all="ignore"):
        finite = (all(np.isfinite(v) for v in law.params.values())
                  and np.all(np.isfinite(law.predict(c))) and np.isfinite(law.r2))
    if not finite:
        # E.g. errors flat at chance level: the optimiser runs off to a -> inf, b -> inf.
        return None, ("degenerate fit (non-finite parameters or predictions: "
                      + ", ".join(f"{k}={v:.3g}" for k, v in law.params.items()) + ")")
    if law.identifiable is False:
        return None, f"degenerate fit: {law.why}"
    return law, ""


def pareto(c: Sequence[float], e: Sequence[float]) -> list[int]:
    """Indices of the runs no cheaper-or-equal run beats (the empirical frontier), by compute."""
    c, e = np.asarray(c, float), np.asarray(e, float)
    best, keep = np.inf, []
    for i in np.lexsort((e, c)):
        if e[i] < best:
            keep.append(int(i))
            best = e[i]
    return keep


def envelope(curves: Mapping[Any, tuple[Any, float, float]], grid: np.ndarray
             ) -> tuple[np.ndarray, list[Any | None], np.ndarray]:
    """Lower envelope of per-shape curves: {shape: (predict, c_min, c_max)} ->
    (error on `grid`, the shape attaining it at each grid point (None where no
    shape's range covers that compute), how many shapes cover each point)."""
    best = np.full(len(grid), np.inf)
    who: list[Any | None] = [None] * len(grid)
    covering = np.zeros(len(grid), int)
    for key, (predict, lo, hi) in curves.items():
        inside = (grid >= lo * (1 - 1e-9)) & (grid <= hi * (1 + 1e-9))
        covering += inside
        values = np.where(inside, predict(grid), np.inf)
        for i in np.flatnonzero(values < best):
            best[i], who[i] = values[i], key
    return best, who, covering


def segments(grid: np.ndarray, who: Sequence[Any | None],
             covering: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Runs of the same optimal shape along the grid: [{shape, from, to, contested}, ...];
    `contested` is False where that shape is the only one whose runs reach that compute
    (it is on the envelope there by default, not by beating anything)."""
    covering = [2] * len(grid) if covering is None else covering
    out: list[dict[str, Any]] = []
    for c, key, n in zip(grid, who, covering):
        if key is None:
            continue
        contested = bool(n >= 2)
        if out and out[-1]["shape"] == key and out[-1]["contested"] == contested:
            out[-1]["to"] = float(c)
        else:
            out.append({"shape": key, "from": float(c), "to": float(c), "contested": contested})
    return out


def width_vs_depth(curves: Mapping[tuple, tuple[Any, float, float]]) -> list[dict[str, Any]]:
    """Every pair of shapes (width, depth, ...) where one is wider and shallower than the
    other, compared by fitted error at their largest common compute."""
    out = []
    for a, b in itertools.permutations(curves, 2):
        if not (a[0] > b[0] and a[1] < b[1]):
            continue
        (pa, lo_a, hi_a), (pb, lo_b, hi_b) = curves[a], curves[b]
        c = min(hi_a, hi_b)
        if c < max(lo_a, lo_b):
            continue  # no common compute: nothing to compare without extrapolating
        ea, eb = float(pa(np.array([c]))[0]), float(pb(np.array([c]))[0])
        if not (np.isfinite(ea) and np.isfinite(eb)):
            continue
        out.append({"wider": list(a), "deeper": list(b), "compute": float(c),
                    "wider_error": ea, "deeper_error": eb,
                    "winner": "width" if ea < eb else "depth"})
    return out


def holdout_check(c: np.ndarray, e: np.ndarray, *, holdout: int = 1, floor: float = 1e-4
                  ) -> dict[str, Any]:
    """Fit on all but the `holdout` largest-compute runs, predict those."""
    if len(np.unique(c[:-holdout])) < 3:
        return {"skipped": f"{len(c)} runs leave fewer than 3 compute values after holding "
                           f"out {holdout}"}
    fit, why = _fit(c[:-holdout], e[:-holdout], bootstrap=0, seed=0, floor=floor)
    if fit is None:
        return {"skipped": why}
    pred = fit.predict(c[-holdout:])
    actual = e[-holdout:]
    return {"fitted_on": int(len(c) - holdout), "compute": c[-holdout:].tolist(),
            "predicted": pred.tolist(), "actual": actual.tolist(),
            "abs_error": np.abs(pred - actual).tolist(),
            "rel_error": (np.abs(pred - actual) / np.maximum(actual, floor)).tolist(),
            "fit_on_smaller": fit.params}


def compare_shapes(df, *, shape: Sequence[str] = SHAPE_COLUMNS, compute: str = "compute_flops",
                   error: str = "final_eval_error", holdout: int = 1, bootstrap: int = 200,
                   seed: int = 0, floor: float = 1e-4, grid_points: int = 200) -> dict[str, Any]:
    """The table (see the module docstring) of a results DataFrame.

    `floor` keeps a zero error (a perfect run) fittable on a log scale.
    """
    shape = list(shape)
    groups = _groups(df, shape, compute, error)
    fits: dict[tuple, dict[str, Any]] = {}
    curves: dict[tuple, tuple[Any, float, float]] = {}
    for key, (c, e) in sorted(groups.items()):
        law, why = _fit(c, e, bootstrap=bootstrap, seed=seed, floor=floor)
        entry: dict[str, Any] = {"shape": list(key), "label": shape_label(key, shape),
                                 "compute": c.tolist(), "error": e.tolist()}
        if law is None:
            entry["fit"] = None
            entry["why"] = why
        else:
            entry["fit"] = law.to_json()
            curves[key] = (law.predict, float(c.min()), float(c.max()))
        entry["extrapolation"] = holdout_check(c, e, holdout=holdout, floor=floor)
        fits[key] = entry
    all_c = np.concatenate([c for c, _ in groups.values()])
    all_e = np.concatenate([e for _, e in groups.values()])
    keys = [k for k, (c, _) in groups.items() for _ in c]
    grid = np.geomspace(all_c.min(), all_c.max(), grid_points)
    best, who, covering = envelope(curves, grid)
    segs = segments(grid, who, covering)
    front = pareto(all_c, all_e)
    pairs = width_vs_depth(curves) if len(shape) >= 2 else []
    votes = {"width": sum(p["winner"] == "width" for p in pairs),
             "depth": sum(p["winner"] == "depth" for p in pairs)}
    # The preference is read where shapes compete: the last contested segment.
    contested = [s for s in segs if s["contested"]]
    preferred = (contested or segs)[-1]["shape"] if segs else None
    checks = [f["extrapolation"] for f in fits.values() if "abs_error" in f["extrapolation"]]
    abs_errors = [a for ch in checks for a in ch["abs_error"]]
    rel_errors = [r for ch in checks for r in ch["rel_error"]]
    table = {
        "shape_columns": shape, "compute_column": compute, "error_column": error,
        "shapes": list(fits.values()),
        "frontier": {"grid": grid.tolist(),
                     "error": [None if not np.isfinite(b) else float(b) for b in best],
                     "segments": [{**s, "shape": list(s["shape"]),
                                   "label": shape_label(s["shape"], shape)} for s in segs],
                     "preferred_at_max_compute": None if preferred is None else list(preferred),
                     "empirical": [{"shape": list(keys[i]), "compute": float(all_c[i]),
                                    "error": float(all_e[i])} for i in front]},
        "width_vs_depth": {"pairs": pairs, "votes": votes,
                           "verdict": ("width" if votes["width"] > votes["depth"] else
                                       "depth" if votes["depth"] > votes["width"] else
                                       "undecided")},
        "extrapolation": {"holdout_per_shape": holdout, "shapes_checked": len(checks),
                          "mean_abs_error": float(np.mean(abs_errors)) if abs_errors else None,
                          "max_abs_error": float(np.max(abs_errors)) if abs_errors else None,
                          "mean_rel_error": float(np.mean(rel_errors)) if rel_errors else None},
    }
    table["summary"] = summary(table)
    return table


def summary(table: Mapping[str, Any]) -> str:
    cols = table["shape_columns"]
    lines = []
    for s in table["shapes"]:
        f = s["fit"]
        law = ("no fit: " + s["why"]) if f is None else (
            f"E = {f['params']['a']:.3g} (C + {f['params']['d']:.3g})^-{f['params']['b']:.3g} "
            f"+ {f['params']['c']:.3g}, R^2 = {f['r2']:.3f}")
        x = s["extrapolation"]
        check = (f"skipped ({x['skipped']})" if "skipped" in x else
                 "; ".join(f"C={c:.3g}: predicted {100 * p:.1f}%, measured {100 * a:.1f}% "
                           f"({100 * (p - a):+.1f} pts)"
                           for c, p, a in zip(x["compute"], x["predicted"], x["actual"])))
        lines.append(f"{s['label']}: {len(s['compute'])} runs, error "
                     f"{100 * min(s['error']):.1f}-{100 * max(s['error']):.1f}%; {law}")
        lines.append(f"    held-out largest run(s), fitted on the smaller: {check}")
    fr = table["frontier"]
    if fr["segments"]:
        path = " -> ".join(f"{s['label']} (C {s['from']:.2g}-{s['to']:.2g}"
                           f"{'' if s['contested'] else ', alone: no other shape ran that far'})"
                           for s in fr["segments"])
        lines.append(f"compute-optimal frontier (lower envelope of the fits): {path}")
        lines.append("the frontier prefers "
                     f"{shape_label(fr['preferred_at_max_compute'], cols)} at the largest "
                     "compute where shapes compete")
    else:
        lines.append("compute-optimal frontier: no shape could be fitted")
    wd = table["width_vs_depth"]
    for p in wd["pairs"]:
        lines.append(f"wider {shape_label(p['wider'], cols)} vs deeper "
                     f"{shape_label(p['deeper'], cols)} at C={p['compute']:.3g}: "
                     f"{100 * p['wider_error']:.1f}% vs {100 * p['deeper_error']:.1f}% "
                     f"-> {p['winner']}")
    if wd["pairs"]:
        lines.append(f"width vs depth: {wd['votes']['width']} pair(s) favour width, "
                     f"{wd['votes']['depth']} depth: {wd['verdict']}")
    ex = table["extrapolation"]
    if ex["shapes_checked"]:
        lines.append(f"extrapolation to held-out runs ({ex['shapes_checked']} shape(s)): mean "
                     f"|error| {100 * ex['mean_abs_error']:.1f} pts, max "
                     f"{100 * ex['max_abs_error']:.1f} pts, mean relative "
                     f"{100 * ex['mean_rel_error']:.0f}%")
    return "\n".join(lines)


def plot(table: Mapping[str, Any], stem: str) -> list[str]:
    """Error vs compute per shape with its fitted curve, the frontier, and the held-out
    runs (open markers) with their predictions (crosses)."""
    from vision_jax.scaling import plots  # Agg backend
    plt = plots.plt
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, s in enumerate(table["shapes"]):
        c, e = np.asarray(s["compute"]), np.asarray(s["error"])
        color = f"C{i % 10}"
        ax.scatter(c, 100 * e, s=18, color=color, label=s["label"], zorder=3)
        if s["fit"] is not None:
            law = fit_lib.Fit("saturating", s["fit"]["params"], {}, s["fit"]["r2"], len(c))
            grid = np.geomspace(c.min(), c.max() * 3, 100)
            ax.plot(grid, 100 * law.predict(grid), color=color, lw=1, alpha=0.8)
        x = s["extrapolation"]
        if "predicted" in x:
            ax.scatter(x["compute"], 100 * np.asarray(x["actual"]), s=60, facecolors="none",
                       edgecolors=color, zorder=4)
            ax.scatter(x["compute"], 100 * np.asarray(x["predicted"]), s=40, marker="x",
                       color=color, zorder=4)
    fr = table["frontier"]
    err = np.array([np.nan if v is None else v for v in fr["error"]], float)
    ax.plot(fr["grid"], 100 * err, color="k", lw=2.5, alpha=0.5, label="frontier (envelope)")
    ax.set(xscale="log", yscale="log", xlabel=f"training compute ({table['compute_column']}, "
           "FLOPs)", ylabel="test error (%)",
           title="error vs compute per ViT shape; o held out, x predicted")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return plots._save(fig, stem)


def analyse(df, *, out: str, name: str = "frontier", shape: Sequence[str] = SHAPE_COLUMNS,
            compute: str = "compute_flops", error: str = "final_eval_error", holdout: int = 1,
            bootstrap: int = 200, seed: int = 0) -> tuple[list[str], dict[str, Any]]:
    """The sweep hook: `compare_shapes`, print its summary, write <out>/<name>.png/.svg/.json."""
    table = compare_shapes(df, shape=shape, compute=compute, error=error, holdout=holdout,
                           bootstrap=bootstrap, seed=seed)
    table["name"] = name
    print(f"[frontier] {name}:\n{table['summary']}")
    paths = plot(table, os.path.join(out, name))
    path = os.path.join(out, f"{name}.json")
    with open(path, "w") as f:
        json.dump(table, f, indent=2)
    return paths + [path], table
