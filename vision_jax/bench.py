"""`vision-jax bench`: times the real train step on synthetic data.

The step is the trainer's own `train_step`, jitted with the same shardings
and donation; only the input is synthetic (random images of the config's
size, random labels), so no dataset is needed and the number measures the
model, optimizer and compiler alone. Reported: compile time, the median
step time over `--steps` timed steps after `--warmup` untimed ones,
images/s, achieved TFLOP/s (training FLOPs: 2 x MACs, backward = 2 x
forward) and MFU where the device's peak is known.

`--mode=infer` times the task's `predict` instead: images/s at
`--infer-batch` (default 256) and the latency of one image at batch 1.
Both modes report the compiled program's device memory (XLA's
`memory_analysis`: arguments + outputs - aliased + temporaries, per device)
and, where the backend keeps it (GPU, TPU), the allocator's peak.
`--profile=DIR` writes a `jax.profiler` trace of the timed steps (open it in
Perfetto or TensorBoard; `vision_jax.bench.trace_summary` sums it by op).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax import config as config_lib, data, distributed, flops, metrics, sharding, train
from vision_jax.scaling.planner import gib


def _program_bytes(compiled) -> int | None:
    memory = flops.program_memory(compiled)
    return None if memory is None else memory["total"]


def _allocator_peak() -> int | None:
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def _time(call, args, steps: int, warmup: int, profile: str | None, carry: bool) -> float:
    """Median seconds of `call(*args)` over `steps` after `warmup`; with
    `carry`, the call returns (new first argument, output) as the train step does."""
    def once(args):
        out = call(*args)
        if carry:
            args = (out[0],) + tuple(args[1:])
            out = out[1]
        jax.block_until_ready(out)
        return args

    for _ in range(warmup):
        args = once(args)
    times = []
    trace = jax.profiler.trace(profile, create_perfetto_trace=True) if profile else (
        contextlib.nullcontext())
    with trace:
        for _ in range(steps):
            t = time.perf_counter()
            args = once(args)
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def trace_summary(profile_dir: str, top: int = 15) -> list[tuple[str, float]]:
    """(op name, total ms) of the device ops in the newest Perfetto trace under
    `profile_dir`, largest first: where a step's time goes."""
    traces = sorted(pathlib.Path(profile_dir).rglob("perfetto_trace.json.gz"),
                    key=lambda p: p.stat().st_mtime)
    if not traces:
        return []
    with gzip.open(traces[-1], "rt") as f:
        events = json.load(f)
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    pids = {e["pid"]: e["args"]["name"] for e in events
            if e.get("ph") == "M" and e.get("name") == "process_name" and "args" in e}
    ops = [e for e in events if e.get("ph") == "X" and "dur" in e]
    device = [e for e in ops if "/device:" in pids.get(e.get("pid"), "")]
    totals: dict[str, float] = {}
    for e in device or ops:  # the CPU backend has host threads only
        totals[e["name"]] = totals.get(e["name"], 0.0) + e["dur"] / 1e3
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def synthetic_info(config, num_classes: int, image_size: int) -> data.DatasetInfo:
    """A dataset of the config's image shape that nothing reads or generates."""
    return data.DatasetInfo(name="synthetic", num_classes=num_classes,
                            image_shape=(image_size, image_size, 3),
                            split_sizes={config.data.train_split: 1_000_000})


def _setup(config, num_classes: int, image_size: int | None):
    distributed.maybe_initialize()
    config_lib.validate(config, num_devices=jax.device_count(),
                        process_count=jax.process_count())
    size = image_size or config.data.image_size
    mesh = sharding.make_mesh(dict(config.mesh))
    rules = sharding.rules_from_config(config.logical_rules)
    run = train.setup(config, mesh, rules, info=synthetic_info(config, num_classes, size))
    state = train.init_state(run.init_fn, run.shardings, config.seed)
    return run, mesh, rules, state, size


def _describe(config, run, size: int) -> dict:
    return {"model": dict(config.model), "image_size": size,
            "compute_dtype": str(jnp.dtype(train.compute_dtype(config))),
            "devices": jax.device_count(), "device_kind": jax.devices()[0].device_kind,
            "params": flops.count_params(run.abstract.params)}


