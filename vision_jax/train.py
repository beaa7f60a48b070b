"""The one trainer: `train(config, workdir)`, for every objective.

Stages: distributed set-up -> config validation -> mesh -> data -> abstract
state and its shardings -> sharded init or resume -> AOT compile -> loop
(dispatch step t, then read step t-1's metrics) -> final eval and summary.

The trainer knows no objective: `config.task` names a task
(vision_jax/tasks/) that owns the models, the loss and its metrics, eval and
sampling. The trainer owns the mesh, shardings, the optimizer (or one per
group: a GAN's generator and discriminator), the EMA of the parameters,
gradient accumulation, checkpoints, progress and metrics.

Resume order, tried in turn: the newest restorable checkpoint in
`<workdir>/checkpoints`, else `config.resume_from` (a full state), else
`config.init_from` (parameters only), else a fresh init.

With `config.prune.mask` set, a run that starts from step 0 (fresh or
init_from) has its parameters multiplied by the mask, and the optimizer keeps
pruned weights at zero (vision_jax/prune.py); the mask lives in the optimizer
state, so a resumed run (workdir or resume_from) carries its own.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import math
import os
import sys
import time
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from vision_jax import checkpoint as ckpt_lib
from vision_jax import config as config_lib
from vision_jax import data as data_lib
from vision_jax import distributed, energy, flops, metrics as metrics_lib, optim, prune, sharding, tasks

log = logging.getLogger("vision_jax")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any       # one tree, or {group: tree} for tasks with several optimizers
    model_state: Any  # non-trainable collections, e.g. batch_stats
    opt_state: Any    # one optax state, or {group: state}
    rng: jax.Array
    ema: Any = flax.struct.field(default_factory=dict)  # EMA of params; {} when off


# ---------------------------------------------------------------------------
# The pure train step: any task, any number of optimizer groups
# ---------------------------------------------------------------------------

def _value_and_grad(objective, params, variables, batch, rng, accum: int):
    """(loss, metrics, new variables, grads) of `objective` over `accum` micro-batches."""
    grad_fn = jax.value_and_grad(objective, has_aux=True)
    if accum == 1:
        (loss, (metrics, variables)), grads = grad_fn(params, variables, batch, rng)
        return loss, metrics, variables, grads
    micro = jax.tree.map(lambda x: x.reshape((accum, -1) + x.shape[1:]), batch)

    def body(carry, xs):
        grads_sum, variables, loss_sum, metrics_sum = carry
        mb, i = xs
        (loss, (metrics, variables)), grads = grad_fn(params, variables, mb,
                                                      jax.random.fold_in(rng, i))
        return (jax.tree.map(jnp.add, grads_sum, grads), variables, loss_sum + loss,
                jax.tree.map(jnp.add, metrics_sum, metrics)), None

    # The metrics' structure comes from tracing the objective once, abstractly.
    metrics_shape = jax.eval_shape(
        lambda: grad_fn(params, variables, jax.tree.map(lambda x: x[0], micro), rng)[0][1][0])
    init = (jax.tree.map(jnp.zeros_like, params), variables, jnp.zeros(()),
            jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics_shape))
    (grads, variables, loss, metrics), _ = jax.lax.scan(body, init, (micro, jnp.arange(accum)))
    scale = lambda t: jax.tree.map(lambda x: x / accum, t)  # noqa: E731
    return loss / accum, scale(metrics), variables, scale(grads)


def train_step(state: TrainState, batch: dict, *, task: tasks.Task, tx, schedule,
               grad_accum_steps: int = 1, ema_decay: float = 0.0):
    """(state, batch) -> (state, metrics). Pure; jitted by the caller.

    A task with optimizer groups has `tx` and `schedule` as dicts keyed by
    group; the groups are updated one after the other (a GAN's discriminator,
    then its generator against the updated discriminator), all in this one step.
    """
    rng = jax.random.fold_in(state.rng, state.step)
    params, variables, opt_state = state.params, state.model_state, state.opt_state
    groups = task.groups or (None,)
    metrics, total = {}, 0.0
    for i, group in enumerate(groups):
        def objective(p, variables, batch, rng, group=group, params=params):
            loss, m, new_variables = task.loss(tasks.with_group(params, group, p), variables,
                                               batch, rng, group=group)
            return loss, (m, new_variables)

        own = tasks.group_params(params, group)
        g_rng = rng if group is None else jax.random.fold_in(rng, i)
        loss, m, variables, grads = _value_and_grad(objective, own, variables, batch, g_rng,
                                                    grad_accum_steps)
        g_tx = tx if group is None else tx[group]
        g_opt = opt_state if group is None else opt_state[group]
        updates, g_opt = g_tx.update(grads, g_opt, own)
        params = tasks.with_group(params, group, optax.apply_updates(own, updates))
        opt_state = g_opt if group is None else {**opt_state, group: g_opt}
        suffix = "" if group is None else f"_{group}"
        g_sched = schedule if group is None else schedule[group]
        metrics.update({f"loss{suffix}": loss, f"grad_norm{suffix}": optax.tree.norm(grads),
                        f"learning_rate{suffix}": g_sched(state.step)})
        metrics.update(m)  # the task names its own metrics
        total = total + loss
    if task.groups:
        metrics["loss"] = total
        metrics["learning_rate"] = metrics[f"learning_rate_{groups[0]}"]
    ema = state.ema
    if ema_decay:
        ema = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, ema, params)
    new_state = state.replace(step=state.step + 1, params=params, model_state=variables,
                              opt_state=opt_state, ema=ema)
    return new_state, metrics


def eval_step(state: TrainState, batch: dict, *, task: tasks.Task, use_ema: bool = False):
    """The task's per-batch sums over the real (mask == 1) examples."""
    params = state.ema if use_ema and state.ema else state.params
    return task.eval_step(params, state.model_state, batch, jax.random.fold_in(state.rng, 2**31 - 1))


