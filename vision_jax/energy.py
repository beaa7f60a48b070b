"""Energy of a run: measured where the machine exposes it, else estimated and labelled so.

Sources, in order:
  nvml       NVIDIA GPUs: nvmlDeviceGetTotalEnergyConsumption (millijoules since
             the driver loaded; Volta and newer), summed over the GPUs this
             process may use (CUDA_VISIBLE_DEVICES when it lists indices).
             Needs nvidia-ml-py (`import pynvml`).
  rapl       Intel/AMD CPU packages through Linux powercap
             (/sys/class/powercap/intel-rapl:N/energy_uj, plus their 'dram'
             subdomains, which the package counter leaves out; see
             https://www.kernel.org/doc/html/latest/power/powercap/powercap.html).
             Each counter wraps at its max_energy_range_uj; a background
             thread reads it often enough to count every wrap. Since 2020 most
             kernels let only root read energy_uj (CVE-2020-8694).
  estimated  neither readable: a power figure times wall time. Accelerators
             use their maximum board power from vision_jax.scaling.hardware
             (chips x watts); CPUs use CPU_WATTS_PER_CORE per core this process
             may run on. The entry says which assumption it made.

CO2e is energy times a grid carbon intensity, GRID_GCO2_PER_KWH by default
(config.energy.grid_gco2_per_kwh overrides it). The meter covers this host
only: on a multi-host run, process 0's summary holds process 0's energy.
A run resumed from a checkpoint adds the energy stored with it.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from typing import Any, Callable

# Green Algorithms' default power draw per CPU core when the model is unknown
# ('Any', 12 W; Lannelongue et al. 2021, Adv. Sci. 8:2100707, and the tool's
# data/TDP_cpu.csv, as documented at
# https://adrientaudiere.github.io/greenAlgoR/reference/ga_footprint.html,
# read 2026-12-04).
CPU_WATTS_PER_CORE = 12.0
CPU_WATTS_SOURCE = ("12 W per core: Green Algorithms' default for an unknown CPU "
                    "(Lannelongue et al. 2021)")
# World average carbon intensity of electricity, 475 gCO2e/kWh (IEA Global
# Energy & CO2 Status Report 2019, as used by Green Algorithms, data/v2.2/
# CI_aggregated.csv in github.com/GreenAlgorithms/green-algorithms-tool,
# read 2026-12-04).
GRID_GCO2_PER_KWH = 475.0
GRID_SOURCE = "world average 475 gCO2e/kWh (IEA 2019, via Green Algorithms)"

POWERCAP = "/sys/class/powercap"
SAMPLE_SECONDS = 30.0  # RAPL package counters wrap after ~262 kJ: minutes at full load
J_PER_KWH = 3.6e6


# ---------------------------------------------------------------------------
# RAPL (powercap sysfs)

def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def rapl_domains(root: str = POWERCAP) -> list[str]:
    """Readable RAPL zones that together cover the CPU packages and their DRAM.

    Top-level 'package-N' zones (intel-rapl:N) hold the cores, caches and
    uncore; 'dram' subzones (intel-rapl:N:M) are outside them and are added.
    'psys' (the whole SoC, which would count the packages twice) and
    'core'/'uncore' subzones (inside the package) are left out. A zone whose
    energy_uj this user cannot read is skipped."""
    out = []
    for zone in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
        leaf = os.path.basename(zone)
        try:
            name = _read(os.path.join(zone, "name"))
            top = leaf.count(":") == 1
            if not ((top and name.startswith("package")) or (not top and name == "dram")):
                continue
            int(_read(os.path.join(zone, "energy_uj")))
            int(_read(os.path.join(zone, "max_energy_range_uj")))
        except (OSError, ValueError):
            continue
        out.append(zone)
    return out


def counter_delta(before: int, after: int, wrap: int) -> int:
    """after - before for a counter that wraps to 0 past `wrap` (at most once between reads)."""
    return after - before if after >= before else after + wrap - before


class _Counters:
    """Monotonic counters read by `read()` -> {name: value}; sums the increases
    between calls, each through `counter_delta` with that counter's wrap."""

    def __init__(self, read: Callable[[], dict[str, int]], wraps: dict[str, int],
                 joules_per_unit: float):
        self._read, self._wraps, self._scale = read, wraps, joules_per_unit
        self._last = read()
        self._total = 0
        self._lock = threading.Lock()

    def sample(self) -> float:
        """Reads the counters now; returns joules since the first read."""
        with self._lock:
            now = self._read()
            self._total += sum(counter_delta(self._last[k], now[k], self._wraps.get(k, 0))
                               for k in now)
            self._last = now
            return self._total * self._scale


