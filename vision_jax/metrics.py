"""Metrics out of the trainer: JSON lines, TensorBoard events, MFU.

Only process 0 writes. Each record is one line of `metrics.jsonl`:
{"step": 100, "split": "train", "loss": ..., ...}; the same scalars go to
TensorBoard under `<split>/<name>` through tensorboardX (no TensorFlow).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from vision_jax.scaling import hardware


def peak_flops(device: jax.Device | None = None) -> float | None:
    """Peak dense 16-bit FLOP/s of one JAX device, from the one accelerator
    table (vision_jax/scaling/hardware.py), or None when unknown (CPUs, new chips)."""
    device = device or jax.devices()[0]
    chip = hardware.chip_of_device(device.device_kind)
    return None if chip is None else chip.peak_flops / chip.devices_per_chip


def mfu(train_flops_per_example: float, examples_per_second: float,
        num_devices: int, device: jax.Device | None = None) -> float | None:
    peak = peak_flops(device)
    if peak is None or not train_flops_per_example:
        return None
    return train_flops_per_example * examples_per_second / (peak * num_devices)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricWriter:
    """Appends records to metrics.jsonl and TensorBoard (process 0 only)."""

    def __init__(self, workdir: str, *, active: bool = True):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.active = active
        self._tb = None
        if active:
            from tensorboardX import SummaryWriter  # imported lazily: heavy
            self._tb = SummaryWriter(os.path.join(workdir, "tb"))

    def truncate_after(self, step: int) -> None:
        """Drops records newer than `step` (a resumed run will write them again)."""
        if not self.active or not os.path.exists(self.path):
            return
        with open(self.path) as f:
            kept = [line for line in f if (r := _parse(line)) is not None and r["step"] <= step]
        with open(self.path, "w") as f:
            f.writelines(kept)

    def write(self, step: int, split: str, values: Mapping[str, Any]) -> None:
        if not self.active:
            return
        record = {"step": int(step), "split": split}
        record.update({k: _jsonable(v) for k, v in values.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in values.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                self._tb.add_scalar(f"{split}/{k}", v, step)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _parse(line: str) -> dict | None:
    """One record, or None for a blank line or one cut short by a killed process."""
    try:
        return json.loads(line) if line.strip() else None
    except json.JSONDecodeError:
        return None


def read_metrics(workdir: str, split: str | None = None) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [r for r in map(_parse, f) if r is not None]
    return [r for r in rows if split is None or r["split"] == split]


def psnr_from_mse(mse, value_range: float = 1.0):
    """Peak signal-to-noise ratio in dB of a mean squared error, for pixels
    spanning `value_range` (the error is floored at 1e-12)."""
    return 10.0 * jnp.log10(value_range ** 2 / jnp.maximum(mse, 1e-12))
