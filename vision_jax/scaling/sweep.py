"""`vision-jax sweep`: many trials of one config through the one trainer.

A sweep config (configs/scaling/*.py) defines `get_config(arg)` returning:

  base       a config spec, e.g. 'configs/default.py' or 'configs/vit.py:Ti/4,dataset=shapes'
  overrides  'key=value' strings applied to every trial
  axes       ordered (name, values) pairs. A name is a config key path
             ('model.channels', 'data.num_train_examples', 'seed'); a value is
             what that key is set to, or a dict of several key paths set
             together (a ViT's width with its number of heads), or a point of
             a model scaling rule, {'rule': 'efficientnet', 'phi': 1}: see
             vision_jax/scaling/rules.py (compound scaling as one axis)
  mode       'grid' (the Cartesian product, last axis fastest) or 'random':
             `num_trials` distinct points of that product drawn with `seed`
             (random search, Bergstra & Bengio 2012, over the listed values)
  fit        optional: a dict, or a list of dicts, of {x, y, form, groupby}
             fitted with vision_jax.scaling.fit after the sweep and plotted
  plots      optional: a list of {kind: 'curves' | 'versus' | 'custom', ...}, see `analyse`

Each trial is named after its axis values ('channels=8x16x32,convs_per_stage=2'),
trains in DIR/trials/<name> and is skipped once its summary.json exists; an
interrupted trial resumes from its own checkpoints because the trainer does.
After every trial the store (vision_jax/scaling/store.py) is rebuilt.

    vision-jax sweep --config=configs/scaling/demo.py --sweepdir=workdirs/sweeps/demo
    vision-jax sweep --config=configs/scaling/demo.py --sweepdir=... --dry-run
    vision-jax sweep ... --only-index 3            # one trial (a SLURM array task)
    vision-jax sweep ... --processes 2             # trials as local subprocesses
    vision-jax sweep ... --executor=ray            # trials as Ray tasks (RAY_ADDRESS or local)
    vision-jax sweep ... --analyse-only            # rebuild the store, refit and replot
    vision-jax sweep ... --list                    # INDEX<tab>done|todo<tab>NAME per trial
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import functools
import itertools
import json
import math
import os
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from ml_collections import ConfigDict

from vision_jax import config as config_lib
from vision_jax.scaling import rules, store

MODES = ("grid", "random")


class SweepError(ValueError):
    """A sweep config that cannot run; raised before any trial starts."""


@dataclasses.dataclass(frozen=True)
class Trial:
    """One point of a sweep.

    `values` maps each config key path the sweep sets to its value (a grouped
    axis contributes several keys); `overrides` are the strings handed to
    `config.apply_overrides` (or to `vision-jax train` as --config.KEY=VALUE):
    the sweep's shared overrides followed by the trial's own. `labels` are
    columns that describe the trial without setting a config key: a scaling
    rule's name and coefficient ('compound.rule', 'compound.phi').
    """

    index: int
    name: str
    values: dict[str, Any]
    overrides: tuple[str, ...]
    labels: dict[str, Any] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------
# Expansion: sweep config -> trials.

def _format_value(value: Any) -> str:
    """A value as `config.apply_overrides` parses it back (bools, tuples, floats)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return repr(tuple(value))
    return repr(value) if isinstance(value, float) else str(value)