# ---------------------------------------------------------------------------
# Building blocks of `train`
# ---------------------------------------------------------------------------

def compute_dtype(config: ConfigDict):
    if config.compute_dtype == "auto":
        return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
    return jnp.dtype(config.compute_dtype)


def optimizer_config(config: ConfigDict, group: str | None) -> ConfigDict:
    """`config.optimizer`, with `config.optimizers.<group>`'s keys on top."""
    opt = ConfigDict(config.optimizer.to_dict())
    if group is not None and group in config.optimizers:
        opt.update(config.optimizers[group].to_dict())
    return opt


def build(config: ConfigDict, info, total_steps: int):
    """Task, optimizer(s), schedule(s) and the boxed init function of the state."""
    task = tasks.build(config, info, dtype=compute_dtype(config),
                       param_dtype=jnp.dtype(config.param_dtype))

    def make(group):
        return optim.make_optimizer(optimizer_config(config, group), config.schedule,
                                    total_steps, model_config=config.model)

    if task.groups:
        made = {g: make(g) for g in task.groups}
        tx = {g: made[g][0] for g in task.groups}
        schedule = {g: made[g][1] for g in task.groups}
    else:
        tx, schedule = make(None)
        if config.prune.mask:
            tx = prune.masked(tx)

    def init(rng):
        init_rng, _, state_rng = jax.random.split(rng, 3)
        params, variables = task.init(init_rng, task.example_batch())
        if task.groups:
            opt_state = {g: tx[g].init(params[g]) for g in task.groups}
        else:
            opt_state = tx.init(params)
        ema = jax.tree.map(lambda p: p, params) if config.ema.decay else {}
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          model_state=variables, opt_state=opt_state, rng=state_rng, ema=ema)

    return task, tx, schedule, init


def state_shardings(init_fn, mesh, rules, seed: int):
    """Abstract state and its NamedShardings, without allocating anything."""
    boxed = jax.eval_shape(init_fn, jax.random.PRNGKey(seed))
    shardings = sharding.logical_to_sharding(boxed, mesh, rules)
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                            nn.unbox(boxed), shardings)
    return abstract, shardings