def rapl_counters(root: str = POWERCAP) -> _Counters | None:
    zones = rapl_domains(root)
    if not zones:
        return None
    wraps = {z: int(_read(os.path.join(z, "max_energy_range_uj"))) for z in zones}
    return _Counters(lambda: {z: int(_read(os.path.join(z, "energy_uj"))) for z in zones},
                     wraps, 1e-6)


# ---------------------------------------------------------------------------
# NVML

def _visible_gpu_indices(count: int) -> list[int]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(count))
    parts = [p.strip() for p in visible.split(",") if p.strip()]
    if all(p.isdigit() for p in parts):
        return [int(p) for p in parts if int(p) < count]
    return list(range(count))  # UUIDs: measure every GPU rather than guess


def nvml_counters(nvml: Any = None) -> _Counters | None:
    """Total-energy counters of the visible GPUs, or None without NVML or support.

    `nvml` is the pynvml module (a stand-in in tests)."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return None
    try:
        nvml.nvmlInit()
        handles = [nvml.nvmlDeviceGetHandleByIndex(i)
                   for i in _visible_gpu_indices(nvml.nvmlDeviceGetCount())]
        if not handles:
            return None
        read = lambda: {i: int(nvml.nvmlDeviceGetTotalEnergyConsumption(h))  # noqa: E731
                        for i, h in enumerate(handles)}
        return _Counters(read, {}, 1e-3)  # millijoules; a 64-bit counter does not wrap
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported (pre-Volta), no driver, ...
        return None


# ---------------------------------------------------------------------------
# The meter

def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def estimated_watts(platform: str, device_kind: str, num_devices: int) -> tuple[float, str]:
    """(watts, assumption) for a run on `num_devices` JAX devices of one kind."""
    from vision_jax.scaling import hardware
    chip = hardware.chip_of_device(device_kind) if platform != "cpu" else None
    if chip is not None and chip.watts:
        chips = max(1, num_devices // chip.devices_per_chip)
        return chips * chip.watts, (f"{chips} x {chip.name} at its maximum board power "
                                    f"{chip.watts:g} W ({chip.source})")
    cores = _cpu_cores()
    what = "" if platform == "cpu" else f"no power figure for {device_kind!r}; "
    return cores * CPU_WATTS_PER_CORE, f"{what}{cores} CPU cores x {CPU_WATTS_SOURCE}"


class Meter:
    """Energy from start() to read(): measured (nvml, rapl) or estimated.

    A GPU run measures its GPUs through NVML, a CPU run the CPU packages
    through RAPL when readable; otherwise (TPUs, no NVML, unreadable RAPL)
    the energy is estimated from `estimated_watts`. `previous_joules` (from a checkpoint) is added.
    """

    def __init__(self, platform: str, device_kind: str, num_devices: int, *,
                 previous_joules: float = 0.0, grid_gco2_per_kwh: float | None = None,
                 powercap: str = POWERCAP, nvml: Any = None,
                 sample_seconds: float = SAMPLE_SECONDS):
        self.previous = float(previous_joules or 0.0)
        self.grid = GRID_GCO2_PER_KWH if grid_gco2_per_kwh is None else float(grid_gco2_per_kwh)
        self.counters, self.source, self.note = None, "estimated", ""
        if platform == "gpu":
            self.counters = nvml_counters(nvml)
            if self.counters is not None:
                self.source, self.note = "nvml", "GPUs only (NVML total energy)"
        if self.counters is None and platform == "cpu":  # host RAPL is no TPU's energy
            self.counters = rapl_counters(powercap)
            if self.counters is not None:
                self.source, self.note = "rapl", "CPU packages and DRAM (RAPL)"
        if self.counters is None:
            self.watts, self.note = estimated_watts(platform, device_kind, num_devices)
        self.start_time = time.perf_counter()
        self._stop = threading.Event()
        self._thread = None
        if self.counters is not None and self.source == "rapl":
            self._thread = threading.Thread(target=self._poll, args=(sample_seconds,),
                                            daemon=True, name="energy-meter")
            self._thread.start()

    def _poll(self, every: float) -> None:
        while not self._stop.wait(every):
            self.counters.sample()

    def joules(self) -> float:
        """Energy so far, including `previous_joules`."""
        if self.counters is not None:
            return self.previous + self.counters.sample()
        return self.previous + self.watts * (time.perf_counter() - self.start_time)

    def read(self) -> dict[str, Any]:
        """The run's energy entry: joules, kWh, source, what it covers, and CO2e."""
        j = self.joules()
        self._stop.set()
        kwh = j / J_PER_KWH
        entry = {"joules": j, "kwh": kwh, "source": self.source, "note": self.note,
                 "co2e_kg": kwh * self.grid / 1000, "grid_gco2_per_kwh": self.grid,
                 "grid_source": GRID_SOURCE if self.grid == GRID_GCO2_PER_KWH else "config"}
        if self.source == "estimated":
            entry["assumed_watts"] = self.watts
        return entry
