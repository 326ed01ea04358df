"""Background sampling shared by the meters.

Two kinds of source exist:

* **power sources** (INA219/INA260, SCPI power meters, NVML without an energy
  counter) give instantaneous watts; :class:`PowerSampledMeter` samples them at a
  fixed period on a background thread and integrates the trace with the
  trapezoid rule;
* **energy counters** (RAPL, the NVML total-energy counter) give cumulative
  joules; :class:`CounterMeter` takes the window's joules straight from counter
  differences (correcting wraparound) and samples them at a period only so that
  a power trace exists. The power model's meter counts CPU seconds the same way
  and converts each interval's share to joules.

Both take one sample synchronously when the window begins, so a dead source fails
in ``begin_window()`` rather than silently in the background, and one when it
ends; an error on the background thread is raised again by ``end_window()``.
"""

from __future__ import annotations

import abc
import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import numpy as np

from toolkit.energy.meter import Measurement, Meter, trapezoid_joules
from toolkit.errors import ToolkitError, check_number

__all__ = ["CounterMeter", "PeriodicSampler", "PowerSampledMeter", "counter_delta"]

T = TypeVar("T")


def _check_period(period_s: float, what: str) -> float:
    check_number(period_s, f"{what}: period_s", 0.0, 60.0, low_open=True, unit="seconds")
    return float(period_s)


class PeriodicSampler(Generic[T]):
    """Calls ``read()`` every ``period_s`` seconds on a daemon thread.

    The first sample is taken synchronously by :meth:`start` and the last one by
    :meth:`stop`, so a window always has at least two samples that bracket it.
    Missed ticks (a read slower than the period) are skipped, not queued.
    Timestamps are seconds since the first sample, taken at the middle of each read.

    Args:
        read: returns one sample; it is never called concurrently with itself.
        period_s: sampling period in seconds.
        name: the meter's name, for thread names and messages.
    """

    def __init__(self, read: Callable[[], T], period_s: float, name: str) -> None:
        self._read = read
        self.period_s = _check_period(period_s, name)
        self.name = name
        self._times: list[float] = []
        self._values: list[T] = []
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def running(self) -> bool:
        """Whether a sampling window is open."""
        return self._thread is not None

    def _sample(self) -> None:
        before = time.perf_counter()
        value = self._read()
        after = time.perf_counter()
        self._times.append((before + after) / 2.0 - self._t0)
        self._values.append(value)

    def start(self) -> None:
        """Take the first sample now and start the background thread.

        Raises:
            ToolkitError: a window is already open, or the first read failed.
        """
        if self._thread is not None:
            raise ToolkitError(f"{self.name}: a measurement window is already open")
        self._times, self._values, self._error = [], [], None
        self._stop.clear()
        self._t0 = time.perf_counter()
        value = self._read()
        self._times.append(0.0)
        self._values.append(value)
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick = 1
        while True:
            wait = self._t0 + tick * self.period_s - time.perf_counter()
            if self._stop.wait(max(wait, 0.0)):
                return
            try:
                self._sample()
            except BaseException as exc:  # re-raised by stop()
                self._error = exc
                return
            elapsed = time.perf_counter() - self._t0
            tick = max(tick + 1, math.floor(elapsed / self.period_s) + 1)

    def stop(self) -> tuple[np.ndarray, list[T]]:
        """Stop the thread, take the last sample and return ``(times, samples)``.

        Raises:
            ToolkitError: no window is open.
            Exception: whatever a background read raised.
        """
        if self._thread is None:
            raise ToolkitError(f"{self.name}: no measurement window is open")
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        self._sample()
        return np.asarray(self._times, dtype=float), list(self._values)


class _SampledMeter(Meter, Generic[T]):
    """A meter whose readings a :class:`PeriodicSampler` takes during each window."""

    def __init__(self, read: Callable[[], T], period_s: float, name: str) -> None:
        self._sampler: PeriodicSampler[T] = PeriodicSampler(read, period_s, name)

    @property
    def period_s(self) -> float:
        """Sampling period in seconds."""
        return self._sampler.period_s

    def begin_window(self) -> None:
        """Start a window: read once now, then every ``period_s`` in the background."""
        self._sampler.start()