@dataclasses.dataclass
class Setup:
    """Everything about a run that follows from its config, before any compute."""

    config: ConfigDict
    info: Any            # the dataset's DatasetInfo
    budget: Any          # config_lib.Budget: total steps, steps per epoch
    task: tasks.Task
    tx: Any
    schedule: Any
    init_fn: Any         # rng -> boxed TrainState
    abstract: TrainState  # ShapeDtypeStructs (with shardings when a mesh was given)
    shardings: Any       # NamedShardings of the state (None without a mesh)

    @property
    def total_steps(self) -> int:
        return self.budget.total_steps


def setup(config: ConfigDict, mesh=None, rules=None, *, info=None) -> Setup:
    """Dataset info -> task and optimizers -> abstract state (and its shardings on `mesh`).

    The one recipe for everything that needs a run's shapes without running it
    (the trainer, eval, bench, sweeps' parameter counts, lottery tickets,
    tests). `info` overrides the dataset's (bench uses synthetic data).
    """
    info = info if info is not None else tasks.get_class(config.task).dataset_info(config)
    budget = config_lib.total_steps(config, info.split_sizes[config.data.train_split])
    task, tx, schedule, init_fn = build(config, info, budget.total_steps)
    if mesh is None:
        abstract, shardings = nn.unbox(jax.eval_shape(init_fn, jax.random.PRNGKey(0))), None
    else:
        abstract, shardings = state_shardings(init_fn, mesh, rules, config.seed)
    return Setup(config, info, budget, task, tx, schedule, init_fn, abstract, shardings)


def init_state_fn(init_fn, shardings):
    """The jitted initialiser: an RNG key -> the state, created in its shardings."""
    return jax.jit(lambda r: nn.unbox(init_fn(r)), out_shardings=shardings)


def init_state(init_fn, shardings, seed: int) -> TrainState:
    """Creates the state directly in its shardings: full parameters never land on one device."""
    return init_state_fn(init_fn, shardings)(jax.random.PRNGKey(seed))


def install_mask(state: TrainState, mask, shardings) -> TrainState:
    """Zeroes the pruned parameters and puts `mask` (numpy booleans shaped like
    the parameters) into the optimizer state, laid out like the parameters."""
    mask = jax.tree.map(
        lambda m, s: jax.make_array_from_callback(m.shape, s, lambda index: m[index]),
        mask, shardings.opt_state.mask)

    def put(state, mask):
        return state.replace(params=prune.apply(state.params, mask),
                             opt_state=state.opt_state._replace(mask=mask))

    return jax.jit(put, out_shardings=shardings, donate_argnums=0)(state, mask)


def abstract_batch(task, batch_size: int, mesh, rules) -> dict:
    """ShapeDtypeStructs of a global batch, sharded like `global_batch`'s, from
    one synthetic example: nothing of the batch's size is made."""
    spec = sharding.batch_sharding(mesh, rules)
    return {k: jax.ShapeDtypeStruct((batch_size, *np.shape(v)[1:]), np.asarray(v).dtype,
                                    sharding=spec)
            for k, v in task.synthetic_batch(1).items()}


def global_batch(local: dict, mesh, rules) -> dict:
    """Process-local numpy batch -> global jax.Arrays sharded over the batch axis."""
    spec = sharding.batch_sharding(mesh, rules)
    return {k: jax.make_array_from_process_local_data(spec, np.asarray(v))
            for k, v in local.items()}


def _resume(config, ckpt, abstract, log_fn):
    """(step, state, data_state, meta) following the resume order, or None."""
    found = ckpt.restore(abstract)
    if found is not None:
        log_fn(f"resuming from {ckpt.directory} step {found[0]}")
        return found
    if config.resume_from:
        other = ckpt_lib.Checkpointer(config.resume_from, async_save=False)
        if not other.all_steps():
            raise ckpt_lib.CheckpointError(
                f"config.resume_from={config.resume_from!r} holds no checkpoint")
        found = other.restore(abstract, step=other.all_steps()[-1])
        log_fn(f"resuming from config.resume_from={config.resume_from} step {found[0]}")
        return found
    return None


