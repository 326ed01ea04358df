"""PowerModelMeter with real processes: one spinning on the CPU, one asleep."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from toolkit.energy import PowerModel, PowerModelMeter
from toolkit.errors import ConfigError, ToolkitError
from toolkit.hardware.profile import load_profile


@pytest.fixture
def pi4() -> PowerModel:
    return PowerModel(load_profile("raspberry-pi-4"))


@pytest.fixture
def workers():
    # each says "ready" once the interpreter has started, so that the start-up's
    # CPU time (20-30 ms) falls before the window, not in it
    busy = subprocess.Popen(
        [sys.executable, "-c", "print('ready', flush=True)\nwhile True: pass"],
        stdout=subprocess.PIPE,
    )
    idle = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    for p in (busy, idle):
        assert p.stdout.readline().strip() == b"ready"
    yield busy, idle
    for p in (busy, idle):
        p.kill()
        p.wait()


#: two 10 ms /proc ticks and a hair: how far a window's modelled CPU time may be
#: from the CPU time read around it (seen: 13 ms on a busy 2-core CI machine)
TICKS_S = 0.021


def _cpu(pid: int | None = None) -> float:
    return sum(psutil.Process(pid).cpu_times()[:2])


def test_busy_process_draws_busy_power_idle_one_waiting_power(pi4, workers):
    busy, idle = workers
    m_busy = PowerModelMeter(pi4, pid=busy.pid, freq=1800, period_s=0.05)
    m_idle = PowerModelMeter(pi4, pid=idle.pid, freq=1800, period_s=0.05)
    assert (m_busy.busy_w, m_busy.wait_w) == (4.5, 3.8)
    # bracket the window's CPU time: the machine is shared, so the spinner gets
    # some of a core, and the test runs until it has had 0.2 s of CPU
    cpu_a, idle_a = _cpu(busy.pid), _cpu(idle.pid)
    m_busy.begin_window()
    cpu_b = _cpu(busy.pid)
    m_idle.begin_window()
    deadline = time.perf_counter() + 10
    while _cpu(busy.pid) - cpu_b < 0.2 and time.perf_counter() < deadline:
        time.sleep(0.02)
    cpu_c = _cpu(busy.pid)
    busy_m, idle_m = m_busy.end_window(), m_idle.end_window()
    cpu_d, idle_d = _cpu(busy.pid), _cpu(idle.pid)
    span = 4.5 - 3.8
    for m in (busy_m, idle_m):
        assert m.source == "model:raspberry-pi-4"
        assert len(m.watts) >= 2
        assert m.domains == {"model": pytest.approx(m.joules)}
        assert m.watts.min() >= 3.8 - 1e-9 and m.watts.max() <= 4.5 + 1e-9
    # wait power all along plus the busy surplus for the CPU time the worker used
    # (one thread on a one-core device never exceeds full utilisation); /proc
    # counts in 10 ms ticks, and what the last short interval seems to hold beyond
    # its length is dropped: allow a tick at each end of the window (TICKS_S)
    surplus_cpu_s = (busy_m.joules - 3.8 * busy_m.duration_s) / span
    assert cpu_c - cpu_b - TICKS_S <= surplus_cpu_s <= cpu_d - cpu_a + TICKS_S
    assert surplus_cpu_s > 0.15
    idle_surplus_cpu_s = (idle_m.joules - 3.8 * idle_m.duration_s) / span
    # the sleeper used (next to) no CPU: its surplus is what /proc counted for it
    assert idle_surplus_cpu_s <= idle_d - idle_a + TICKS_S
    assert idle_surplus_cpu_s < 0.03


def test_accelerator_and_frequency_come_from_the_profile(pi4):
    meter = PowerModelMeter(pi4, freq=600, accel="tpu-max")
    assert meter.watts(0.0) == pytest.approx(2.70 + 1.9)
    assert meter.watts(1.0) == pytest.approx(2.95 + 1.9)
    assert meter.watts(0.5) == pytest.approx(2.825 + 1.9)
    assert meter.watts(3.0) == meter.watts(1.0)  # utilisation is clipped
    with pytest.raises(ConfigError, match=r"frequency 700 MHz.*valid: 600, 800"):
        PowerModelMeter(pi4, freq=700)
    with pytest.raises(ConfigError, match="no power figures for accelerator 'gpu'"):
        PowerModelMeter(pi4, accel="gpu")
    with pytest.raises(ConfigError, match="cores"):
        PowerModelMeter(pi4, cores=0)
    with pytest.raises(ConfigError, match="cores must be an integer >= 1, got True"):
        PowerModelMeter(pi4, cores=True)


def test_numpy_integers_are_integers(pi4):
    # counts read from an array or a cube's attributes arrive as NumPy integers
    meter = PowerModelMeter(pi4, cores=np.int64(2), pid=np.int32(psutil.Process().pid))
    assert meter.cores == 2 and type(meter.cores) is int
    assert meter.pid == psutil.Process().pid and type(meter.pid) is int
    with pytest.raises(ConfigError, match="pid must be a process id"):
        PowerModelMeter(pi4, pid=np.int64(0))


def test_own_process_by_default_and_missing_pid(pi4):
    meter = PowerModelMeter(pi4, period_s=0.02)
    cpu_a = _cpu()
    meter.begin_window()
    cpu_b = _cpu()
    while _cpu() - cpu_b < 0.1:  # this process is busy for 0.1 s of CPU
        pass
    cpu_c = _cpu()
    m = meter.end_window()
    cpu_d = _cpu()
    surplus_cpu_s = (m.joules - 3.8 * m.duration_s) / (4.5 - 3.8)
    # the sampler thread's CPU counts too: it is part of this process
    assert cpu_c - cpu_b - TICKS_S <= surplus_cpu_s <= cpu_d - cpu_a + TICKS_S
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with pytest.raises(ToolkitError, match=f"no process with pid {gone.pid}"):
        PowerModelMeter(pi4, pid=gone.pid)


def test_cpu_tick_rounding_is_carried_not_lost(pi4):
    meter = PowerModelMeter(pi4, freq=1800)
    # 15 ms of CPU reported in a 10 ms interval, 5 ms in the next: both fully busy
    joules = meter.interval_joules(np.array([[0.015], [0.005], [0.0]]), np.array([0.01] * 3))
    assert joules[:, 0] == pytest.approx([4.5 * 0.01, 4.5 * 0.01, 3.8 * 0.01])
    # beyond the device's cores for good: the excess is dropped, power stays at busy
    joules = meter.interval_joules(np.array([[0.05]]), np.array([0.01]))
    assert joules[0, 0] == pytest.approx(4.5 * 0.01)
