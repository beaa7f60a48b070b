"""Loss and FID against compute for a sweep of DiT shapes (Peebles & Xie 2023, "Scalable
Diffusion Models with Transformers", Fig. 8: FID-50K against Gflops per forward pass,
and Fig. 9: against total training compute).

Every trial of configs/scaling/dit.py is one DiT shape (width, depth) trained
for the same number of steps. Per trial this analysis reads the store's
forward_flops_per_example (XLA's count; the paper's "Gflops"), compute_flops
(training compute: examples seen x 3 x forward) and final_eval_loss, and, with
`fid` set, draws `num` class-conditional samples from the trial's checkpoint
(`vision-jax sample`'s `draw`: EMA weights, classes in turn) and scores them
with vision_jax.evaluate.samples against the test split in the in-house
feature net's space. FIDs are cached per trial in <trial>/fid.json under
their protocol, so `--analyse-only` does not sample again.

Then: power laws L = (C_c / C)^alpha of the eval loss and of FID against
training compute C (vision_jax.scaling.fit, bootstrap 95% intervals; every
trial sees the same examples, so C is forward Gflops times a constant and the
exponents against Gflops are the same), the Pearson correlation of log FID
with log Gflops (the paper reports -0.93 for FID-50K at 400k steps), and
<out>/<name>.png: loss and FID against training compute, one colour per
depth, widths annotated.

    dict(kind='custom', function='vision_jax.scaling.dit_laws:analyse',
         fid=dict(num=500, steps=25, guidance=0.0, seed=0))
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

from vision_jax.scaling import fit as fit_lib, store

FID_FILE = "fid.json"


def trial_fid(workdir: str, protocol: Mapping[str, Any], nets: dict | None = None
              ) -> dict[str, Any]:
    """FID (and KID, class accuracy) of `protocol['num']` samples of a finished trial,
    cached in <workdir>/fid.json under the protocol. `nets` caches the feature
    nets by resolution across calls."""
    path = os.path.join(workdir, FID_FILE)
    cached = {}
    if os.path.isfile(path):
        with open(path) as f:
            cached = json.load(f)
    key = json.dumps(dict(protocol), sort_keys=True)
    if key in cached:
        return cached[key]
    from vision_jax import sample
    from vision_jax.evaluate import features, samples as evaluate

    p = dict(protocol)
    config = sample.load_run_config(workdir)
    nets = {} if nets is None else nets
    resolution = int(config.data.image_size)
    if resolution not in nets:
        nets[resolution] = features.load_feature_net(resolution)
    step, images, labels = sample.draw(config, workdir, num=int(p["num"]),
                                       seed=int(p.get("seed", 0)), steps=int(p["steps"]),
                                       guidance=float(p.get("guidance", 0.0)))
    metrics = evaluate.evaluate_samples(evaluate.to_uint8(images), labels, data_cfg=config.data,
                                        num=int(p["num"]), seed=int(p.get("seed", 0)),
                                        net=nets[resolution])
    entry = {"step": step, **{k: metrics[k] for k in ("fid", "kid", "class_accuracy")},
             "floor_fid": metrics["floor"]["fid"],
             "gaussian_fid": metrics["gaussian_baseline"]["fid"]}
    cached[key] = entry
    with open(path, "w") as f:
        json.dump(cached, f, indent=2)
    return entry


def _fit(x, y, name: str, bootstrap: int, seed: int) -> dict[str, Any] | None:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (y > 0)
    if len(np.unique(x[ok])) < 3:
        return None
    law = fit_lib.fit_form("power", {"x": x[ok]}, y[ok], bootstrap=bootstrap, seed=seed,
                           x_name=name)
    return law.to_json()


def compare(rows: list[dict[str, Any]], *, bootstrap: int = 200, seed: int = 0
            ) -> dict[str, Any]:
    """Fits over rows {width, depth, gflops, compute, loss[, fid]}: the analysis's table."""
    cols = {k: np.array([r.get(k, np.nan) for r in rows], float)
            for k in ("gflops", "compute", "loss", "fid")}
    # Against training compute only: every trial sees the same examples, so compute
    # is forward GFLOPs x a constant and a law in GFLOPs has the same exponent.
    fits = {f"{y}_vs_compute": _fit(cols["compute"], cols[y], "training FLOPs", bootstrap, seed)
            for y in ("loss", "fid")}
    has_fid = np.isfinite(cols["fid"])
    corr = (float(np.corrcoef(np.log(cols["gflops"][has_fid]),
                              np.log(cols["fid"][has_fid]))[0, 1])
            if has_fid.sum() >= 3 else None)
    table = {"runs": rows, "fits": fits, "log_fid_log_gflops_correlation": corr}
    table["summary"] = summary(table)
    return table