def _name_part(value: Any) -> str:
    """A value as it appears in a trial's (directory) name: short, no slashes or spaces."""
    if isinstance(value, (list, tuple)):
        return "x".join(_name_part(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("/", "-").replace(" ", "")


def _axes(sweep: ConfigDict) -> list[tuple[str, list]]:
    axes = sweep.get("axes")
    if not axes:
        raise SweepError("the sweep config sets no axes; give axes as (name, values) pairs")
    axes = _plain(axes)  # a mapping is fine when no axis name has a dot (e.g. 'seed')
    pairs = list(axes.items()) if isinstance(axes, Mapping) else list(axes)
    out = []
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise SweepError(f"sweep axis {pair!r} is not a (name, values) pair")
        name, values = pair
        if not isinstance(values, (list, tuple)) or not values:
            raise SweepError(f"sweep axis {name!r} needs a non-empty list of values, "
                             f"got {values!r}")
        out.append((str(name), list(values)))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise SweepError(f"sweep axes {names} repeat a name")
    return out


def _settings(axis: str, value: Any, base: Callable[[], ConfigDict]
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config keys, labels) of one axis value: {axis: value}, the dict of a grouped
    axis, or what a scaling-rule point expands to on the base config `base()`."""
    if isinstance(value, Mapping) and rules.RULE_KEY in value:
        try:
            return rules.settings(value, base(), axis=axis)
        except ValueError as e:
            raise SweepError(f"sweep axis {axis!r}, value {dict(value)!r}: {e}") from None
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}, {}
    return {axis: value}, {}


def _points(sweep: ConfigDict, axes: list[tuple[str, list]]) -> list[tuple[int, ...]]:
    """Index tuples into the axes' value lists, in trial order."""
    sizes = [len(v) for _, v in axes]
    total = math.prod(sizes)
    mode = sweep.get("mode", "grid")
    if mode == "grid":
        return list(itertools.product(*(range(s) for s in sizes)))
    if mode != "random":
        raise SweepError(f"sweep mode {mode!r} is not valid; choose one of {list(MODES)}")
    n = int(sweep.get("num_trials", 0) or 0)
    if not 0 < n <= total:
        raise SweepError(f"random mode needs 0 < num_trials <= {total} (the grid's size), "
                         f"got num_trials={n}")
    # Distinct grid points, drawn without replacement: a repeated point would
    # be the same trial (same name, same workdir) and waste a slot.
    flat = np.random.default_rng(int(sweep.get("seed", 0))).choice(total, n, replace=False)
    return [tuple(int(i) for i in np.unravel_index(f, sizes)) for f in flat]


def _names(values_per_trial: list[list[tuple[str, dict[str, Any], dict[str, Any]]]]) -> list[str]:
    """Readable, unique names: 'leaf=value' per axis, joined by commas.

    The leaf of a key path ('channels' of 'model.channels') is used unless two
    axes share it; a scaling-rule point is named by its labels
    ('rule=efficientnet,phi=1'); trials that would still collide (never in
    grid mode) get their index appended."""
    leaves: dict[str, str] = {}
    for trial in values_per_trial[:1]:
        short = {axis: axis.split(".")[-1] for axis, _, _ in trial}
        clash = len(set(short.values())) != len(short)
        leaves = {a: (a if clash else s) for a, s in short.items()}
    names = []
    for trial in values_per_trial:
        parts = []
        for axis, settings, labels in trial:
            if list(settings) == [axis]:
                parts.append(f"{leaves[axis]}={_name_part(settings[axis])}")
            else:
                parts.append(",".join(f"{k.split('.')[-1]}={_name_part(v)}"
                                      for k, v in (labels or settings).items()))
        names.append(",".join(parts))
    if len(set(names)) != len(names):
        names = [f"{n},i={i}" for i, n in enumerate(names)]
    return names


def expand(sweep: ConfigDict, *, check: bool = True) -> list[Trial]:
    """The trials of a sweep config, in order.

    With `check`, every trial's overrides are applied to the base config here,
    so a misspelt axis or a value of the wrong type stops the sweep before
    anything trains, with an error naming the axis.
    """
    axes = _axes(sweep)
    shared = tuple(sweep.get("overrides", ()) or ())
    base = functools.cache(lambda: base_config(sweep))  # loaded once, if a rule needs it
    chosen = []
    for point in _points(sweep, axes):
        chosen.append([(axis, *_settings(axis, values[i], base))
                       for (axis, values), i in zip(axes, point)])
    trials = []
    for index, (name, trial) in enumerate(zip(_names(chosen), chosen)):
        values = {k: v for _, settings, _ in trial for k, v in settings.items()}
        labels = {k: v for _, _, axis_labels in trial for k, v in axis_labels.items()}
        overrides = shared + tuple(f"{k}={_format_value(v)}" for k, v in values.items())
        trials.append(Trial(index, name, values, overrides, labels))
    if check:
        for trial in trials:
            trial_config(sweep, trial)
    return trials


# The repository root: a base spec like 'configs/default.py' is found from here
# when it is not relative to the working directory.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def base_spec(sweep: ConfigDict) -> str:
    """The sweep's base config spec, its path resolved against the cwd, else the repo root."""
    spec = sweep.get("base")
    if not spec:
        raise SweepError("the sweep config sets no base config spec (e.g. 'configs/default.py')")
    path, sep, arg = spec.partition(":")
    if not os.path.isfile(path) and os.path.isfile(os.path.join(_ROOT, path)):
        path = os.path.join(_ROOT, path)
    return path + sep + arg


def base_config(sweep: ConfigDict) -> ConfigDict:
    spec = base_spec(sweep)
    try:
        config = config_lib.load_config(spec)
        config_lib.apply_overrides(config, list(sweep.get("overrides", ()) or ()))
    except config_lib.ConfigError as e:
        raise SweepError(f"sweep base {spec!r} with its overrides: {e}") from None
    return config


def trial_config(sweep: ConfigDict, trial: Trial) -> ConfigDict:
    """The full trainer config of one trial, loaded afresh (config files are cheap
    to execute, and a fresh load keeps the base's typed field references)."""
    config = base_config(sweep)
    for key, value in trial.values.items():
        try:
            config_lib.apply_overrides(config, [f"{key}={_format_value(value)}"])
        except config_lib.ConfigError as e:
            raise SweepError(f"sweep axis key {key!r} (trial {trial.name!r}): {e}") from None
    return config


def load_sweep(spec: str) -> ConfigDict:
    try:
        return config_lib.load_config(spec)
    except config_lib.ConfigError as e:
        raise SweepError(str(e)) from None


# ---------------------------------------------------------------------------
# Running trials.

def describe(config: ConfigDict) -> dict[str, int]:
    """Parameter counts of a trial's model, from abstract shapes (nothing is allocated)."""
    from vision_jax import train
    params = train.setup(config).abstract.params
    return store.parameter_counts(params, config.model.name)


def write_trial_file(sweepdir: str, sweep_spec: str, trial: Trial, config: ConfigDict) -> str:
    workdir = store.trial_dir(sweepdir, trial.name)
    os.makedirs(workdir, exist_ok=True)
    # Labels (a scaling rule's name and coefficient) become store columns like the values.
    record = {"name": trial.name, "index": trial.index, "sweep": sweep_spec,
              "values": {**trial.labels, **trial.values}, "overrides": list(trial.overrides),
              **describe(config)}
    with open(os.path.join(workdir, store.TRIAL_FILE), "w") as f:
        json.dump(record, f, indent=2)
    return workdir


def use_compile_cache(directory: str) -> None:
    """Points JAX's persistent compilation cache at `directory` unless one is set.

    The trials of a sweep (and the runs of a lottery) mostly compile the same
    programs: every seed, data size, label-noise level or pruning mask gives
    the same shapes. With the cache, the second trial's seconds of XLA become
    a file lookup. Every program is cached, not only those that took JAX's
    default second to compile: on a CPU the state's initialiser, the eval
    step and the small jits around them each compile in well under a second,
    and together they are most of a small trial's start-up (docs/BENCH.md).
    Subprocess trials inherit all of it through the environment.
    """
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", directory)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", jax.config.jax_compilation_cache_dir)
    # -1: no size floor (0 would let JAX pick one for the file system).
    for flag, value in (("jax_persistent_cache_min_compile_time_secs", 0.0),
                        ("jax_persistent_cache_min_entry_size_bytes", -1)):
        if flag.upper() not in os.environ:  # a value the user chose wins
            jax.config.update(flag, value)
            os.environ[flag.upper()] = str(value)


def _train_command(sweep: ConfigDict, trial: Trial, workdir: str) -> list[str]:
    """The `vision-jax train` arguments of a trial (without the interpreter)."""
    path, sep, arg = base_spec(sweep).partition(":")
    return ["-m", "vision_jax.cli", "train", f"--config={os.path.abspath(path)}{sep}{arg}",
            f"--workdir={workdir}", *(f"--config.{o}" for o in trial.overrides)]


class TrialKilled(RuntimeError):
    """A trial's process ended by a signal (preemption, the OOM killer, SIGKILL):
    the Ray executor retries these; a trial that exits with an error is not retried."""


def _die_with_parent() -> None:
    """preexec_fn: the kernel kills the trial when the process that started it dies
    (Linux PR_SET_PDEATHSIG), so a Ray worker lost mid-trial leaves no orphan
    writing into the workdir that the retry resumes from."""
    import ctypes
    import signal
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _run_subprocess(sweep: ConfigDict | None, trial: Trial | None, workdir: str,
                    timeout: float | None, *, args: Sequence[str] = (),
                    env: Mapping[str, str] | None = None,
                    die_with_parent: bool = False) -> None:
    """`vision-jax train` on the trial, its output appended to <workdir>/train.log.

    `args` replaces the command built from (sweep, trial) when the caller
    built it elsewhere (the Ray driver); `env` adds environment variables."""
    cmd = [sys.executable, *(args or _train_command(sweep, trial, workdir))]
    with open(os.path.join(workdir, "train.log"), "a") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                              env={**os.environ, **env} if env else None,
                              preexec_fn=_die_with_parent if die_with_parent else None)
    if proc.returncode != 0:
        error = TrialKilled if proc.returncode < 0 else RuntimeError
        raise error(f"`{' '.join(cmd[2:4])} ...` exited {proc.returncode}; "
                    f"see {os.path.join(workdir, 'train.log')}")


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """Resources and retries of each trial as a Ray task (see `_run_ray`)."""
    address: str | None = None  # None: $RAY_ADDRESS, else a local instance
    cpus: float = 1.0
    gpus: float = 0.0
    tpus: float = 0.0
    max_retries: int = 3


