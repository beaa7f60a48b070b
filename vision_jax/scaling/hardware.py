"""Peak dense FLOP/s and memory of accelerators: the one table, for the
planner (published runs) and for the trainer's MFU (`vision_jax.metrics`).

`peak_flops` is the dense (no structured sparsity) 16-bit matrix throughput
per chip: bf16 where the chip has it, fp16 tensor cores on V100, plain fp16 on
P100 (which has no tensor cores). NVIDIA datasheets print the H100/H200
figures "with sparsity"; the dense figure is half of that. A TPU "chip" is the
unit Google's documentation counts (v2/v3: two TensorCores, each its own JAX
device; v4/v5p: one megacore; v5e/v6e: one TensorCore).

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
    # Substrings of `jax.Device.device_kind` naming this chip ('Tesla
    # P100-PCIE-16GB', 'NVIDIA H100 80GB HBM3', 'TPU v5 lite'); the longest
    # match wins, so 'H100 PCIe' beats 'H100'.
    device_kinds: tuple[str, ...] = ()
    devices_per_chip: int = 1  # JAX devices per chip: 2 on TPU v2/v3 (one per TensorCore)


_NV = "NVIDIA {} datasheet"
_TPU = "Google Cloud TPU documentation, '{}' system architecture page"

CHIPS: dict[str, Chip] = {c.name: c for c in (
    # The P100 of published runs (Vaswani et al. 2017's 8-GPU machine) is
    # the SXM2 module of NVIDIA's DGX-1.
    Chip("P100", 21.2e12, 16 * GB, _NV.format("Tesla P100 (SXM2)"),
         "fp16 without tensor cores; fp32 10.6 TFLOP/s", device_kinds=("P100",)),
    Chip("P100 PCIe", 18.7e12, 16 * GB, _NV.format("Tesla P100 (PCIe)"),
         "fp16 without tensor cores; fp32 9.3 TFLOP/s; 12 GB variant too",
         device_kinds=("P100-PCIE",)),
    Chip("V100", 125e12, 32 * GB, _NV.format("Tesla V100 (SXM2)"),
         "fp16 tensor cores; 16 GB and 32 GB variants", device_kinds=("V100",)),
    Chip("A100", 312e12, 80 * GB, _NV.format("A100 Tensor Core GPU (SXM4)"),
         "40 GB variant and PCIe card: same peak", device_kinds=("A100",)),
    Chip("H100", 989e12, 80 * GB, _NV.format("H100 Tensor Core GPU (SXM5)"),
         "datasheet: 1,979 TFLOP/s with sparsity", device_kinds=("H100",)),
    Chip("H100 PCIe", 756e12, 80 * GB, _NV.format("H100 Tensor Core GPU (PCIe)"),
         "datasheet: 1,513 TFLOP/s with sparsity", device_kinds=("H100 PCIe",)),
    Chip("H200", 989e12, 141 * GB, _NV.format("H200 Tensor Core GPU (SXM)"),
         "same compute as H100, more and faster memory", device_kinds=("H200",)),
    Chip("TPUv2", 45e12, 16 * GB, _TPU.format("TPU v2"), device_kinds=("TPU v2",),
         devices_per_chip=2),
    Chip("TPUv3", 123e12, 32 * GB, _TPU.format("TPU v3"), device_kinds=("TPU v3",),
         devices_per_chip=2),
    Chip("TPUv4", 275e12, 32 * GB, _TPU.format("TPU v4"), device_kinds=("TPU v4",)),
    Chip("TPUv5e", 197e12, 16 * GB, _TPU.format("TPU v5e"),
         device_kinds=("TPU v5 lite", "TPU v5e")),
    Chip("TPUv5p", 459e12, 95 * GB, _TPU.format("TPU v5p"), device_kinds=("TPU v5",)),
    Chip("TPUv6e", 918e12, 32 * GB, _TPU.format("TPU v6e (Trillium)"),
         device_kinds=("TPU v6",)),
)}


def chip(name: str) -> Chip:
    """A chip by name, forgiving case, spaces and dashes ('TPU v3', 'tpu-v3', 'h100 pcie')."""
    def key(text: str) -> str:
        return text.replace(" ", "").replace("-", "").replace("_", "").lower()

    for c in CHIPS.values():
        if key(c.name) == key(name):
            return c
    raise ValueError(f"unknown chip {name!r}; valid: {list(CHIPS)}")


def chip_of_device(device_kind: str) -> Chip | None:
    """The chip a `jax.Device.device_kind` names, or None (CPUs, chips not in the table)."""
    matches = [(len(k), c) for c in CHIPS.values() for k in c.device_kinds if k in device_kind]
    return max(matches, key=lambda m: m[0])[1] if matches else None
