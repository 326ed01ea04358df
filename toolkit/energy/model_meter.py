"""A meter for devices without one: the power model driven by measured CPU use.

During a window the meter samples a process's CPU time with psutil at
``period_s``. Over each interval, utilisation ``u`` is the CPU time the process
used divided by the interval times the device's cores (at most 1; CPU-time tick
rounding beyond that is carried into the next interval), and
power is ``wait_w + (busy_w - wait_w) × u`` from the device profile at the given
frequency and accelerator. The window's joules are the sum over intervals, i.e.
the exact integral of that piecewise-constant power.

Every figure is labelled ``model:<profile>`` (:attr:`PowerModel.source`): it is
modelled, never measured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import psutil

from toolkit.energy.model import PowerModel
from toolkit.energy.sampling import CounterMeter
from toolkit.errors import ConfigError, ToolkitError, is_count

__all__ = ["PowerModelMeter"]


class PowerModelMeter(CounterMeter):
    """Modelled power of a device from a process's CPU utilisation.

    Args:
        model: the device's power model.
        pid: the process doing the device's work (default: this process). Its
            children are not counted.
        freq: CPU frequency in MHz (default: the profile's highest).
        accel: accelerator name of the profile (``none``, ``tpu-std``...).
        period_s: sampling period.
        cores: cores a fully busy device keeps busy (default: the profile's
            ``emulated_cores``, the host cores the local testbed gives it).

    Raises:
        ConfigError: a frequency, accelerator or core count the profile does not have.
        ToolkitError: no process with that pid.
    """

    def __init__(
        self,
        model: PowerModel,
        pid: int | None = None,
        freq: int | None = None,
        accel: str = "none",
        *,
        period_s: float = 0.1,
        cores: int | None = None,
    ) -> None:
        super().__init__(period_s, f"model:{model.profile.name}")
        self.model = model
        self.freq = freq
        self.accel = accel
        self.busy_w = model.busy_w(freq, accel)  # validates freq and accel
        self.wait_w = model.wait_w(freq, accel)
        cores = model.profile.emulated_cores if cores is None else cores
        if not is_count(cores, 1):
            raise ConfigError(f"model meter: cores must be an integer >= 1, got {cores!r}")
        self.cores = int(cores)
        if pid is not None and not is_count(pid, 1):
            raise ConfigError(f"model meter: pid must be a process id (an integer >= 1), "
                              f"got {pid!r}")
        self.pid = os.getpid() if pid is None else int(pid)
        try:
            self._process = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            raise ToolkitError(f"model meter: no process with pid {self.pid}") from None

    @property
    def source(self) -> str:  # type: ignore[override]
        """``model:<profile>``."""
        return self.model.source

    def _cpu_seconds(self) -> float:
        try:
            t = self._process.cpu_times()
        except psutil.NoSuchProcess:
            raise ToolkitError(
                f"model meter: process {self.pid} ended during the measurement window"
            ) from None
        return t.user + t.system

    def watts(self, utilisation: float) -> float:
        """Modelled power at a utilisation in [0, 1]."""
        u = min(max(utilisation, 0.0), 1.0)
        return self.wait_w + (self.busy_w - self.wait_w) * u

    def read_counters(self) -> Mapping[str, float]:
        """The process's cumulative CPU seconds (converted by :meth:`interval_joules`)."""
        return {"model": self._cpu_seconds()}

    def interval_joules(self, steps: np.ndarray, dt: np.ndarray) -> np.ndarray:
        """Modelled joules per interval from the CPU seconds used in it.

        The kernel counts CPU time in ticks (usually 10 ms), so an interval can
        appear to hold more CPU time than its length allows; the excess is
        carried into the next interval rather than lost. What is still left at
        the end was genuinely beyond the device's cores and is dropped.
        """
        used = np.zeros(len(dt))
        carry = 0.0
        for i, (cpu_s, length) in enumerate(zip(steps[:, 0], dt, strict=True)):
            capacity = max(length, 0.0) * self.cores
            available = cpu_s + carry
            used[i] = min(available, capacity)
            carry = available - used[i]
        utilisation = used / np.where(dt > 0, dt * self.cores, np.inf)
        watts = self.wait_w + (self.busy_w - self.wait_w) * utilisation
        return (watts * dt)[:, None]
