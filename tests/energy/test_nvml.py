"""NvmlMeter.

There is no NVIDIA GPU on the development or CI machines, so NVML itself is not
exercised here. These tests cover what can be checked honestly: the errors when
the library or the GPU is missing (through the real pynvml import and
nvmlInit), and the meter's counter and power-integration arithmetic through its
``device`` seam, fed by a simulated GPU whose power curve is known.
"""

from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np
import pytest

from toolkit.energy import MeterUnavailableError, NvmlMeter, PowerModel, open_meter
from toolkit.errors import ConfigError
from toolkit.hardware.profile import load_profile

PERIOD = 0.3  # seconds, of the simulated GPU's power swing


def power_w(t: float) -> float:
    return 200.0 + 100.0 * math.sin(2 * math.pi * t / PERIOD)


def energy_j(t: float) -> float:
    """Integral of power_w from 0 to t."""
    return 200.0 * t + 100.0 * PERIOD / (2 * math.pi) * (1 - math.cos(2 * math.pi * t / PERIOD))


class SimulatedGpu:
    """A GPU drawing power_w(t): NVML's two readings, with what each read returned."""

    name = "Simulated GPU"

    def __init__(self, has_counter: bool) -> None:
        self.has_counter = has_counter
        self.t0 = time.perf_counter()
        self.reads: list[tuple[float, float]] = []  # (t, true power) at each read
        self._lock = threading.Lock()

    def _now(self) -> float:
        t = time.perf_counter() - self.t0
        with self._lock:
            self.reads.append((t, power_w(t)))
        return t

    def total_energy_mj(self) -> int | None:
        if not self.has_counter:
            return None
        return int(energy_j(self._now()) * 1000)  # NVML: integer millijoules

    def power_mw(self) -> int:
        return int(power_w(self._now()) * 1000)


def test_counter_mode_takes_joules_from_the_counter():
    gpu = SimulatedGpu(has_counter=True)
    meter = NvmlMeter(device=gpu, period_s=0.02)
    assert meter.mode == "counter" and meter.name == "Simulated GPU"
    gpu.reads.clear()  # forget the probe
    with meter.window() as out:
        time.sleep(0.3)
    m = out[0]
    assert m.source == "nvml"
    first, last = gpu.reads[0][0], gpu.reads[-1][0]
    # counter difference: exact up to the integer-millijoule truncation at both ends
    assert m.joules == pytest.approx(energy_j(last) - energy_j(first), abs=0.002)
    assert m.domains == {"gpu": pytest.approx(m.joules)}
    assert len(m.watts) == len(gpu.reads) - 1
    assert 100.0 < m.mean_watts < 300.0


def test_power_mode_integrates_sampled_power():
    gpu = SimulatedGpu(has_counter=False)
    meter = NvmlMeter(device=gpu, period_s=0.01)
    assert meter.mode == "power"
    with meter.window() as out:
        time.sleep(0.3)
    m = out[0]
    assert m.source == "nvml"
    t, p = np.array(gpu.reads).T
    assert np.allclose(m.watts, p, atol=0.001)  # each sample is the GPU's power then
    # the trapezoid of those samples, over the meter's own sample times
    assert m.joules == pytest.approx(float(np.sum((p[1:] + p[:-1]) * np.diff(t)) / 2), rel=0.05)
    assert m.duration_s == pytest.approx(t[-1] - t[0], abs=0.02)


def test_no_gpu_names_the_meter_and_what_was_probed():
    # Here: no NVIDIA driver (nvmlInit fails). On a GPU host: no GPU number 999.
    with pytest.raises(MeterUnavailableError, match=r"nvml meter: .*(GPU 999|index 999)"):
        NvmlMeter(index=999)


def test_index_is_a_gpu_number():
    for bad in (-1, 1.0, True, "0"):
        with pytest.raises(ConfigError, match=r"index must be a GPU index 0, 1, \.\.\., got"):
            NvmlMeter(index=bad)
    meter = NvmlMeter(index=np.int64(0), device=SimulatedGpu(has_counter=True), period_s=0.02)
    assert meter.index == 0 and type(meter.index) is int  # a NumPy integer is an index


def test_missing_library_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with pytest.raises(MeterUnavailableError, match=r"nvml meter: .*nvidia-ml-py"):
        NvmlMeter()


def test_missing_library_falls_back_to_the_model(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    model = PowerModel(load_profile("cloud-gpu-server"))
    meter = open_meter({"kind": "nvml", "index": 0}, fallback=model)
    assert meter.source == "model:cloud-gpu-server"
    assert "nvidia-ml-py" in caplog.text and "model:cloud-gpu-server" in caplog.text
