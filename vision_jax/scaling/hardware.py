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

`watts` is the board power a chip may draw (NVIDIA's maximum TDP; for TPUs
the maximum measured power that Google's system-architecture pages give,
which exists for v3 and v4 only): `vision_jax.energy` multiplies it by wall
time when a run cannot measure its energy. `usd_per_chip_hour` is Google
Cloud's on-demand price of one chip for one hour in us-central1 (v4:
us-central2-b), `PRICE_SOURCE`; for GPUs it is the accelerator's own SKU,
without the host VM it is attached to. `year` is the year the chip became
available (NVIDIA's and Google's launch announcements).
"""

from __future__ import annotations

import dataclasses

GB = 1e9

PRICE_DATE = "2026-12-04"
PRICE_SOURCE = (
    "Google Cloud on-demand list prices (https://cloud.google.com/tpu/pricing, "
    "https://cloud.google.com/compute/gpus-pricing), read "
    f"{PRICE_DATE} from the Cloud Billing Catalog scrape in SkyPilot's catalog "
    "(https://github.com/skypilot-org/skypilot-catalog, catalogs/v8/gcp/vms.csv at "
    "commit 006059e0): us-central1 (TPU v4: us-central2-b)")


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
    watts: float | None = None  # maximum board power (see the module docstring)
    usd_per_chip_hour: float | None = None  # on-demand, PRICE_SOURCE
    price_note: str = ""
    year: int | None = None

    @property
    def gflop_per_usd(self) -> float | None:
        """Peak dense 16-bit GFLOP bought by one on-demand dollar: the price-performance
        trend of accelerators (peak FLOP/s x 3600 s / $ per chip-hour)."""
        if not self.usd_per_chip_hour:
            return None
        return self.peak_flops * 3600 / self.usd_per_chip_hour / 1e9


_NV = "NVIDIA {} datasheet"
_TPU = "Google Cloud TPU documentation, '{}' system architecture page"

CHIPS: dict[str, Chip] = {c.name: c for c in (
    # The P100 of published runs (Vaswani et al. 2017's 8-GPU machine) is
    # the SXM2 module of NVIDIA's DGX-1.
    Chip("P100", 21.2e12, 16 * GB, _NV.format("Tesla P100 (SXM2)"),
         "fp16 without tensor cores; fp32 10.6 TFLOP/s", device_kinds=("P100",), watts=300,
         usd_per_chip_hour=1.46, year=2016,
         price_note="Google Cloud rents the PCIe card only; its price stands in for SXM2"),
    Chip("P100 PCIe", 18.7e12, 16 * GB, _NV.format("Tesla P100 (PCIe)"),
         "fp16 without tensor cores; fp32 9.3 TFLOP/s; 12 GB variant too",
         device_kinds=("P100-PCIE",), watts=250, usd_per_chip_hour=1.46, year=2016),
    Chip("V100", 125e12, 32 * GB, _NV.format("Tesla V100 (SXM2)"),
         "fp16 tensor cores; 16 GB and 32 GB variants", device_kinds=("V100",), watts=300,
         usd_per_chip_hour=2.48, year=2017, price_note="Google Cloud's V100 is the 16 GB SXM2"),
    Chip("A100", 312e12, 80 * GB, _NV.format("A100 Tensor Core GPU (SXM4)"),
         "40 GB variant and PCIe card: same peak", device_kinds=("A100",), watts=400,
         usd_per_chip_hour=2.93391, year=2020,
         price_note="the 40 GB SKU (same peak); the catalog's 80 GB SKU row ($1.85) "
                    "does not match A2 Ultra pricing and is not used"),
    Chip("H100", 989e12, 80 * GB, _NV.format("H100 Tensor Core GPU (SXM5)"),
         "datasheet: 1,979 TFLOP/s with sparsity", device_kinds=("H100",), watts=700,
         usd_per_chip_hour=4.20076, year=2022,
         price_note="GPU SKU of A3 High in us-central1; us-east4 lists $9.80"),
    Chip("H100 PCIe", 756e12, 80 * GB, _NV.format("H100 Tensor Core GPU (PCIe)"),
         "datasheet: 1,513 TFLOP/s with sparsity", device_kinds=("H100 PCIe",), watts=350,
         year=2022, price_note="no Google Cloud offer"),
    Chip("H200", 989e12, 141 * GB, _NV.format("H200 Tensor Core GPU (SXM)"),
         "same compute as H100, more and faster memory", device_kinds=("H200",), watts=700,
         usd_per_chip_hour=9.31174, year=2024,
         price_note="GPU SKU of A3 Ultra in us-central1 ($74.49 per 8); other regions $4.58"),
    Chip("TPUv2", 45e12, 16 * GB, _TPU.format("TPU v2"), device_kinds=("TPU v2",),
         devices_per_chip=2, usd_per_chip_hour=1.125, year=2017,
         price_note="v2-8 (4 chips) at $4.50/h; power not published"),
    Chip("TPUv3", 123e12, 32 * GB, _TPU.format("TPU v3"), device_kinds=("TPU v3",),
         devices_per_chip=2, watts=262, usd_per_chip_hour=2.00, year=2018,
         price_note="v3-8 (4 chips) at $8.00/h; power: measured max (mean 220 W)"),
    Chip("TPUv4", 275e12, 32 * GB, _TPU.format("TPU v4"), device_kinds=("TPU v4",),
         watts=192, usd_per_chip_hour=3.22, year=2021,
         price_note="v4-8 (4 chips) at $12.88/h; power: measured max (mean 170 W)"),
    Chip("TPUv5e", 197e12, 16 * GB, _TPU.format("TPU v5e"),
         device_kinds=("TPU v5 lite", "TPU v5e"), usd_per_chip_hour=1.20, year=2023,
         price_note="power not published"),
    Chip("TPUv5p", 459e12, 95 * GB, _TPU.format("TPU v5p"), device_kinds=("TPU v5",),
         usd_per_chip_hour=4.20, year=2023, price_note="power not published"),
    Chip("TPUv6e", 918e12, 32 * GB, _TPU.format("TPU v6e (Trillium)"),
         device_kinds=("TPU v6",), usd_per_chip_hour=2.70, year=2024,
         price_note="power not published"),
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
