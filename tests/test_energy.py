"""The energy meter: RAPL on a fake powercap tree (with wrap-around), NVML through a
stand-in module, and the energy entry of a real tiny run on this machine."""

import json
import os

import pytest
from helpers import tiny_config

from vision_jax import energy


def _zone(root, leaf, name, uj, wrap=1_000_000):
    z = root / leaf
    z.mkdir()
    (z / "name").write_text(name + "\n")
    (z / "energy_uj").write_text(f"{uj}\n")
    (z / "max_energy_range_uj").write_text(f"{wrap}\n")
    return z


def test_rapl_sums_packages_and_dram_and_counts_wraps(tmp_path):
    pkg0 = _zone(tmp_path, "intel-rapl:0", "package-0", 900_000)   # wraps at 1e6
    dram = _zone(tmp_path, "intel-rapl:0:1", "dram", 10)
    _zone(tmp_path, "intel-rapl:0:0", "core", 5)                  # inside the package
    _zone(tmp_path, "intel-rapl:1", "psys", 7)                    # the whole SoC
    pkg1 = _zone(tmp_path, "intel-rapl:1:0", "package-1", 0)      # not a top zone
    unreadable = _zone(tmp_path, "intel-rapl:2", "package-2", 0)
    (unreadable / "energy_uj").write_text("not a number\n")
    assert energy.rapl_domains(str(tmp_path)) == [str(pkg0), str(dram)]

    counters = energy.rapl_counters(str(tmp_path))
    (pkg0 / "energy_uj").write_text("100000\n")                  # wrapped: +200,000 uJ
    (dram / "energy_uj").write_text("30\n")                      # +20 uJ
    (pkg1 / "energy_uj").write_text("999\n")                     # ignored
    assert counters.sample() == pytest.approx(0.200020)
    (pkg0 / "energy_uj").write_text("950000\n")                  # +850,000 uJ, no wrap
    assert counters.sample() == pytest.approx(1.050020)
    assert energy.counter_delta(999_990, 5, 1_000_000) == 15


def test_rapl_meter_polls_so_every_wrap_counts(tmp_path):
    pkg = _zone(tmp_path, "intel-rapl:0", "package-0", 0, wrap=1000)
    meter = energy.Meter("cpu", "cpu", 1, powercap=str(tmp_path), sample_seconds=3600)
    for value in (600, 100, 700, 200):                           # two wraps at 1000 uJ
        (pkg / "energy_uj").write_text(f"{value}\n")
        meter.counters.sample()                                  # what the poll thread does
    entry = meter.read()
    assert entry["source"] == "rapl" and entry["joules"] == pytest.approx(2200e-6)


class FakeNVML:
    """pynvml's calls that the meter uses; GPU i has used 1000 * (i + 1) mJ per read."""

    def __init__(self, count=2, supported=True):
        self.count, self.supported, self.reads = count, supported, [0] * count

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.supported:
            raise RuntimeError("NVMLError_NotSupported")
        self.reads[handle] += 1
        return 5_000_000 + 1000 * (handle + 1) * self.reads[handle]


def test_nvml_meter_counts_the_visible_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    meter = energy.Meter("gpu", "NVIDIA H100 80GB HBM3", 1, nvml=FakeNVML(),
                         previous_joules=3.0)
    entry = meter.read()  # GPU 1 only: 2000 mJ between the first read and this one
    assert entry["source"] == "nvml" and entry["joules"] == pytest.approx(3.0 + 2.0)
    assert entry["kwh"] == pytest.approx(5.0 / 3.6e6)
    assert entry["co2e_kg"] == pytest.approx(entry["kwh"] * energy.GRID_GCO2_PER_KWH / 1000)


def test_without_nvml_support_a_gpu_run_is_estimated_from_its_board_power():
    meter = energy.Meter("gpu", "NVIDIA H100 80GB HBM3", 8, nvml=FakeNVML(supported=False),
                         grid_gco2_per_kwh=50)
    meter.start_time -= 10.0  # as if 10 s had passed
    entry = meter.read()
    assert entry["source"] == "estimated" and entry["assumed_watts"] == 8 * 700
    assert entry["joules"] == pytest.approx(8 * 700 * 10, rel=0.01)
    assert "H100" in entry["note"] and entry["grid_source"] == "config"
    assert entry["co2e_kg"] == pytest.approx(entry["kwh"] * 50 / 1000)


def test_a_tiny_run_records_its_energy_labelled_by_what_this_machine_exposes(tmp_path):
    from vision_jax import train
    config = tiny_config("default.py", str(tmp_path / "tfds"), "total_steps=2",
                         "eval_every_steps=0", "checkpoint.every_steps=2",
                         "checkpoint.async_save=False", "energy.grid_gco2_per_kwh=100.0")
    summary = train.train(config, str(tmp_path / "run"))
    with open(tmp_path / "run" / "summary.json") as f:
        entry = json.load(f)["energy"]
    assert entry == summary["energy"]
    expected = "rapl" if energy.rapl_domains() else "estimated"  # no GPU here: never nvml
    assert entry["source"] == expected, entry
    assert entry["joules"] > 0 and entry["kwh"] == pytest.approx(entry["joules"] / 3.6e6)
    assert entry["co2e_kg"] == pytest.approx(entry["kwh"] * 100.0 / 1000)
    # The checkpoint carries the energy so far, which a resumed run starts from.
    with open(tmp_path / "run" / "checkpoints" / "2" / "meta" / "metadata") as f:
        assert 0 < json.load(f)["energy_joules"] <= entry["joules"]
    if expected == "estimated":
        cores = len(os.sched_getaffinity(0))
        assert entry["assumed_watts"] == cores * energy.CPU_WATTS_PER_CORE
        assert "CPU cores" in entry["note"]
        # The estimate is power x this run's wall time (compile included), no more.
        assert entry["joules"] <= entry["assumed_watts"] * (summary["wall_seconds"] + 60)
