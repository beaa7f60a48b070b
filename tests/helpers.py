"""Shared test helpers: tiny configs and running the CLI as a real process."""

from __future__ import annotations

import os
import subprocess
import sys

from vision_jax import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_SHAPES = ["data.shapes.train_size=512", "data.shapes.test_size=128"]


def config_path(name: str) -> str:
    return os.path.join(ROOT, "configs", name)


def tiny_config(spec: str, data_dir: str, *overrides: str):
    """A locked config from configs/<spec> with a small shapes set in `data_dir`."""
    path, _, arg = spec.partition(":")
    config = config_lib.load_config(config_path(path) + (":" + arg if arg else ""))
    config_lib.apply_overrides(config, [f"data.data_dir={data_dir}", *TINY_SHAPES,
                                        "progress_bar=False", *overrides])
    return config


def train_tiny_classifier(tmp_path_factory, *, resolution: int = 16,
                          channels: str = "(8,16,16)", train_size: int = 256,
                          test_size: int = 64) -> str:
    """The real trainer for 20 steps on tiny `shapes` (a narrow CNN, no attack in
    eval): the run directory."""
    from vision_jax import train
    data_dir, workdir = tmp_path_factory.mktemp("tfds"), tmp_path_factory.mktemp("run")
    c = tiny_config("adversarial.py:runlocal,adversarial=False", str(data_dir),
                    "adversarial.eval=False", f"model.channels={channels}",
                    f"data.shapes.resolution={resolution}", f"data.image_size={resolution}",
                    f"data.shapes.train_size={train_size}",
                    f"data.shapes.test_size={test_size}",
                    "checkpoint.every_steps=20", "eval_every_steps=0")
    train.train(c, str(workdir))
    return str(workdir)


def run_cli(args: list[str], *, devices: int = 8, env: dict | None = None,
            timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `vision-jax ARGS` in a fresh interpreter with `devices` CPU devices."""
    full_env = dict(os.environ)
    flags = os.environ.get("XLA_FLAGS", "").replace(
        "--xla_force_host_platform_device_count=8", "")  # conftest's, for this process
    full_env.update(JAX_PLATFORMS="cpu",
                    XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count={devices}")
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "vision_jax.cli", *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"vision-jax {' '.join(args)} exited {proc.returncode}\n"
                             f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


# A mesh that is data parallel and FSDP at once (2 x 4 of the 8 devices): one
# compile covers both layouts, which is what a CPU test budget can afford per
# model family.
DATA_AND_FSDP = {"data": 2, "fsdp": 4}


def one_train_step(config, mesh_cfg: dict, *, num_classes: int, image_shape=(32, 32, 3),
                   batch_size: int = 16, state=None):
    """One step of the trainer's own pieces, for any task: setup, sharded init, the
    jitted train_step on the task's synthetic batch (random data of the right shapes).

    Returns (state before, state after, metrics as numbers, state shardings).
    A given `state` (e.g. from another layout) is moved, not re-initialised.
    """
    import functools

    import jax

    from vision_jax import data, sharding, train

    mesh = sharding.make_mesh(mesh_cfg)
    rules = sharding.rules_from_config(None)
    info = data.DatasetInfo(name="synthetic", num_classes=num_classes, image_shape=image_shape,
                            split_sizes={config.data.train_split: 10 * config.batch_size})
    run = train.setup(config, mesh, rules, info=info)
    shardings = run.shardings
    state = (train.init_state(run.init_fn, shardings, seed=0) if state is None
             else jax.device_put(state, shardings))
    batch = train.global_batch(run.task.synthetic_batch(batch_size), mesh, rules)
    step = jax.jit(functools.partial(train.train_step, task=run.task, tx=run.tx,
                                     schedule=run.schedule, ema_decay=float(config.ema.decay)),
                   in_shardings=(shardings, sharding.batch_sharding(mesh, rules)),
                   out_shardings=(shardings, sharding.replicated(mesh)))
    new_state, metrics = step(state, batch)
    return state, new_state, jax.device_get(metrics), shardings


def check_one_train_step(before, after, metrics, shardings) -> None:
    """What one step must do to any model: finite loss, every parameter moved,
    batch statistics updated, and (on a mesh with an fsdp axis) some sharding."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    norms = [v for k, v in metrics.items() if k.startswith("grad_norm")]  # one per group
    assert np.isfinite(metrics["loss"]) and norms and np.all(np.isfinite(norms))
    assert min(norms) > 0
    assert int(after.step) == 1
    def unchanged(a, b) -> list[str]:
        same = jax.tree.map(lambda x, y: not bool(jnp.any(x != y)), a, b)
        return [jax.tree_util.keystr(p) for p, s in jax.tree_util.tree_leaves_with_path(same) if s]

    still = unchanged(before.params, after.params)
    assert not still, f"parameters the step left unchanged: {still}"
    if "batch_stats" in before.model_state:
        frozen = unchanged(before.model_state, after.model_state)
        assert not frozen, f"batch statistics the step left unchanged: {frozen}"
    if any("fsdp" in str(s.spec) for s in jax.tree.leaves(shardings.params)):
        specs = [leaf.sharding.spec for leaf in jax.tree.leaves(after.params)]
        assert any("fsdp" in str(spec) for spec in specs)