def bench(config, *, steps: int = 20, warmup: int = 3, num_classes: int = 1000,
          image_size: int | None = None, profile: str | None = None) -> dict:
    """Times the trainer's train step (the `train` mode)."""
    run, mesh, rules, state, size = _setup(config, num_classes, image_size)
    local = run.task.synthetic_batch(config.batch_size // jax.process_count())
    batch = train.global_batch(local, mesh, rules)
    step_fn = train.make_train_step_fn(config, run, mesh, rules)

    t0 = time.perf_counter()
    compiled = step_fn.lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    step_s = _time(compiled, (state, batch), steps, warmup, profile, carry=True)
    fl = run.task.flops_per_example(run.abstract.params, run.abstract.model_state)
    ips = config.batch_size / step_s
    return {
        "mode": "train", **_describe(config, run, size), "batch_size": config.batch_size,
        "compile_seconds": compile_s, "step_seconds_median": step_s, "images_per_second": ips,
        "train_flops_per_image": fl["train"], "tflops_per_second": ips * fl["train"] / 1e12,
        "mfu": metrics.mfu(fl["train"], ips, jax.device_count()),
        "program_bytes_per_device": _program_bytes(compiled),
        "allocator_peak_bytes": _allocator_peak(),
    }


def bench_infer(config, *, steps: int = 20, warmup: int = 3, num_classes: int = 1000,
                image_size: int | None = None, batch_size: int = 256,
                profile: str | None = None) -> dict:
    """Times the task's `predict` at `batch_size` (throughput) and at batch 1 (latency)."""
    run, mesh, rules, state, size = _setup(config, num_classes, image_size)
    task = run.task
    if not callable(getattr(task, "predict", None)):
        raise config_lib.ConfigError(
            f"task {config.task!r} has no predict(): --mode=infer times classifiers and "
            f"other tasks that map images to outputs")
    out: dict = {"mode": "infer", **_describe(config, run, size)}
    replicated = sharding.replicated(mesh)
    for name, n in (("throughput", batch_size), ("latency", 1)):
        images = task.synthetic_batch(n)["image"]
        spec = sharding.batch_sharding(mesh, rules) if n % jax.device_count() == 0 else replicated
        images = jax.device_put(images, spec)
        fn = jax.jit(task.predict, in_shardings=(run.shardings.params,
                                                 run.shardings.model_state, spec))
        t0 = time.perf_counter()
        compiled = fn.lower(state.params, state.model_state, images).compile()
        compile_s = time.perf_counter() - t0
        step_s = _time(compiled, (state.params, state.model_state, images), steps, warmup,
                       profile if name == "throughput" else None, carry=False)
        out[name] = {"batch_size": n, "compile_seconds": compile_s,
                     "step_seconds_median": step_s, "images_per_second": n / step_s,
                     "program_bytes_per_device": _program_bytes(compiled)}
    out["allocator_peak_bytes"] = _allocator_peak()
    return out


def cli_main(argv: list[str]) -> int:
    def extra(parser):
        parser.add_argument("--mode", choices=("train", "infer"), default="train")
        parser.add_argument("--steps", type=int, default=20)
        parser.add_argument("--warmup", type=int, default=3)
        parser.add_argument("--num-classes", type=int, default=1000)
        parser.add_argument("--image-size", type=int, default=None,
                            help="default: the config's data.image_size")
        parser.add_argument("--infer-batch", type=int, default=256,
                            help="--mode=infer: the throughput batch (latency is at batch 1)")
        parser.add_argument("--profile", default=None, metavar="DIR",
                            help="write a jax.profiler trace of the timed steps to DIR")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    try:
        config, flags = config_lib.parse_config_args(
            argv, "vision-jax bench", extra=extra, needs_workdir=False,
            description=__doc__.split("\n")[0])
        common = dict(steps=flags.steps, warmup=flags.warmup, num_classes=flags.num_classes,
                      image_size=flags.image_size, profile=flags.profile)
        if flags.mode == "infer":
            result = bench_infer(config, batch_size=flags.infer_batch, **common)
        else:
            result = bench(config, **common)
    except config_lib.ConfigError as e:
        print(f"vision-jax bench: error: {e}", file=sys.stderr)
        return 2
    if flags.profile:
        result["profile_top_ops_ms"] = trace_summary(flags.profile)
    if flags.json:
        print(json.dumps(result))
        return 0
    r = result
    print(f"{flags.config}: {r['params']:,} params at {r['image_size']}px, {r['compute_dtype']} "
          f"on {r['devices']} x {r['device_kind']}")
    if r["mode"] == "train":
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a (peak unknown)"
        print(f"  train, batch {r['batch_size']}: compile {r['compile_seconds']:.1f}s, step "
              f"{1e3 * r['step_seconds_median']:.1f} ms (median of {flags.steps})\n"
              f"  {r['images_per_second']:,.1f} images/s, {r['tflops_per_second']:.2f} TFLOP/s, "
              f"MFU {mfu}\n  memory: program {gib(r['program_bytes_per_device'], 2)} per device,"
              f" allocator peak {gib(r['allocator_peak_bytes'], 2)}")
    else:
        for name in ("throughput", "latency"):
            t = r[name]
            print(f"  infer {name}, batch {t['batch_size']}: {t['images_per_second']:,.1f} "
                  f"images/s, {1e3 * t['step_seconds_median']:.2f} ms per call, compile "
                  f"{t['compile_seconds']:.1f}s, program {gib(t['program_bytes_per_device'], 2)}")
        print(f"  allocator peak {gib(r['allocator_peak_bytes'], 2)}")
    for name, ms in result.get("profile_top_ops_ms", []):
        print(f"  {ms:9.2f} ms  {name}")
    return 0