def _run_ray(sweep: ConfigDict, todo: list[tuple[Trial, ConfigDict, str]],
             finish: Callable[[Trial, BaseException | None], None], options: RayOptions,
             trial_timeout: float | None) -> None:
    """Each trial as one Ray task running `vision-jax train` (`_run_subprocess`).

    A task asks for `options.cpus` CPUs, `options.gpus` GPUs and `options.tpus`
    of the 'TPU' resource that Ray's TPU hosts advertise. Ray retries a task up
    to `options.max_retries` times when its worker or node dies and when the
    trial's process was killed by a signal (`TrialKilled`); each retry resumes
    from the trial's own checkpoints in its workdir. Trials that fail with an
    error are not retried. The driver writes the store as trials finish, as
    the local executor does, so the sweep directory must be one path that the
    driver and every worker see (shared storage on a cluster).
    """
    try:
        import ray
    except ImportError:
        raise SweepError("--executor=ray needs Ray: pip install 'vision_jax[ray]'") from None
    started = not ray.is_initialized()
    if started:  # address None: Ray reads $RAY_ADDRESS, else starts a local instance
        ray.init(address=options.address, log_to_driver=False)
    resources = {"TPU": options.tpus} if options.tpus else None
    task = ray.remote(_run_subprocess).options(
        num_cpus=options.cpus, num_gpus=options.gpus, resources=resources,
        max_retries=options.max_retries, retry_exceptions=[TrialKilled])
    # The command is built here, with absolute paths: a worker's cwd is not ours.
    env = {k: os.environ[k] for k in ("JAX_COMPILATION_CACHE_DIR",) if k in os.environ}
    pending = {task.remote(None, None, os.path.abspath(w), trial_timeout, env=env,
                           args=_train_command(sweep, t, os.path.abspath(w)),
                           die_with_parent=sys.platform.startswith("linux")): t
               for t, _, w in todo}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            trial = pending.pop(done[0])
            try:
                ray.get(done[0])
                error = None
            except Exception as e:  # noqa: BLE001 - one bad trial must not stop the sweep
                error = e
            finish(trial, error)
    finally:
        if started:
            ray.shutdown()


