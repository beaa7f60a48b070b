"""Multi-process start-up: `jax.distributed` on TPU pods, SLURM and local launches.

`maybe_initialize` is called first thing by every entry point. It initialises
`jax.distributed` only when the environment says this process is one of
several:

- `VISION_JAX_COORDINATOR`, `VISION_JAX_NUM_PROCESSES`, `VISION_JAX_PROCESS_ID`
  (set by `launch/local.py`, or by hand on any cluster);
- SLURM with more than one task (`SLURM_NTASKS` > 1; JAX reads the rest);
- a multi-worker Cloud TPU slice (`TPU_WORKER_HOSTNAMES` lists several hosts).
"""

from __future__ import annotations

import os

import jax

_initialized = False


def _wanted() -> bool:
    if os.environ.get("VISION_JAX_COORDINATOR"):
        return True
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return True
    return "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")


def maybe_initialize() -> None:
    global _initialized
    if _initialized or not _wanted():
        return
    coordinator = os.environ.get("VISION_JAX_COORDINATOR")
    if coordinator:
        # Cross-process collectives between CPU devices go through gloo (this
        # touches only the CPU client, so it is harmless on GPU and TPU).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=int(os.environ["VISION_JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["VISION_JAX_PROCESS_ID"]))
    else:
        jax.distributed.initialize()  # SLURM / TPU: JAX detects the cluster
    _initialized = True


def barrier(name: str) -> None:
    """Waits until every process reaches `name` (a no-op with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)
