"""MFU's denominator: the trainer's peak FLOP/s come from the one accelerator table."""

from __future__ import annotations

import os
import re
import types

import pytest

from vision_jax import metrics
from vision_jax.scaling import hardware

from helpers import ROOT


def device(kind: str, platform: str = "gpu"):
    return types.SimpleNamespace(device_kind=kind, platform=platform)


@pytest.mark.parametrize("kind, peak", [
    # NVIDIA datasheets: P100 fp16 21.2 (SXM2) / 18.7 (PCIe) TFLOP/s, no tensor cores.
    ("Tesla P100-SXM2-16GB", 21.2e12),
    ("Tesla P100-PCIE-16GB", 18.7e12),
    ("Tesla V100-SXM2-32GB", 125e12),
    ("NVIDIA A100-SXM4-80GB", 312e12),
    ("NVIDIA H100 80GB HBM3", 989e12),
    ("NVIDIA H100 PCIe", 756e12),
    ("NVIDIA H200", 989e12),
    ("TPU v3", 123e12 / 2),   # one JAX device per TensorCore, two per chip
    ("TPU v4", 275e12),
    ("TPU v5 lite", 197e12),
    ("TPU v5", 459e12),       # v5p
    ("TPU v6 lite", 918e12),
    ("cpu", None),
    ("NVIDIA GeForce GTX 480", None),
])
def test_peak_flops_per_device(kind, peak):
    assert metrics.peak_flops(device(kind)) == (None if peak is None else pytest.approx(peak))


def test_there_is_one_table_of_peak_flops():
    """No module but scaling/hardware.py writes down a chip's peak."""
    peaks = {f"{c.peak_flops / 1e12:g}e12" for c in hardware.CHIPS.values()}
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(p) for p in peaks) + r")(?![\w.])")
    package = os.path.join(ROOT, "vision_jax")
    holders = set()
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    if pattern.search(f.read()):
                        holders.add(os.path.relpath(path, package))
    assert holders == {os.path.join("scaling", "hardware.py")}
    assert not hasattr(metrics, "PEAK_FLOPS_PER_DEVICE")
