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

# Dense bf16/fp16 tensor-core peak FLOP/s per device, without sparsity, from
# the vendors' datasheets (NVIDIA A100/H100/H200 datasheets; Google Cloud TPU
# system-architecture pages). Matched against `jax.Device.device_kind`.
PEAK_FLOPS_PER_DEVICE = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; the PCIe card is 756e12
    "A100": 312e12,
    "V100": 125e12,
    "P100": 18.7e12,
    "TPU v6": 918e12,   # v6e (Trillium)
    "TPU v5p": 459e12,
    "TPU v5 lite": 197e12,  # v5e
    "TPU v5e": 197e12,
    "TPU v4": 275e12,
    "TPU v3": 123e12,
}


def peak_flops(device: jax.Device | None = None) -> float | None:
    """Peak FLOP/s of one device, or None when unknown (CPUs, new chips)."""
    device = device or jax.devices()[0]
    if device.platform == "cpu":
        return None
    kind = device.device_kind
    if "H100" in kind and "PCIe" in kind:
        return 756e12
    for name, flops in PEAK_FLOPS_PER_DEVICE.items():
        if name in kind:
            return flops
    return None


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
