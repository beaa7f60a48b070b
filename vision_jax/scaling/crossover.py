"""Where one model overtakes another as the training set grows, with bootstrap intervals.

Dosovitskiy et al. (2021, Figs. 3-4) pre-train ViTs and BiT ResNets on
growing subsets and find the ResNets ahead on small sets and the ViTs ahead on
large ones. Given a sweep's results (one row per trial: model, data size,
seed, test accuracy), this module reports per data size each model's accuracy
with a 95% bootstrap interval, the gap between them, and the data size at
which the challenger (ViT) overtakes the incumbent (ResNet), with an interval,
or that it does not, with the trend of the gap.

The bootstrap resamples both sources of noise of a cell (model, size): the
seeds, with replacement, and the test examples of each chosen seed's run.
Resampling n test outcomes with replacement from a run of accuracy p gives
Binomial(n, p) / n correct, so only the accuracy and n are needed (the store
keeps no per-example outcomes). Cells are resampled independently: every run
is tested on the same scenes, so the two models' errors are positively
correlated and intervals on the gap are, if anything, conservative.

The crossover is read off the per-size means: the gap (challenger minus
incumbent) is interpolated linearly in log D between the last size where the
challenger is not ahead and the next one, provided it stays ahead at every
larger size measured. Each bootstrap draw gives its own crossover (or none);
the interval is the 2.5-97.5 percentiles over all draws, where a draw without
a crossover counts as "beyond the largest size" and one with the challenger
ahead everywhere as "at or below the smallest". So an interval can be open on
either side, and `fraction_crossed` says how many draws cross inside the
measured range.

Used by configs/scaling/vit_vs_resnet.py as a sweep 'custom' analysis:

    dict(kind='custom', function='vision_jax.scaling.crossover:analyse',
         size='data.num_train_examples', challenger='vit', incumbent='resnet',
         test_examples=10_000)
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

CROSSED, BELOW, NONE = "crossed", "below", "none"
# Censored ends of a crossover interval (JSON has no infinities).
BELOW_RANGE, BEYOND_RANGE = "<=smallest", ">largest"


def find_crossover(sizes: Sequence[float], gap: Sequence[float]) -> tuple[str, float | None]:
    """(status, size) of where `gap` (challenger minus incumbent, per size) turns positive
    for good.

    status 'crossed': the gap is > 0 at the largest size and <= 0 somewhere below;
    size is the zero of the gap, interpolated linearly in log size between the last
    size where it is <= 0 and the next. 'below': > 0 at every size (the crossover,
    if any, lies at or below the smallest size; size is None). 'none': <= 0 at the
    largest size (no crossover in the measured range; size is None).
    """
    sizes, gap = np.asarray(sizes, float), np.asarray(gap, float)
    order = np.argsort(sizes)
    sizes, gap = sizes[order], gap[order]
    if gap[-1] <= 0:
        return NONE, None
    behind = np.flatnonzero(gap <= 0)
    if not len(behind):
        return BELOW, None
    j = int(behind[-1])
    x0, x1 = np.log(sizes[j]), np.log(sizes[j + 1])
    g0, g1 = gap[j], gap[j + 1]
    return CROSSED, float(np.exp(x0 + (0.0 - g0) / (g1 - g0) * (x1 - x0)))


def _cells(df, *, size: str, model: str, accuracy: str) -> dict[tuple[str, float], np.ndarray]:
    cells: dict[tuple[str, float], list[float]] = {}
    for m, d, a in zip(df[model], df[size], df[accuracy]):
        cells.setdefault((str(m), float(d)), []).append(float(a))
    return {k: np.asarray(v) for k, v in cells.items()}


def _draws(acc: np.ndarray, test_examples: int | None, samples: int,
           rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of one cell: seeds resampled, then each run's test examples."""
    picks = acc[rng.integers(0, len(acc), (samples, len(acc)))]
    if test_examples:
        picks = rng.binomial(int(test_examples), picks) / float(test_examples)
    return picks.mean(axis=1)