def run(sweep: ConfigDict, sweepdir: str, trials: Sequence[Trial], *, sweep_spec: str = "",
        processes: int = 0, trial_timeout: float | None = None,
        progress: bool = True, ray: RayOptions | None = None) -> dict[str, list[str]]:
    """Runs the unfinished `trials`; returns {'ran', 'skipped', 'failed'} trial names.

    processes=0 trains in this process, one trial after another; N > 0 runs
    up to N `vision-jax train` subprocesses at a time (each its own JAX
    runtime, so a crash or timeout only loses that trial); `ray` runs each as
    a Ray task instead (`_run_ray`). A failed trial is reported and the
    others go on.
    """
    from tqdm.auto import tqdm
    from vision_jax import tasks

    if trial_timeout and not (processes or ray):
        raise SweepError("--trial-timeout needs --processes N >= 1 or --executor=ray: a trial running in this "
                         "process cannot be stopped safely")
    outcome: dict[str, list[str]] = {"ran": [], "skipped": [], "failed": []}
    todo = []
    for trial in trials:
        if store.is_finished(store.trial_dir(sweepdir, trial.name)):
            outcome["skipped"].append(trial.name)
            continue
        config = trial_config(sweep, trial)
        # Prepared here, once per dataset variant, so that concurrent trials
        # never race to generate the same files (the task knows its data: an
        # LM task builds its text corpus).
        tasks.get_class(config.task).prepare_data(config)
        todo.append((trial, config, write_trial_file(sweepdir, sweep_spec, trial, config)))

    bar = tqdm(total=len(trials), initial=len(outcome["skipped"]), unit="trial",
               disable=not progress, dynamic_ncols=True, desc="sweep")

    def finish(trial: Trial, error: BaseException | None) -> None:
        if error is None:
            outcome["ran"].append(trial.name)
        else:
            outcome["failed"].append(trial.name)
            tqdm.write(f"[sweep] trial {trial.name} failed: {error}")
            with open(os.path.join(store.trial_dir(sweepdir, trial.name), "error.txt"), "w") as f:
                f.write("".join(traceback.format_exception(error)))
        store.write(sweepdir)
        bar.update(1)

    if ray is not None:
        _run_ray(sweep, todo, finish, ray, trial_timeout)
    elif processes:
        with concurrent.futures.ThreadPoolExecutor(processes) as pool:
            futures = {pool.submit(_run_subprocess, sweep, t, w, trial_timeout): t
                       for t, _, w in todo}
            for future in concurrent.futures.as_completed(futures):
                finish(futures[future], future.exception())
    else:
        from vision_jax import train
        for trial, config, workdir in todo:
            bar.set_postfix_str(trial.name)
            try:
                train.train(config, workdir)
                error = None
            except Exception as e:  # noqa: BLE001 - one bad trial must not stop the sweep
                error = e
            finish(trial, error)
    bar.close()
    store.write(sweepdir)
    return outcome


