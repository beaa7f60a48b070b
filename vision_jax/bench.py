"""`vision-jax bench`: times the real train step on synthetic data.

The step is the trainer's own `train_step`, jitted with the same shardings
and donation; only the input is synthetic (random images of the config's
size, random labels), so no dataset is needed and the number measures the
model, optimizer and compiler alone. Reported: compile time, the median
step time over `--steps` timed steps after `--warmup` untimed ones,
images/s, achieved TFLOP/s (training FLOPs: 2 x MACs, backward = 2 x
forward) and MFU where the device's peak is known.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax import config as config_lib, data, distributed, flops, metrics, sharding, train


def bench(config, *, steps: int = 20, warmup: int = 3, num_classes: int = 1000,
          image_size: int | None = None) -> dict:
    distributed.maybe_initialize()
    config_lib.validate(config, num_devices=jax.device_count(),
                        process_count=jax.process_count())
    size = image_size or config.data.image_size
    shape = (size, size, 3)
    mesh = sharding.make_mesh(dict(config.mesh))
    rules = sharding.rules_from_config(config.logical_rules)
    # Synthetic data of the config's shape: nothing is read or generated.
    info = data.DatasetInfo(name="synthetic", num_classes=num_classes, image_shape=shape,
                            split_sizes={config.data.train_split: 1_000_000})
    run = train.setup(config, mesh, rules, info=info)
    state = train.init_state(run.init_fn, run.shardings, config.seed)
    local = run.task.synthetic_batch(config.batch_size // jax.process_count())
    batch = train.global_batch(local, mesh, rules)
    step_fn = train.make_train_step_fn(config, run, mesh, rules)

    t0 = time.perf_counter()
    compiled = step_fn.lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        state, m = compiled(state, batch)
    jax.block_until_ready(m)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        state, m = compiled(state, batch)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t)
    step_s = float(np.median(times))
    fl = run.task.flops_per_example(run.abstract.params, run.abstract.model_state)
    ips = config.batch_size / step_s
    achieved = ips * fl["train"]
    return {
        "model": dict(config.model), "batch_size": config.batch_size, "image_size": size,
        "compute_dtype": str(jnp.dtype(train.compute_dtype(config))),
        "devices": jax.device_count(), "device_kind": jax.devices()[0].device_kind,
        "params": flops.count_params(run.abstract.params), "compile_seconds": compile_s,
        "step_seconds_median": step_s, "images_per_second": ips,
        "train_flops_per_image": fl["train"], "tflops_per_second": achieved / 1e12,
        "mfu": metrics.mfu(fl["train"], ips, jax.device_count()),
    }


def cli_main(argv: list[str]) -> int:
    def extra(parser):
        parser.add_argument("--steps", type=int, default=20)
        parser.add_argument("--warmup", type=int, default=3)
        parser.add_argument("--num-classes", type=int, default=1000)
        parser.add_argument("--image-size", type=int, default=None,
                            help="default: the config's data.image_size")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    try:
        config, flags = config_lib.parse_config_args(
            argv, "vision-jax bench", extra=extra, needs_workdir=False,
            description=__doc__.split("\n")[0])
        result = bench(config, steps=flags.steps, warmup=flags.warmup,
                       num_classes=flags.num_classes, image_size=flags.image_size)
    except config_lib.ConfigError as e:
        print(f"vision-jax bench: error: {e}", file=sys.stderr)
        return 2
    if flags.json:
        print(json.dumps(result))
        return 0
    mfu = f"{100 * result['mfu']:.1f}%" if result["mfu"] is not None else "n/a (peak unknown)"
    print(f"{flags.config}: {result['params']:,} params, batch {result['batch_size']} at "
          f"{result['image_size']}px, {result['compute_dtype']} on {result['devices']} x "
          f"{result['device_kind']}\n"
          f"  compile {result['compile_seconds']:.1f}s, step {1e3 * result['step_seconds_median']:.1f}"
          f" ms (median of {flags.steps})\n"
          f"  {result['images_per_second']:,.1f} images/s, "
          f"{result['tflops_per_second']:.2f} TFLOP/s, MFU {mfu}")
    return 0