def _interval(values: np.ndarray) -> list[float]:
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def _bound(value: float, sizes: np.ndarray, any_below: bool) -> float | str:
    """A crossover interval's end: a size, or BELOW_RANGE / BEYOND_RANGE when it is
    censored at the smallest size or lies past the largest."""
    if not np.isfinite(value):
        return BEYOND_RANGE
    if value <= sizes[0] and any_below:
        return BELOW_RANGE
    return float(value)


def _trend(sizes: np.ndarray, gap: np.ndarray) -> tuple[float, float]:
    """(slope per decade of D, intercept at log10 D = 0) of the gap, least squares."""
    slope, intercept = np.polyfit(np.log10(sizes), gap, 1)
    return float(slope), float(intercept)


def compare(df, *, size: str = "data.num_train_examples", challenger: str = "vit",
            incumbent: str = "resnet", model: str = "model",
            accuracy: str = "final_eval_accuracy", test_examples: int | None = None,
            bootstrap: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The comparison table (see the module docstring) of a results DataFrame.

    Only sizes at which both models have at least one run are used.
    """
    for column in (size, model, accuracy):
        if column not in df.columns:
            raise ValueError(f"crossover: no column {column!r} in the results; columns: "
                             f"{list(df.columns)}")
    cells = _cells(df, size=size, model=model, accuracy=accuracy)
    names = (challenger, incumbent)
    sizes = np.array(sorted({d for (m, d) in cells if m == challenger}
                            & {d for (m, d) in cells if m == incumbent}))
    if len(sizes) < 2:
        raise ValueError(f"crossover: needs >= 2 data sizes with runs of both {challenger!r} "
                         f"and {incumbent!r}; models in the results: "
                         f"{sorted({m for m, _ in cells})}")
    rng = np.random.default_rng(seed)
    means = {m: np.array([cells[m, d].mean() for d in sizes]) for m in names}
    draws = {m: np.stack([_draws(cells[m, d], test_examples, bootstrap, rng) for d in sizes],
                         axis=1) for m in names}                                # [B, sizes]
    gap = means[challenger] - means[incumbent]
    gap_draws = draws[challenger] - draws[incumbent]

    status, point = find_crossover(sizes, gap)
    found = [find_crossover(sizes, g) for g in gap_draws]
    # Censored values: 'below' sits at the smallest size, 'none' beyond the largest.
    coded = np.array([v if s == CROSSED else (sizes[0] if s == BELOW else np.inf)
                      for s, v in found])
    # Order statistics, not interpolation: a bound may be a censored value.
    lo = float(np.percentile(coded, 2.5, method="lower"))
    hi = float(np.percentile(coded, 97.5, method="higher"))
    crossover = {
        "status": status, "size": point,
        "ci95": [_bound(lo, sizes, any(s == BELOW for s, _ in found)),
                 _bound(hi, sizes, any(s == BELOW for s, _ in found))],
        "fraction_crossed": float(np.mean([s == CROSSED for s, _ in found])),
        "fraction_below": float(np.mean([s == BELOW for s, _ in found])),
        "fraction_none": float(np.mean([s == NONE for s, _ in found])),
    }
    slope, intercept = _trend(sizes, gap)
    slopes = np.array([_trend(sizes, g)[0] for g in gap_draws])
    trend = {"slope_per_decade": slope, "slope_ci95": _interval(slopes)}
    if status == NONE and slope > 0:
        # Where the fitted line reaches zero: an extrapolation beyond the data.
        trend["extrapolated_crossover"] = float(10 ** (-intercept / slope))
    table = {
        "size_column": size, "sizes": sizes.tolist(), "challenger": challenger,
        "incumbent": incumbent, "test_examples": test_examples, "bootstrap": bootstrap,
        "models": {m: {"mean": means[m].tolist(),
                       "ci95": [_interval(draws[m][:, i]) for i in range(len(sizes))],
                       "runs": [cells[m, d].tolist() for d in sizes]} for m in names},
        "gap": {"mean": gap.tolist(),
                "ci95": [_interval(gap_draws[:, i]) for i in range(len(sizes))]},
        "crossover": crossover, "trend": trend,
    }
    table["summary"] = summary(table)
    return table


def _size(d: float | None) -> str:
    return "?" if d is None else f"{d:,.0f}"


def summary(table: Mapping[str, Any]) -> str:
    """The table in words: one line per size, then the verdict."""
    ch, inc = table["challenger"], table["incumbent"]
    lines = [f"{'D':>9}  {ch + ' acc [95% CI]':>22}  {inc + ' acc [95% CI]':>22}  "
             f"{ch + ' - ' + inc + ' [95% CI]':>26}"]
    for i, d in enumerate(table["sizes"]):
        cols = []
        for m in (ch, inc):
            mean, (lo, hi) = table["models"][m]["mean"][i], table["models"][m]["ci95"][i]
            cols.append(f"{100 * mean:5.1f}% [{100 * lo:5.1f}, {100 * hi:5.1f}]")
        g, (lo, hi) = table["gap"]["mean"][i], table["gap"]["ci95"][i]
        lines.append(f"{d:>9,.0f}  {cols[0]:>22}  {cols[1]:>22}  "
                     f"{100 * g:+6.1f} pts [{100 * lo:+6.1f}, {100 * hi:+6.1f}]")
    c, t = table["crossover"], table["trend"]
    smallest, largest = table["sizes"][0], table["sizes"][-1]
    ends = [("<= " + _size(smallest)) if e == BELOW_RANGE
            else ("> " + _size(largest)) if e == BEYOND_RANGE else _size(e) for e in c["ci95"]]
    span = f"95% CI [{ends[0]}, {ends[1]}]"
    share = (f"{100 * c['fraction_crossed']:.0f}% of bootstrap draws cross inside the "
             f"measured range, {100 * c['fraction_none']:.0f}% do not cross, "
             f"{100 * c['fraction_below']:.0f}% have {ch} ahead at every size")
    slope = (f"the gap changes by {100 * t['slope_per_decade']:+.1f} pts per decade of D "
             f"(95% CI [{100 * t['slope_ci95'][0]:+.1f}, {100 * t['slope_ci95'][1]:+.1f}])")
    if c["status"] == CROSSED:
        lines.append(f"{ch} overtakes {inc} at D ~ {_size(c['size'])} ({span}); {share}; {slope}.")
    elif c["status"] == BELOW:
        lines.append(f"{ch}'s mean is ahead of {inc}'s at every size from {_size(smallest)} on: "
                     f"no crossover inside the measured range ({span}); {share}; {slope}.")
    else:
        verdict = (f"NO crossover: {inc} is still ahead (or level) at the largest size, "
                   f"{_size(largest)}")
        if "extrapolated_crossover" in t:
            trend = (f"the gap narrows; a straight line in log D would reach zero at "
                     f"D ~ {_size(t['extrapolated_crossover'])}, an extrapolation beyond the "
                     "data, not a measurement")
        else:
            trend = "the gap does not narrow with more data"
        lines.append(f"{verdict}; {slope}: {trend}. {share}.")
    # Which sizes the intervals actually separate: a mean ahead inside the noise is no lead.
    ahead = [d for d, (lo, _) in zip(table["sizes"], table["gap"]["ci95"]) if lo > 0]
    behind = [d for d, (_, hi) in zip(table["sizes"], table["gap"]["ci95"]) if hi < 0]
    if not ahead and not behind:
        lines.append("No size separates the two models: every gap's 95% CI contains 0.")
    else:
        names = lambda ds: ", ".join(_size(d) for d in ds) or "none"  # noqa: E731
        lines.append(f"Gap's 95% CI excludes 0: {ch} ahead at D = {names(ahead)}; "
                     f"{inc} ahead at D = {names(behind)}.")
    return "\n".join(lines)


def plot(table: Mapping[str, Any], stem: str) -> list[str]:
    """Accuracy vs data size per model (95% CI bars; small dots: the runs) over the
    gap with its CI; the crossover and its interval shaded; chance level dotted
    when the table has one. PNG and SVG."""
    from vision_jax.scaling import plots  # Agg backend
    plt = plots.plt
    sizes = np.asarray(table["sizes"], float)
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(6, 6.5), sharex=True,
                                 gridspec_kw=dict(height_ratios=(3, 2)))
    for i, m in enumerate((table["challenger"], table["incumbent"])):
        mean = np.asarray(table["models"][m]["mean"])
        ci = np.asarray(table["models"][m]["ci95"]).T
        ax.errorbar(sizes, 100 * mean, yerr=100 * np.abs(ci - mean), marker="o", capsize=3,
                    color=f"C{i}", label=m)
        for d, runs in zip(sizes, table["models"][m]["runs"]):
            ax.scatter([d] * len(runs), 100 * np.asarray(runs), s=8, color=f"C{i}", alpha=0.4)
    gap = np.asarray(table["gap"]["mean"])
    gci = np.asarray(table["gap"]["ci95"]).T
    bx.errorbar(sizes, 100 * gap, yerr=100 * np.abs(gci - gap), marker="o", capsize=3,
                color="k")
    bx.axhline(0, color="grey", lw=1)
    c = table["crossover"]
    lo, hi = (sizes[0] if e == BELOW_RANGE else sizes[-1] if e == BEYOND_RANGE else e
              for e in c["ci95"])
    for axis in (ax, bx):
        if c["status"] == CROSSED:
            axis.axvline(c["size"], color="C3", ls="--", lw=1)
        if c["status"] == CROSSED or c["fraction_crossed"] > 0.025:
            axis.axvspan(lo, hi, color="C3", alpha=0.1)
        axis.grid(True, which="both", alpha=0.3)
    label = (f"crossover D ~ {c['size']:,.0f}" if c["status"] == CROSSED
             else "no crossover" if c["status"] == NONE
             else f"{table['challenger']}'s mean ahead at every size")
    if table.get("chance") is not None:
        ax.axhline(100 * table["chance"], color="grey", ls=":", lw=1, label="chance")
    ax.set(xscale="log", ylabel="test accuracy (%)",
           title=f"{table['challenger']} vs {table['incumbent']}: {label}")
    ax.legend(fontsize=8)
    bx.set(xscale="log", xlabel=f"training set size ({table['size_column']})",
           ylabel=f"{table['challenger']} - {table['incumbent']} (pts)")
    return plots._save(fig, stem)


def analyse(df, *, out: str, name: str = "crossover", size: str = "data.num_train_examples",
            challenger: str = "vit", incumbent: str = "resnet", model: str = "model",
            accuracy: str = "final_eval_accuracy", test_examples: int | None = None,
            bootstrap: int = 2000, seed: int = 0, chance: float | None = None
            ) -> tuple[list[str], dict[str, Any]]:
    """The sweep hook: `compare`, print its summary, write <out>/<name>.png/.svg/.json.
    `chance` (e.g. 1/8 for 8 balanced classes) is drawn on the plot."""
    table = compare(df, size=size, challenger=challenger, incumbent=incumbent, model=model,
                    accuracy=accuracy, test_examples=test_examples, bootstrap=bootstrap,
                    seed=seed)
    table["name"], table["chance"] = name, chance
    print(f"[crossover] {name}:\n{table['summary']}")
    paths = plot(table, os.path.join(out, name))
    path = os.path.join(out, f"{name}.json")
    with open(path, "w") as f:
        json.dump(table, f, indent=2)
    return paths + [path], table