def summary(table: Mapping[str, Any]) -> str:
    lines = ["shape (w, d)   fwd GFLOPs   train FLOPs   eval loss   FID"]
    for r in sorted(table["runs"], key=lambda r: r["gflops"]):
        fid = r.get("fid")
        lines.append(f"({r['width']:>4}, {r['depth']:>2})    {r['gflops']:10.4f}   "
                     f"{r['compute']:11.3g}   {r['loss']:9.4f}   "
                     f"{'-' if fid is None else f'{fid:.2f}'}")
    for key, f in table["fits"].items():
        if f is None:
            continue
        lo, hi = f["ci95"].get("alpha", (np.nan, np.nan))
        # fit.py's bootstrap keeps resamples with >= 4 distinct runs: with 4 runs
        # that is the data itself, so there is no interval.
        ci = (f"[95% CI {lo:.3f}, {hi:.3f}]" if f["n"] > 4
              else f"(no interval from {f['n']} runs)")
        lines.append(f"{key}: alpha = {f['params']['alpha']:.3f} {ci}, "
                     f"R^2 (log) = {f['r2']:.3f}")
    if table["log_fid_log_gflops_correlation"] is not None:
        lines.append(f"corr(log FID, log GFLOPs) = {table['log_fid_log_gflops_correlation']:.3f}"
                     " (paper, FID-50K vs Gflops: -0.93)")
    return "\n".join(lines)


def plot(table: Mapping[str, Any], stem: str) -> list[str]:
    """Loss and FID against training compute; colour = depth, label = width."""
    from vision_jax.scaling import plots  # Agg backend
    plt = plots.plt
    rows = table["runs"]
    panels = ["loss"] + (["fid"] if any(r.get("fid") is not None for r in rows) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    depths = sorted({r["depth"] for r in rows})
    for ax, y in zip(axes[0], panels):
        for i, d in enumerate(depths):
            sub = sorted((r for r in rows if r["depth"] == d and r.get(y) is not None),
                         key=lambda r: r["compute"])
            ax.plot([r["compute"] for r in sub], [r[y] for r in sub], "o-", color=f"C{i}",
                    label=f"depth {d}")
            for r in sub:
                ax.annotate(f"w{r['width']}", (r["compute"], r[y]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        f = table["fits"].get(f"{y}_vs_compute")
        if f is not None:
            law = fit_lib.Fit("power", f["params"], {}, f["r2"], f["n"])
            c = np.array([r["compute"] for r in rows], float)
            grid = np.geomspace(c.min() / 1.3, c.max() * 1.3, 100)
            ax.plot(grid, law.predict(grid), "k--", lw=1,
                    label=f"power law, alpha={f['params']['alpha']:.3f}")
        ax.set(xscale="log", yscale="log", xlabel="training compute (FLOPs)",
               ylabel="final eval loss" if y == "loss" else "FID (in-house features)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return plots._save(fig, stem)


def analyse(df, *, out: str, name: str = "dit_scaling", fid: Mapping[str, Any] | None = None,
            bootstrap: int = 200, seed: int = 0) -> tuple[list[str], dict[str, Any]]:
    """The sweep hook: FID per trial (if `fid`), the fits, <out>/<name>.png/.svg/.json."""
    sweepdir = os.path.dirname(os.path.abspath(out))
    nets: dict = {}
    rows = []
    for _, r in df.iterrows():
        row = {"trial": r["trial"], "width": int(r["model.width"]),
               "depth": int(r["model.depth"]),
               "gflops": float(r["forward_flops_per_example"]) / 1e9,
               "compute": float(r["compute_flops"]), "loss": float(r["final_eval_loss"])}
        if fid:
            entry = trial_fid(store.trial_dir(sweepdir, r["trial"]), fid, nets)
            row.update(fid=entry["fid"], kid=entry["kid"],
                       class_accuracy=entry["class_accuracy"])
        rows.append(row)
    table = compare(rows, bootstrap=bootstrap, seed=seed)
    table.update(name=name, fid_protocol=None if not fid else dict(fid))
    print(f"[dit_laws] {name}:\n{table['summary']}")
    paths = plot(table, os.path.join(out, name))
    path = os.path.join(out, f"{name}.json")
    with open(path, "w") as f:
        json.dump(table, f, indent=2)
    return paths + [path], table