# ---------------------------------------------------------------------------
# Analysis: fits and plots after the sweep.

def _plain(spec: Any) -> Any:
    return spec.to_dict() if isinstance(spec, ConfigDict) else spec


def _as_list(spec: Any) -> list[dict]:
    """A dict, or a list of dicts, as a list of plain dicts."""
    spec = _plain(spec)
    if not spec:
        return []
    if isinstance(spec, Mapping):
        return [dict(spec)]
    return [dict(_plain(s)) for s in spec]


def _scalar(value: Any) -> float:
    """A sweep value as a number on a plot axis: a sequence (CNN channels) by its
    first entry, the base width its other stages are multiples of."""
    if isinstance(value, (list, tuple)):
        return float(value[0])
    return float(value)


def _train_tail(df, last: int):
    """final_train_loss and final_train_error as the mean over each trial's
    last `last` logged training batches instead of the last one alone.

    The trainer evaluates only the eval split, so a trial's train error comes
    from its training batches; logging every step and averaging one epoch's
    worth of batches gives the error on the whole training set (under the
    last epoch's parameters) rather than on one batch of it."""
    df = df.copy()
    for column, i in (("final_train_loss", 1), ("final_train_error", 2)):
        df[column] = [float(np.mean([row[i] for row in curve[-last:]])) if len(curve) else np.nan
                      for curve in df["train_curve"]]
    return df