def make_train_step_fn(config: ConfigDict, run: Setup, mesh, rules):
    """The config's train step, jitted with explicit shardings and the state donated."""
    step = functools.partial(train_step, task=run.task, tx=run.tx, schedule=run.schedule,
                             grad_accum_steps=config.grad_accum_steps,
                             ema_decay=float(config.ema.decay))
    return jax.jit(
        sharding.traced_with_activation_sharding(step, mesh, rules),
        in_shardings=(run.shardings, sharding.batch_sharding(mesh, rules)),
        out_shardings=(run.shardings, sharding.replicated(mesh)), donate_argnums=0)


def make_eval_fn(config: ConfigDict, run: Setup, mesh, rules):
    step = functools.partial(eval_step, task=run.task,
                             use_ema=bool(config.ema.decay and config.ema.evaluate))
    return jax.jit(sharding.traced_with_activation_sharding(step, mesh, rules),
                   in_shardings=(run.shardings, sharding.batch_sharding(mesh, rules)),
                   out_shardings=sharding.replicated(mesh))


def evaluate(state, eval_fn, run: Setup, mesh, rules, split: str,
             max_batches: int | None = None) -> dict:
    """The task's metrics over a whole split, or its first `max_batches` global
    batches (sums accumulated on the host, then reduced)."""
    totals: dict[str, float] = {}
    batches = run.task.eval_batches(split, global_batch_size=run.config.batch_size,
                                    process_index=jax.process_index(),
                                    process_count=jax.process_count())
    for local in itertools.islice(batches, max_batches):
        out = jax.device_get(eval_fn(state, global_batch(local, mesh, rules)))
        for k, v in out.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return run.task.eval_reduce(totals)


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                dynamic_ncols=True, mininterval=1.0)


# ---------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------

