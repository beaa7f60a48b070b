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