def _versus(df, spec: Mapping[str, Any], out: str) -> tuple[list[str], dict[str, Any]]:
    """One 'versus' plot and its table (x, and each y, sorted by x) for fits.json.

    `interpolation_error` (a fraction) marks the interpolation threshold
    (Nakkiran et al. 2020, sec. 5: where the model first fits its training
    set): the smallest x whose final_train_error is at most that value."""
    from vision_jax.scaling import plots
    x = spec["x"]
    ycols = list(spec.get("y", ("final_eval_error",)))
    if spec.get("train_tail"):
        df = _train_tail(df, int(spec["train_tail"]))
    xs = df[x].map(_scalar).to_numpy(float)
    order = np.argsort(xs, kind="stable")
    table: dict[str, Any] = {"name": spec.get("name", f"versus_{x}"), "x": x,
                             "values": xs[order].tolist(),
                             **{y: df[y].to_numpy(float)[order].tolist() for y in ycols}}
    marks = {}
    if spec.get("interpolation_error") is not None:
        train = df["final_train_error"].to_numpy(float)[order]
        fits = np.flatnonzero(train <= float(spec["interpolation_error"]))
        if len(fits):
            table["interpolation_threshold"] = marks["interpolation threshold"] = \
                float(xs[order][fits[0]])
    labels = dict(spec.get("labels", {}))
    paths = plots.plot_versus(
        xs, {labels.get(y, y): df[y].to_numpy(float) for y in ycols},
        hue=None if not spec.get("hue") else df[spec["hue"]].map(_name_part).to_numpy(),
        xlabel=spec.get("xlabel", x), logx=spec.get("logx", True), marks=marks,
        stem=os.path.join(out, table["name"]))
    return paths, table


def _joint_fit(df, spec: Mapping[str, Any], out: str) -> tuple[list[str], dict[str, Any]]:
    """L(N, D) = E + A/N^alpha + B/D^beta over all trials (Hoffmann et al. 2022,
    approach 3, with bootstrap CIs: vision_jax.scaling.fit.fit_chinchilla) and
    its plot: loss against N, one fitted curve per value of D."""
    from vision_jax.scaling import fit as fit_lib, plots
    y = spec.get("y", "final_eval_loss")
    n_col, d_col = spec.get("params", "params"), spec.get("examples", "examples_seen")
    n = df[n_col].map(_scalar).to_numpy(float)
    d = df[d_col].map(_scalar).to_numpy(float)
    ys = df[y].to_numpy(float)
    if len(np.unique(d)) < 2 or len(np.unique(n)) < 2:
        raise SweepError(f"a chinchilla fit needs at least two values of both {n_col!r} and "
                         f"{d_col!r} among the finished trials")
    law = fit_lib.fit_form("chinchilla", {"params": n, "examples": d}, ys,
                           bootstrap=int(spec.get("bootstrap", 200)))
    entry = {**law.to_json(), "x": [n_col, d_col], "y": y, "group": "all"}
    print(f"[sweep] joint fit, N = {n_col}, D = {d_col}: {law.summary()}")
    paths = plots.plot_chinchilla_groups(
        n, d, ys, law, xlabel=f"parameters N ({n_col})", ylabel=y,
        dlabel=d_col.split(".")[-1], stem=os.path.join(out, spec.get("name", f"{y}_vs_N_D")))
    return paths, entry


def _custom(df, spec: Mapping[str, Any], out: str) -> tuple[list[str], dict[str, Any]]:
    """A 'custom' plots entry: `function` ('package.module:name') called as
    fn(df, out=out, **the entry's other keys) -> (paths, table)."""
    import importlib
    spec = dict(spec)
    spec.pop("kind")
    target = str(spec.pop("function", ""))
    module, _, name = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise SweepError(f"sweep plot kind 'custom': function {target!r} is not "
                         f"'package.module:name' of an importable function ({e})") from None
    return fn(df, out=out, **spec)