class PowerSampledMeter(_SampledMeter[float]):
    """A meter that samples instantaneous power and integrates it (trapezoid rule).

    Subclasses implement :meth:`read_watts` and set :attr:`source`.
    """

    def __init__(self, period_s: float, name: str) -> None:
        super().__init__(self.read_watts, period_s, name)

    @abc.abstractmethod
    def read_watts(self) -> float:
        """One instantaneous power reading in watts."""

    def end_window(self) -> Measurement:
        """Stop the window; joules are the trapezoid integral of the sampled trace."""
        times, values = self._sampler.stop()
        watts = np.asarray(values, dtype=float)
        return Measurement(
            joules=trapezoid_joules(times, watts),
            duration_s=float(times[-1] - times[0]),
            source=self.source,
            timestamps=times,
            watts=watts,
        )


def counter_delta(before: float, after: float, wrap: float | None) -> float:
    """Difference of two readings of a cumulative counter that wraps at ``wrap``.

    A counter that reads less than before has wrapped once (the sampling period
    is kept well below the wrap time); ``wrap`` is its range, e.g. RAPL's
    ``max_energy_range_uj``. Without a range a decrease is an error.

    Raises:
        ToolkitError: the counter went backwards and has no wrap range.
    """
    delta = after - before
    if delta < 0:
        if not wrap:
            raise ToolkitError(
                f"energy counter went backwards ({before} -> {after}) and has no wrap range"
            )
        delta += wrap
    return delta


class CounterMeter(_SampledMeter[Mapping[str, float]]):
    """A meter whose joules come from cumulative energy counters.

    Subclasses implement :meth:`read_counters` (joules per domain, cumulative) and
    may override :meth:`wrap_ranges` and :meth:`total_domains`. The window's
    joules per domain are the sum of wrap-corrected differences between
    successive samples, so several wraps within one long window are counted as
    long as the sampling period is shorter than the wrap time. The power trace
    gives, at the middle of each sampling interval, the mean power of the total
    domains over that interval.
    """

    def __init__(self, period_s: float, name: str) -> None:
        super().__init__(self.read_counters, period_s, name)

    @abc.abstractmethod
    def read_counters(self) -> Mapping[str, float]:
        """Cumulative joules per domain."""

    def wrap_ranges(self) -> Mapping[str, float]:
        """Range in joules after which each domain's counter wraps (absent: never)."""
        return {}

    def total_domains(self, domains: list[str]) -> list[str]:
        """The domains whose sum is the window's total (default: all of them)."""
        return domains

    def interval_joules(self, steps: np.ndarray, dt: np.ndarray) -> np.ndarray:
        """Joules per interval and domain from counter steps (default: steps are joules).

        Args:
            steps: counter increase per interval (rows) and domain (columns).
            dt: interval lengths in seconds.
        """
        return steps

    def end_window(self) -> Measurement:
        """Stop the window; joules are counter differences, not a trace integral."""
        times, samples = self._sampler.stop()
        names = list(samples[0])
        wraps = self.wrap_ranges()
        steps = np.array(
            [
                [counter_delta(a[d], b[d], wraps.get(d)) for d in names]
                for a, b in itertools.pairwise(samples)
            ],
            dtype=float,
        ).reshape(len(samples) - 1, len(names))
        dt = np.diff(times)
        steps = self.interval_joules(steps, dt)
        per_domain = {d: float(steps[:, i].sum()) for i, d in enumerate(names)}
        total_idx = [names.index(d) for d in self.total_domains(names)]
        step_total = steps[:, total_idx].sum(axis=1)
        watts = step_total / np.where(dt > 0, dt, np.inf)  # 0 W for an empty interval
        return Measurement(
            joules=float(step_total.sum()),
            duration_s=float(times[-1] - times[0]),
            source=self.source,
            timestamps=(times[:-1] + times[1:]) / 2.0,
            watts=watts,
            domains=per_domain,
        )
