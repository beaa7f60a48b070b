"""`vision-jax lottery`: lottery tickets by iterative magnitude pruning with rewinding.

Frankle & Carbin 2019 ("The Lottery Ticket Hypothesis: Finding Sparse,
Trainable Neural Networks") train a dense network, prune the smallest-magnitude
weights, reset the survivors to their initial values and train again: these
sparse "winning tickets" reach the dense accuracy at sparsities where the same
sub-network, randomly re-initialised, does not. Frankle et al. 2020 ("Linear
Mode Connectivity and the Lottery Ticket Hypothesis") rewind to the weights of
an early iteration k instead of to the initialisation, which is what finds
tickets in deeper networks. Every run is an ordinary run of the one
trainer (vision_jax/train.py), masked through `config.prune.mask`.

For each trial of the lottery config (a seed; the config is a sweep config,
see vision_jax/scaling/sweep.py, plus a `lottery` section):

  round 0   train the dense network from theta_0 for T steps, keeping its
            parameters at step k (theta_k, the rewind point)
  round r   prune: mask_r keeps all but `rate` of the kernel weights mask_{r-1}
            kept, dropping the smallest in magnitude after round r-1's ticket
            was trained (round 0's dense network for r = 1); the output layer
            loses `output_rate` (vision_jax/prune.py). Then train, each for T steps:
              rewind       mask_r * theta_k (init_from round 0's step-k
                           checkpoint; theta_0 itself when k = 0): the winning ticket
              reinit       mask_r * a fresh initialisation (seed + 1000 + r):
                           Frankle & Carbin's random re-initialisation control
              random_mask  a random mask with mask_r's count in every layer,
                           on theta_k: the structure, not the weights, is random
              supermask    (opt-in) no weight trained at all: a fresh random
                           network frozen as signed constants, and only a mask
                           learned over it (edge-popup, Ramanujan et al. 2020;
                           Zhou et al. 2019's supermasks) that keeps mask_r's
                           fraction of the hidden and of the output weights
                           (models/supermask.py, prune.top_k_mask)

The rewound tickets restart the optimizer and its schedule at step 0 and
train T steps, as every other run does, rather than continuing for T - k
steps (Frankle et al. 2020 continue the schedule); with k a few per cent of T
the difference is small, and all kinds then get the same number of steps.
The re-initialised control also changes the data order (the trainer draws
both from `config.seed`).

Layout of the lottery directory (the sweep store's, so the same tools read it):

    DIR/trials/<trial>,round=<r>,kind=<kind>/   trainer workdirs (skipped once
                                               summary.json exists; resumed otherwise)
    DIR/masks/<trial>/round=<r>.npz             the pruning masks (and ...,random.npz)
    DIR/lottery.json                           the pruning settings the masks were made with
    DIR/results.jsonl, results.csv             one row per run: round, kind,
                                               weights_remaining, sparsity, final_eval_accuracy, ...
    DIR/plots/accuracy_vs_sparsity.png, .svg

    vision-jax lottery --config=configs/scaling/lottery.py --workdir=workdirs/lottery
    vision-jax lottery ... --dry-run         # list the runs and which are done
    vision-jax lottery ... --analyse-only    # rebuild the results table and the plot
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np
from ml_collections import ConfigDict

from vision_jax import config as config_lib
from vision_jax import prune
from vision_jax.scaling import store, sweep

CONTROLS = ("reinit", "random_mask", "supermask")
LABELS = {"reinit": "random re-init", "random_mask": "random mask (same layer sparsity)",
          "supermask": "supermask (weights never trained)"}
# The seed of round r's re-initialised control is seed + REINIT_SEED_OFFSET + r:
# a fresh draw per round, far from the seeds a lottery config sweeps.
REINIT_SEED_OFFSET = 1000
PLOT_NAME = "accuracy_vs_sparsity"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The `lottery` section of a lottery config."""

    rounds: int = 10
    rate: float = 0.2           # of the remaining kernel weights, per round
    output_rate: float = 0.1    # the output layer's rate (Frankle & Carbin: rate / 2)
    scope: str = "layer"        # 'layer' or 'global' magnitude ranking
    rewind_step: int = 0        # k: 0 rewinds to the initialisation
    controls: tuple[str, ...] = ("reinit", "random_mask")

    def __post_init__(self):
        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise ValueError(f"lottery.rounds={self.rounds!r} must be a positive integer")
        if not 0.0 < self.rate < 1.0:
            raise ValueError(f"lottery.rate={self.rate!r} must be in (0, 1)")
        if not 0.0 <= self.output_rate < 1.0:
            raise ValueError(f"lottery.output_rate={self.output_rate!r} must be in [0, 1)")
        if self.scope not in prune.SCOPES:
            raise ValueError(f"lottery.scope={self.scope!r} is not valid; choose one of "
                             f"{list(prune.SCOPES)}")
        if not isinstance(self.rewind_step, int) or self.rewind_step < 0:
            raise ValueError(f"lottery.rewind_step={self.rewind_step!r} must be an integer >= 0")
        unknown = [c for c in self.controls if c not in CONTROLS]
        if unknown:
            raise ValueError(f"lottery.controls has {unknown}; choose from {list(CONTROLS)}")