def analyse(sweep: ConfigDict, sweepdir: str) -> dict[str, Any]:
    """Fits and plots the finished trials into DIR/plots; writes DIR/fits.json.

    fit entries: {x: column (default 'params'), y (default 'final_eval_loss'),
    form (a vision_jax.scaling.fit form, default 'power'), groupby (optional
    column: one fit per value, e.g. per data size), plots (extra x columns to
    draw, each with its own fits)}. With form 'chinchilla', x is ignored: the
    entry fits L(N, D) to the columns `params` (default 'params') and
    `examples` (default 'examples_seen') over all trials, and draws loss
    against N with one fitted curve per value of D.
    plots entries: {kind: 'curves', hue: column} draws train and eval error
    against step for every trial; {kind: 'versus', x: column, y: [columns],
    hue: column, labels: {column: legend label}, train_tail: k,
    interpolation_error: e} draws final metrics against a swept value (see
    `_versus`); its table goes into fits.json. {kind: 'custom', function:
    'package.module:name', ...} calls that function as fn(df, out=DIR/plots,
    **the entry's other keys) for an analysis of its own (e.g.
    vision_jax.scaling.crossover); it returns (paths, table), and the table goes
    into fits.json's 'custom' list.
    """
    from vision_jax.scaling import fit as fit_lib, plots
    df = store.load(sweepdir)
    out = os.path.join(sweepdir, "plots")
    report: dict[str, Any] = {"trials": len(df), "fits": [], "plots": []}
    if df.empty:
        return report
    for spec in _as_list(sweep.get("fit")):
        y = spec.get("y", "final_eval_loss")
        form = spec.get("form", "power")
        groupby = spec.get("groupby")
        if form == "chinchilla":
            paths, entry = _joint_fit(df, spec, out)
            report["plots"] += paths
            report["fits"].append(entry)
            continue
        for x in [spec.get("x", "params"), *spec.get("plots", ())]:
            series = []
            groups = (df.groupby(df[groupby].map(_name_part), sort=False) if groupby
                      else [("all", df)])
            for label, sub in groups:
                xs = sub[x].map(_scalar).to_numpy(float)
                ys = sub[y].to_numpy(float)
                law = None
                if len(np.unique(xs)) >= 3:
                    law = fit_lib.fit_form(form, {"x": xs}, ys, x_name=x)
                    entry = {"x": x, "y": y, "group": f"{groupby}={label}" if groupby else "all",
                             **law.to_json()}
                    report["fits"].append(entry)
                    print(f"[sweep] {entry['group']}: {law.summary()}")
                series.append({"label": f"{groupby.split('.')[-1]}={label}" if groupby else "",
                               "x": xs, "y": ys, "fit": law})
            report["plots"] += plots.plot_law_groups(
                series, xlabel=x, ylabel=y, stem=os.path.join(out, f"{y}_vs_{x}"))
    for spec in _as_list(sweep.get("plots")):
        kind = spec.get("kind")
        if kind == "curves":
            report["plots"] += plots.plot_curves(
                df, hue=spec.get("hue"), stem=os.path.join(out, spec.get("name", "curves")))
        elif kind == "versus":
            paths, table = _versus(df, spec, out)
            report["plots"] += paths
            report.setdefault("versus", []).append(table)
        elif kind == "custom":
            paths, table = _custom(df, spec, out)
            report["plots"] += paths
            report.setdefault("custom", []).append(table)
        else:
            raise SweepError(f"sweep plot kind {kind!r} is not valid; choose 'curves', "
                             "'versus' or 'custom'")
    with open(os.path.join(sweepdir, "fits.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report


# ---------------------------------------------------------------------------
# Command line.

def _add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sweepdir", required=True, help="directory of the trials and results")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the trials and their overrides; train nothing")
    parser.add_argument("--list", action="store_true",
                        help="print one tab-separated line per trial, INDEX STATUS NAME "
                             "(STATUS 'done' or 'todo'), for launch scripts; train nothing")
    parser.add_argument("--only", action="append", default=[], metavar="TRIAL",
                        help="run only this trial (by name; repeatable)")
    parser.add_argument("--only-index", type=int, action="append", default=[], metavar="I",
                        help="run only trial number I (0-based; repeatable), e.g. "
                             "$SLURM_ARRAY_TASK_ID")
    parser.add_argument("--processes", type=int, default=0,
                        help="run trials as up to N local `vision-jax train` subprocesses "
                             "(default 0: in this process, one after another)")
    parser.add_argument("--trial-timeout", type=float, default=None, metavar="SECONDS",
                        help="stop a trial after this long (needs --processes or "
                             "--executor=ray); it resumes from its last checkpoint on the "
                             "next call")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local: in this process or --processes N subprocesses; ray: each "
                             "trial a Ray task (docs/SCALING.md, 'Sweeps on a Ray cluster')")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster to join (default: $RAY_ADDRESS, else a local instance)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray CPUs per trial")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray GPUs per trial")
    parser.add_argument("--tpus-per-trial", type=float, default=0.0,
                        help="Ray 'TPU' resource (chips of one host) per trial")
    parser.add_argument("--max-retries", type=int, default=3,
                        help="Ray: retries of a trial whose worker, node or process was lost")
    parser.add_argument("--analyse-only", action="store_true",
                        help="only rebuild the results, fits and plots from finished trials")
    parser.add_argument("--no-analysis", action="store_true",
                        help="skip the fits and plots (e.g. in SLURM array tasks)")


