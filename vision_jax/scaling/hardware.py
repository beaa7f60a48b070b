"""Peak dense FLOP/s and memory of the accelerators that published models trained on.

`peak_flops` is the dense (no structured sparsity) 16-bit matrix throughput
per chip: bf16 where the chip has it, fp16 tensor cores on P100/V100. NVIDIA
datasheets print the H100/H200 figures "with sparsity"; the dense figure is
half of that. A TPU "chip" is the unit Google's documentation counts (v2/v3:
two TensorCores; v4/v5p: one megacore; v5e/v6e: one TensorCore).

MFU (model FLOPs utilisation, Chowdhery et al. 2022, App. B) is the model's
training FLOPs per second over the sum of these peaks.
"""

from __future__ import annotations

import dataclasses

GB = 1e9


@dataclasses.dataclass(frozen=True)
class Chip:
    name: str
    peak_flops: float      # dense 16-bit FLOP/s per chip
    memory_bytes: float    # HBM per chip
    source: str
    note: str = ""


_NV = "NVIDIA {} datasheet"
_TPU = "Google Cloud TPU documentation, '{}' system architecture page"

CHIPS: dict[str, Chip] = {c.name: c for c in (
    Chip("P100", 21.2e12, 16 * GB, _NV.format("Tesla P100 (SXM2)"),
         "fp16 without tensor cores; the PCIe card peaks at 18.7 TFLOP/s"),
    Chip("V100", 125e12, 32 * GB, _NV.format("Tesla V100 (SXM2)"),
         "fp16 tensor cores; 16 GB and 32 GB variants"),
    Chip("A100", 312e12, 80 * GB, _NV.format("A100 Tensor Core GPU (SXM4)"), "40 GB variant too"),
    Chip("H100", 989e12, 80 * GB, _NV.format("H100 Tensor Core GPU (SXM5)"),
         "datasheet: 1,979 TFLOP/s with sparsity"),
    Chip("H200", 989e12, 141 * GB, _NV.format("H200 Tensor Core GPU (SXM)"),
         "same compute as H100, more and faster memory"),
    Chip("TPUv2", 45e12, 16 * GB, _TPU.format("TPU v2")),
    Chip("TPUv3", 123e12, 32 * GB, _TPU.format("TPU v3")),
    Chip("TPUv4", 275e12, 32 * GB, _TPU.format("TPU v4")),
    Chip("TPUv5e", 197e12, 16 * GB, _TPU.format("TPU v5e")),
    Chip("TPUv5p", 459e12, 95 * GB, _TPU.format("TPU v5p")),
    Chip("TPUv6e", 918e12, 32 * GB, _TPU.format("TPU v6e (Trillium)")),
)}


def chip(name: str) -> Chip:
    """A chip by name, forgiving case, spaces and dashes ('TPU v3', 'tpu-v3', 'h100')."""
    key = name.replace(" ", "").replace("-", "").replace("_", "").lower()
    for c in CHIPS.values():
        if c.name.lower() == key:
            return c
    raise ValueError(f"unknown chip {name!r}; valid: {list(CHIPS)}")