def settings(lottery: ConfigDict) -> Settings:
    section = lottery.get("lottery")
    section = dict(section.to_dict() if isinstance(section, ConfigDict) else section or {})
    valid = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(section) - valid)
    if unknown:
        raise ValueError(f"lottery config: unknown keys {unknown} in `lottery`; valid: "
                         f"{sorted(valid)}")
    if "controls" in section:
        section["controls"] = tuple(section["controls"])
    return Settings(**section)


@dataclasses.dataclass(frozen=True)
class Run:
    """One trainer run of the lottery: round 0 is the dense network."""

    trial: sweep.Trial
    round: int
    kind: str  # 'dense', 'rewind' or one of CONTROLS

    @property
    def name(self) -> str:
        return f"{self.trial.name},round={self.round},kind={self.kind}"


def runs(trial: sweep.Trial, s: Settings) -> list[Run]:
    """The runs of one trial in the order they train."""
    out = [Run(trial, 0, "dense")]
    for r in range(1, s.rounds + 1):
        out += [Run(trial, r, kind) for kind in ("rewind", *s.controls)]
    return out


# ---------------------------------------------------------------------------
# Running.

def _abstract_params(config: ConfigDict):
    """The model's parameters as ShapeDtypeStructs on one device (for restore_params)."""
    import jax
    from vision_jax import train
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device),
                        train.setup(config).abstract.params)


def _trained_params(workdir: str, abstract) -> Any:
    """The final parameters of a finished run (its newest checkpoint is its last step)."""
    import jax
    import numpy as np
    from vision_jax import checkpoint as ckpt_lib
    return jax.tree.map(np.asarray,
                        ckpt_lib.restore_params(os.path.join(workdir, "checkpoints"), abstract))


class _Runner:
    """Trains the runs of one lottery directory, one after another, skipping finished ones."""

    def __init__(self, lottery: ConfigDict, workdir: str, spec: str, total: int,
                 log: Callable[[str], None]):
        self.lottery, self.workdir, self.spec, self.log = lottery, workdir, spec, log
        self.total, self.done = total, 0
        self.outcome: dict[str, list[str]] = {"ran": [], "skipped": []}

    def train(self, run: Run, index: int, overrides: Sequence[str], values: dict,
              edit: Callable[[ConfigDict], None] | None = None) -> dict:
        """Trains `run` with `overrides` (then `edit`, in place) on its trial's config
        unless it finished; its summary."""
        from vision_jax import train
        workdir = store.trial_dir(self.workdir, run.name)
        self.done += 1
        head = f"[lottery {self.done}/{self.total}] {run.name}"
        remain = f"{100 * values['weights_remaining']:.3g}% of weights remain"
        if store.is_finished(workdir):
            with open(os.path.join(workdir, store.SUMMARY_FILE)) as f:
                summary = json.load(f)
            self.log(f"{head}: finished earlier ({remain}, test accuracy "
                     f"{100 * summary['eval_accuracy']:.2f}%)")
            self.outcome["skipped"].append(run.name)
            return summary
        config = sweep.trial_config(self.lottery, run.trial)
        config_lib.apply_overrides(config, list(overrides))
        if edit is not None:
            edit(config)
        trial = sweep.Trial(index, run.name, {**run.trial.values, **values},
                            tuple(run.trial.overrides) + tuple(overrides))
        sweep.write_trial_file(self.workdir, self.spec, trial, config)
        start = time.perf_counter()
        summary = train.train(config, workdir)
        self.log(f"{head}: {remain}, test accuracy {100 * summary['eval_accuracy']:.2f}% "
                 f"({time.perf_counter() - start:.0f}s)")
        self.outcome["ran"].append(run.name)
        store.write(self.workdir)
        return summary