def command_spec(args) -> str:
    """The sweep (or lottery) config as the command line gave it, overrides included."""
    return " ".join([args.config, *(f"--config.{o}" for o in args.overrides)])


def main(argv: list[str]) -> int:
    """--config=configs/scaling/demo.py[:arg] --sweepdir=DIR of the trials and results."""
    try:
        sweep, args = config_lib.parse_config_args(
            argv, "vision-jax sweep", extra=_add_flags, needs_workdir=False,
            description=__doc__.split("\n")[0])
        trials = expand(sweep)
        names = {t.name for t in trials}
        for name in args.only:
            if name not in names:
                raise SweepError(f"--only {name!r} is not a trial of this sweep; "
                                 f"trials: {sorted(names)}")
        for i in args.only_index:
            if not 0 <= i < len(trials):
                raise SweepError(f"--only-index {i} is out of range: the sweep has "
                                 f"{len(trials)} trials (0..{len(trials) - 1})")
        if args.only or args.only_index:
            trials = [t for t in trials if t.name in args.only or t.index in args.only_index]

        if args.dry_run or args.list:
            for t in trials:
                done = store.is_finished(store.trial_dir(args.sweepdir, t.name))
                status = "done" if done else "todo"
                if args.list:  # read by launch/tpu_sweep.sh: keep the format fixed
                    print(f"{t.index}\t{status}\t{t.name}")
                    continue
                print(f"{t.index:3d} {status}  {t.name}")
                print(f"      {sweep.base} " + " ".join(f"--config.{o}" for o in t.overrides))
            return 0
        outcome = {"failed": []}
        if args.analyse_only:
            # Trials that ran elsewhere (SLURM tasks, TPU VMs) each rewrote the
            # store as they finished; rebuild it once from every workdir.
            store.write(args.sweepdir)
        else:
            start = time.perf_counter()
            use_compile_cache(os.path.join(args.sweepdir, "jax_cache"))
            ray = None
            if args.executor == "ray":
                if args.processes:
                    raise SweepError("--processes is for the local executor; with "
                                     "--executor=ray, Ray's resources decide how many run")
                ray = RayOptions(args.ray_address, args.cpus_per_trial, args.gpus_per_trial,
                                 args.tpus_per_trial, args.max_retries)
            outcome = run(sweep, args.sweepdir, trials, sweep_spec=command_spec(args),
                          processes=args.processes, trial_timeout=args.trial_timeout, ray=ray)
            print(f"[sweep] {len(outcome['ran'])} trial(s) ran, {len(outcome['skipped'])} "
                  f"already finished, {len(outcome['failed'])} failed, in "
                  f"{time.perf_counter() - start:.0f}s; results in "
                  f"{os.path.join(args.sweepdir, store.RESULTS_JSONL)}")
        if not args.no_analysis:
            report = analyse(sweep, args.sweepdir)
            if report["plots"]:
                print(f"[sweep] plots in {os.path.join(args.sweepdir, 'plots')}")
    except (SweepError, config_lib.ConfigError) as e:
        print(f"vision-jax sweep: error: {e}", file=sys.stderr)
        return 2
    return 1 if outcome["failed"] else 0