def train(config: ConfigDict, workdir: str, devices: list | None = None) -> dict:
    """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the summary.

    `devices` restricts the mesh to some of the devices (default: all).
    """
    entered = time.perf_counter()
    distributed.maybe_initialize()
    is_main = jax.process_index() == 0
    devices = list(devices or jax.devices())
    config_lib.validate(config, num_devices=len(devices), process_count=jax.process_count())
    os.makedirs(workdir, exist_ok=True)
    say = (lambda msg: print(f"[vision_jax] {msg}", flush=True)) if is_main else (lambda m: None)

    mesh = sharding.make_mesh(dict(config.mesh), devices)
    rules = sharding.rules_from_config(config.logical_rules)
    say(f"{jax.process_count()} process(es), {jax.device_count()} {jax.default_backend()} "
        f"device(s), mesh {dict(mesh.shape)}")

    task_cls = tasks.get_class(config.task)
    if is_main:
        task_cls.prepare_data(config)
    distributed.barrier("data prepared")
    run = setup(config, mesh, rules)
    task, abstract, shardings, init_fn = run.task, run.abstract, run.shardings, run.init_fn
    budget, n_steps = run.budget, run.total_steps
    n_params = flops.count_params(abstract.params)
    fl = task.flops_per_example(abstract.params, abstract.model_state)

    if is_main:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))

    ckpt = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 max_to_keep=config.checkpoint.max_to_keep,
                                 keep_period=config.checkpoint.keep_period,
                                 async_save=config.checkpoint.async_save)
    train_iter = task.train_iterator(
        global_batch_size=config.batch_size, seed=config.seed,
        process_index=jax.process_index(), process_count=jax.process_count())
    meta = {"examples_seen": 0, "train_flops": 0.0, "wall_seconds": 0.0}

    resumed = _resume(config, ckpt, abstract, say)
    if resumed is not None:
        _, state, data_state, meta = resumed
        train_iter.set_state(data_state)
    else:
        state = init_state(init_fn, shardings, config.seed)
        if config.init_from:
            skip = tuple(config.get("init_from_skip") or ())
            params, model_state = ckpt_lib.restore_init(config.init_from, abstract.params,
                                                        abstract.model_state, skip)
            if skip:  # the skipped modules keep their fresh initialisation
                params = {**state.params, **params}
                if model_state is not None:
                    model_state = {c: {**state.model_state[c], **tree}
                                   for c, tree in model_state.items()}
            # The EMA starts from the loaded weights, not from the random init;
            # imported weights (`vision-jax import-weights`) bring their batch-norm
            # statistics too.
            state = state.replace(params=params,
                                  ema=jax.tree.map(jnp.copy, params) if state.ema else {},
                                  **({} if model_state is None else
                                     {"model_state": model_state}))
            say(f"initialised parameters{'' if model_state is None else ' and statistics'} "
                f"from {config.init_from}")
        if config.prune.mask:
            mask = prune.load_mask(config.prune.mask, abstract.params)
            state = install_mask(state, mask, shardings)
            say(f"pruning mask {config.prune.mask}: {100 * prune.mask_density(mask)['all']:.2f}% "
                f"of the kernels' weights remain")
    start_step = int(jax.device_get(state.step))
    # Energy of this run (vision_jax/energy.py), plus what its checkpoint carried.
    meter = energy.Meter(jax.default_backend(), devices[0].device_kind, len(devices),
                         previous_joules=meta.get("energy_joules", 0.0),
                         grid_gco2_per_kwh=config.get("energy", {}).get("grid_gco2_per_kwh"))

    writer = metrics_lib.MetricWriter(workdir, active=is_main)
    writer.truncate_after(start_step)

    step_fn = make_train_step_fn(config, run, mesh, rules)
    eval_fn = make_eval_fn(config, run, mesh, rules)

    # Compile before spending: the first batch fixes shapes; log memory use.
    first = global_batch(next(train_iter), mesh, rules)
    t0 = time.perf_counter()
    compiled = step_fn.lower(state, first).compile()
    compile_s = time.perf_counter() - t0
    mem = _memory_summary(compiled)
    say(f"{config.model.name}: {n_params:,} params, {fl['forward']:.3g} forward FLOPs/example; "
        f"train step compiled in {compile_s:.1f}s{mem}; {n_steps} steps "
        f"({n_steps / budget.steps_per_epoch:.2f} epochs)")
    # Start-up: from train() (and from the process's start) to the first step.
    startup_s, process_s = time.perf_counter() - entered, _process_age()

    eval_every = config.eval_every_steps
    pending = None  # (step, metrics) dispatched but not yet read
    last_good = start_step
    t_window, ex_window = time.perf_counter(), 0
    wall_start = time.perf_counter() - meta["wall_seconds"]
    summary_train = {}
    bar = _progress(n_steps, start_step, is_main and config.progress_bar)

    def read(step, m):
        nonlocal t_window, ex_window, summary_train
        m = {k: float(v) for k, v in jax.device_get(m).items()}
        if config.stop_on_nan and not math.isfinite(m["loss"]):
            raise TrainingDiverged(
                f"loss is {m['loss']} at step {step}; stopping. The last good checkpoint "
                f"(step {last_good}) is kept in {ckpt.directory}")
        summary_train = m
        if step % config.log_every_steps == 0 or step == n_steps:
            now = time.perf_counter()
            eps = ex_window / max(now - t_window, 1e-9)
            t_window, ex_window = now, 0
            m["examples_per_second"] = eps
            m["examples_seen"] = step * config.batch_size
            m["train_flops"] = step * config.batch_size * fl["train"]
            u = metrics_lib.mfu(fl["train"], eps, len(devices))
            if u is not None:
                m["mfu"] = u
            writer.write(step, "train", m)
            bar.set_postfix(loss=f"{m['loss']:.4f}", ex_s=f"{eps:,.0f}", refresh=False)

    profiler = _Profiler(config.profile)
    try:
        batch = first
        with jax.transfer_guard(config.transfer_guard):
            for step in range(start_step + 1, n_steps + 1):
                profiler.step(step, state)
                state, m = compiled(state, batch)
                ex_window += config.batch_size
                if pending is not None:
                    read(*pending)
                pending = (step, m)
                bar.update(1)
                save_now = step % config.checkpoint.every_steps == 0 or step == n_steps
                # The iterator state that goes with `state` is the one before
                # the next batch is fetched (it is fetched while step runs).
                data_state = train_iter.get_state() if save_now else None
                if step < n_steps:
                    with jax.transfer_guard("allow"):
                        batch = global_batch(next(train_iter), mesh, rules)
                if save_now:
                    read(*pending)
                    pending = None
                    last_good = step
                    meta = {"examples_seen": step * config.batch_size,
                            "train_flops": step * config.batch_size * fl["train"],
                            "wall_seconds": time.perf_counter() - wall_start,
                            "energy_joules": meter.joules()}
                    with jax.transfer_guard("allow"):
                        ckpt.save(step, state, data_state, meta)
                if eval_every and step % eval_every == 0 and step != n_steps:
                    with jax.transfer_guard("allow"):
                        ev = evaluate(state, eval_fn, run, mesh, rules,
                                      config.data.eval_split)
                    writer.write(step, "eval", ev)
            if pending is not None:
                read(*pending)
        bar.close()
        with jax.transfer_guard("allow"):
            final_eval = evaluate(state, eval_fn, run, mesh, rules, config.data.eval_split)
        writer.write(n_steps, "eval", final_eval)
    finally:
        profiler.stop()
        bar.close()
        ckpt.close()
        writer.close()

    wall = time.perf_counter() - wall_start
    sparsity = float(jax.jit(prune.sparsity, out_shardings=sharding.replicated(mesh))(state.params))
    train_rows = [r for r in (metrics_lib.read_metrics(workdir, "train") if is_main else [])
                  if "examples_per_second" in r]
    eps = float(np.median([r["examples_per_second"] for r in train_rows[1:]] or
                          [r["examples_per_second"] for r in train_rows] or [0.0]))
    summary = {
        "task": config.task, "model": config.model.name, "dataset": config.data.name,
        "steps": n_steps, **{f"eval_{k}": v for k, v in final_eval.items()},
        "train_loss": summary_train.get("loss"), "params": n_params,
        "forward_flops_per_example": fl["forward"], "train_flops_per_example": fl["train"],
        "examples_per_second": eps, "mfu": metrics_lib.mfu(fl["train"], eps, len(devices)),
        "devices": len(devices), "device_kind": jax.devices()[0].device_kind,
        "wall_seconds": wall, "compile_seconds": compile_s,
        "startup_seconds": startup_s, "process_startup_seconds": process_s,
        "sparsity": sparsity,  # fraction of the kernels' weights that are zero
        "energy": meter.read(),  # joules, kWh, source (nvml|rapl|estimated), CO2e
    }
    if is_main:
        with open(os.path.join(workdir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        _print_summary(summary)
    return summary


def _process_age() -> float | None:
    """Seconds since this process started (Linux's /proc), None where unknown."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, in ticks
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class _Profiler:
    """Traces steps [first_step, first_step + steps) with jax.profiler when a dir is set."""

    def __init__(self, cfg):
        self.dir, self.first, self.last = cfg.dir, cfg.first_step, cfg.first_step + cfg.steps
        self.active = False

    def step(self, step: int, state) -> None:
        if not self.dir:
            return
        if step == self.first:
            jax.profiler.start_trace(self.dir, create_perfetto_trace=True)
            self.active = True
        elif step == self.last:
            self.stop(state)

    def stop(self, state=None) -> None:
        if self.active:
            jax.block_until_ready(state)
            jax.profiler.stop_trace()
            self.active = False
            print(f"profile of steps {self.first}-{self.last - 1} written to {self.dir}")


def _memory_summary(compiled) -> str:
    memory = flops.program_memory(compiled)
    return "" if memory is None else f", {memory['total'] / 2**20:,.1f} MiB per device"


def _print_summary(s: dict) -> None:
    mfu = (f"{100 * s['mfu']:.1f}%" if s["mfu"] is not None else
           f"n/a (no known peak FLOP/s for {s['device_kind']!r})")
    print("\n".join([
        "",
        f"== {s['model']} on {s['dataset']}: {s['steps']} steps in {s['wall_seconds']:.0f}s ==",
        *([f"  eval accuracy      {100 * s['eval_accuracy']:.2f}%  (loss {s['eval_loss']:.4f})"]
          if "eval_accuracy" in s else
          [f"  eval {k[5:]:<13} {v:.4g}" for k, v in s.items()
           if k.startswith("eval_") and k != "eval_examples"]),
        f"  parameters         {s['params']:,}",
        f"  FLOPs / example    {s['forward_flops_per_example']:.3g} forward, "
        f"{s['train_flops_per_example']:.3g} train (2 x MACs; train = 3 x forward)",
        f"  throughput         {s['examples_per_second']:,.0f} examples/s on "
        f"{s['devices']} x {s['device_kind']}",
        f"  MFU                {mfu}",
        f"  energy             {s['energy']['kwh']:.3g} kWh ({s['energy']['source']}), "
        f"{1000 * s['energy']['co2e_kg']:.3g} g CO2e",
    ]), flush=True)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def cli_main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    try:
        def extra(parser):
            parser.add_argument("--profile", default=None, metavar="DIR",
                                help="write a jax.profiler trace of steps "
                                     "config.profile.first_step.. (default 10-14) to DIR")

        config, flags = config_lib.parse_config_args(argv, "vision-jax train", extra=extra)
        if flags.profile:
            config.profile.dir = flags.profile
        workdir = flags.workdir
        train(config, workdir)
    except (config_lib.ConfigError, data_lib.DatasetNotFoundError,
            ckpt_lib.CheckpointError, TrainingDiverged) as e:
        print(f"vision-jax train: error: {e}", file=sys.stderr)
        return 2
    return 0


def eval_cli_main(argv: list[str]) -> int:
    """Evaluates the newest checkpoint of a workdir on the config's eval split."""
    logging.basicConfig(level=logging.WARNING)
    try:
        config, flags = config_lib.parse_config_args(argv, "vision-jax eval")
        workdir = flags.workdir
        result = evaluate_workdir(config, workdir)
    except (config_lib.ConfigError, data_lib.DatasetNotFoundError,
            ckpt_lib.CheckpointError) as e:
        print(f"vision-jax eval: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def restore_workdir(config: ConfigDict, workdir: str, mesh=None, rules=None):
    """(setup, step, state) of the newest checkpoint of a run, on `mesh` (default: all devices)."""
    distributed.maybe_initialize()
    config_lib.validate(config, num_devices=jax.device_count(),
                        process_count=jax.process_count())
    mesh = mesh if mesh is not None else sharding.make_mesh(dict(config.mesh))
    rules = rules if rules is not None else sharding.rules_from_config(config.logical_rules)
    run = setup(config, mesh, rules)
    return (run, *restore_newest(run, workdir))


def restore_newest(run: Setup, workdir: str):
    """(step, state) of a run directory's newest checkpoint, onto `run.abstract`'s shardings."""
    ckpt = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
    try:
        found = ckpt.restore(run.abstract)
    finally:
        ckpt.close()
    if found is None:
        raise ckpt_lib.CheckpointError(f"no restorable checkpoint in {ckpt.directory}")
    return found[0], found[1]


def evaluate_workdir(config: ConfigDict, workdir: str) -> dict:
    mesh = sharding.make_mesh(dict(config.mesh))
    rules = sharding.rules_from_config(config.logical_rules)
    run, step, state = restore_workdir(config, workdir, mesh, rules)
    eval_fn = make_eval_fn(config, run, mesh, rules)
    return {"step": step, **evaluate(state, eval_fn, run, mesh, rules, config.data.eval_split)}