def _round_mask(path: str, make: Callable[[], Any], abstract) -> Any:
    """The mask saved at `path`, else `make()` saved there: a re-run reuses it."""
    if os.path.isfile(path):
        return prune.load_mask(path, abstract)
    mask = make()
    prune.save_mask(path, mask)
    return mask


def _check_same_pruning(workdir: str, s: Settings) -> None:
    """Refuses a lottery directory whose masks were made with other pruning settings:
    they would be reused, and its finished runs skipped, without a word. (More
    rounds, or other controls, are fine: the runs that exist stay valid.)"""
    path = os.path.join(workdir, "lottery.json")
    fixed = {k: getattr(s, k) for k in ("rate", "output_rate", "scope", "rewind_step")}
    if os.path.isfile(path):
        with open(path) as f:
            before = json.load(f)
        changed = {k: (before.get(k), v) for k, v in fixed.items() if before.get(k) != v}
        if changed:
            raise ValueError(f"{workdir} was made with other pruning settings "
                             f"{ {k: b for k, (b, _) in changed.items()} }, not "
                             f"{ {k: v for k, (_, v) in changed.items()} }; use a new --workdir")
        return
    os.makedirs(workdir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(fixed, f, indent=2)


def supermask_model(model: ConfigDict, mask: Any) -> ConfigDict:
    """The supermask over `model` that keeps what `mask` keeps: its fraction of the
    prunable weights outside the output layer, and of the output layer's."""
    kernels = {k: np.asarray(m) for k, m in prune.flatten(mask).items() if prune.is_prunable(k, m)}

    def kept(names):
        return sum(int(kernels[k].sum()) for k in names) / sum(kernels[k].size for k in names)

    hidden = [k for k in kernels if not prune.is_output(k)]
    output = [k for k in kernels if prune.is_output(k)]
    return ConfigDict(dict(name="supermask", base=model.to_dict(),
                           density=kept(hidden or output), output_density=kept(output or hidden)))


def run_trial(lottery: ConfigDict, trial: sweep.Trial, s: Settings, runner: _Runner) -> None:
    """Round 0 and `s.rounds` pruning rounds of one trial (one seed)."""
    from vision_jax import data
    base = sweep.trial_config(lottery, trial)
    data.prepare(base.data)
    info = data.dataset_info(base.data)
    steps = config_lib.total_steps(base, info.split_sizes[base.data.train_split]).total_steps
    k = s.rewind_step
    if k >= steps:
        raise ValueError(f"lottery.rewind_step={k} must be below the {steps} training steps")
    _check_same_pruning(runner.workdir, s)
    abstract = _abstract_params(base)
    stride = 1 + s.rounds * (1 + len(s.controls))
    index = iter(range(trial.index * stride, (trial.index + 1) * stride))
    columns = dict(rewind_step=k, sparsity=0.0, weights_remaining=1.0)

    dense = Run(trial, 0, "dense")
    every = base.checkpoint.every_steps
    keep = [] if k == 0 else [
        # Keep theta_k: orbax never deletes a step that keep_period divides.
        f"checkpoint.every_steps={every if k % every == 0 else k}", f"checkpoint.keep_period={k}"]
    runner.train(dense, next(index), keep, dict(round=0, kind="dense", **columns))
    dense_dir = store.trial_dir(runner.workdir, dense.name)
    rewind_to = []
    if k:
        theta_k = os.path.join(dense_dir, "checkpoints", str(k))
        if not os.path.isdir(theta_k):
            raise ValueError(f"round 0 kept no checkpoint at the rewind step {k} in {dense_dir}; "
                             "was it trained with other checkpoint settings? Delete that run to "
                             "retrain it")
        rewind_to = [f"init_from={theta_k}"]

    mask, ticket_dir = prune.full_mask(abstract), dense_dir
    masks = os.path.join(runner.workdir, "masks", trial.name)
    seed = int(base.seed)
    for r in range(1, s.rounds + 1):
        def pruned(mask=mask, trained_dir=ticket_dir):
            return prune.magnitude_prune(_trained_params(trained_dir, abstract), mask,
                                         rate=s.rate, output_rate=s.output_rate, scope=s.scope)

        mask_file = os.path.join(masks, f"round={r}.npz")
        mask = _round_mask(mask_file, pruned, abstract)
        density = prune.mask_density(mask)["all"]
        columns = dict(rewind_step=k, sparsity=1.0 - density, weights_remaining=density)
        ticket = Run(trial, r, "rewind")
        runner.train(ticket, next(index), [f"prune.mask={mask_file}", *rewind_to],
                     dict(round=r, kind="rewind", **columns))
        ticket_dir = store.trial_dir(runner.workdir, ticket.name)
        for kind in s.controls:
            edit = None
            if kind == "supermask":
                overrides, edit = [], lambda config, m=mask: setattr(
                    config, "model", supermask_model(config.model, m))
            elif kind == "reinit":
                overrides = [f"prune.mask={mask_file}", f"seed={seed + REINIT_SEED_OFFSET + r}"]
            else:  # random_mask: its own random stream per trial and round
                shuffled = os.path.join(masks, f"round={r},random.npz")
                _round_mask(shuffled, lambda m=mask, r=r: prune.random_mask(m, seed * 1000 + r),
                            abstract)
                overrides = [f"prune.mask={shuffled}", *rewind_to]
            runner.train(Run(trial, r, kind), next(index), overrides,
                         dict(round=r, kind=kind, **columns), edit)


def run(lottery: ConfigDict, workdir: str, *, spec: str = "",
        log: Callable[[str], None] = print) -> dict[str, list[str]]:
    """Every trial of the lottery config; returns {'ran', 'skipped'} run names."""
    s = settings(lottery)
    trials = sweep.expand(lottery)
    runner = _Runner(lottery, workdir, spec, sum(len(runs(t, s)) for t in trials), log)
    for trial in trials:
        run_trial(lottery, trial, s, runner)
    store.write(workdir)
    return runner.outcome


# ---------------------------------------------------------------------------
# Analysis: the table and the plot.

def summarise(df) -> "Any":
    """Mean (and, over seeds, min and max) test accuracy per round and kind."""
    grouped = df.groupby(["round", "kind"], sort=True)
    out = grouped.agg(weights_remaining=("weights_remaining", "mean"),
                      accuracy=("final_eval_accuracy", "mean"),
                      accuracy_min=("final_eval_accuracy", "min"),
                      accuracy_max=("final_eval_accuracy", "max"),
                      runs=("final_eval_accuracy", "size"))
    return out.reset_index()


def table(df) -> str:
    """Round, weights remaining and test accuracy of every kind, as fixed-width text."""
    s = summarise(df)
    kinds = [k for k in ("dense", "rewind", *CONTROLS) if k in set(s.kind)]
    lines = [f"{'round':>5} {'remaining':>9}  " + "  ".join(f"{k:>11}" for k in kinds)]
    for r, sub in s.groupby("round"):
        acc = dict(zip(sub.kind, sub.accuracy))
        cells = [f"{100 * acc[k]:10.2f}%" if k in acc else f"{'':>11}" for k in kinds]
        lines.append(f"{r:5d} {100 * sub.weights_remaining.iloc[0]:8.2f}%  " + "  ".join(cells))
    return "\n".join(lines)


def plot(df, stem: str) -> list[str]:
    """Test accuracy against the fraction of weights remaining (log axis, decreasing
    to the right), one line per kind, the dense network as a dashed baseline."""
    import numpy as np
    import pandas as pd
    from matplotlib.ticker import FixedLocator, NullLocator
    from vision_jax.scaling import plots
    plt = plots.plt
    s = summarise(df)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    dense = s[s.kind == "dense"]
    if len(dense):
        ax.axhline(100 * dense.accuracy.iloc[0], color="k", ls="--", lw=1,
                   label=f"dense ({100 * dense.accuracy.iloc[0]:.2f}%)")
    k = int(df.rewind_step.iloc[0]) if "rewind_step" in df else None
    labels = {**LABELS, "rewind": f"winning ticket (rewind to step {k})"}
    for i, kind in enumerate(n for n in ("rewind", *CONTROLS) if n in set(s.kind)):
        # Every line starts from the dense network at 100%.
        sub = pd.concat([dense, s[s.kind == kind]]).sort_values("weights_remaining",
                                                                 ascending=False)
        x, y = 100 * sub.weights_remaining.to_numpy(), 100 * sub.accuracy.to_numpy()
        err = 100 * np.stack([sub.accuracy - sub.accuracy_min, sub.accuracy_max - sub.accuracy])
        ax.errorbar(x, y, yerr=err if sub.runs.max() > 1 else None, color=f"C{i}", marker="o",
                    ms=4, capsize=2, label=labels[kind])
    ticks = sorted(set(np.round(100 * s.weights_remaining.to_numpy(), 1)))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=7, rotation=45)
    ax.invert_xaxis()  # pruning goes to the right
    ax.set(xlabel="weights remaining (% of the prunable kernels)", ylabel="test accuracy (%)",
           title="lottery tickets: iterative magnitude pruning")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return plots._save(fig, stem)


def analyse(workdir: str, log: Callable[[str], None] = print) -> list[str]:
    """Rebuilds the results table and the plot from the finished runs; the plot's paths."""
    df = store.write(workdir)
    if df.empty:
        log("[lottery] no finished runs yet")
        return []
    log(table(df))
    paths = plot(df, os.path.join(workdir, "plots", PLOT_NAME))
    log(f"[lottery] results in {os.path.join(workdir, store.RESULTS_JSONL)}; plot {paths[0]}")
    return paths


# ---------------------------------------------------------------------------
# Command line.

def _add_flags(parser: argparse.ArgumentParser) -> None:
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--dry-run", action="store_true",
                      help="list the runs and which have finished; train nothing")
    only.add_argument("--analyse-only", action="store_true",
                      help="only rebuild the results table and plot from finished runs")


def main(argv: list[str]) -> int:
    """--config=configs/scaling/lottery.py[:arg] --workdir=DIR of the runs and results."""
    from vision_jax import checkpoint as ckpt_lib, data, train
    try:
        lottery, args = config_lib.parse_config_args(
            argv, "vision-jax lottery", extra=_add_flags,
            description=__doc__.split("\n")[0])
        # The pruned runs all compile the same programs (the mask is state, not code).
        sweep.use_compile_cache(os.path.join(args.workdir, "jax_cache"))
        s = settings(lottery)
        if args.dry_run:
            for trial in sweep.expand(lottery):
                for r in runs(trial, s):
                    done = store.is_finished(store.trial_dir(args.workdir, r.name))
                    print(f"{'done' if done else 'todo'}  {r.name}")
            return 0
        if not args.analyse_only:
            start = time.perf_counter()
            outcome = run(lottery, args.workdir, spec=sweep.command_spec(args))
            print(f"[lottery] {len(outcome['ran'])} run(s) trained, {len(outcome['skipped'])} "
                  f"already finished, in {time.perf_counter() - start:.0f}s")
        analyse(args.workdir)
    except (ValueError, ckpt_lib.CheckpointError, data.DatasetNotFoundError,
            train.TrainingDiverged) as e:  # ConfigError and SweepError are ValueErrors
        print(f"vision-jax lottery: error: {e}", file=sys.stderr)
        return 2
    return 0
