"""The meter interface: a measurement window that yields a power trace and joules.

Style follows Zeus' measurement windows: ``begin_window()`` starts one,
``end_window()`` stops it and returns a :class:`Measurement`. Implementations
live beside this module (RAPL, NVML, INA219/INA260, SCPI power meters, the
power model); each says where its figures come from in ``source``.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Measurement", "Meter", "MeterUnavailableError", "trapezoid_joules"]


class MeterUnavailableError(ToolkitError):
    """The meter's hardware or library is missing; the message names what was probed.

    :func:`toolkit.energy.open_meter` falls back to the power model on this error
    (and only on this one) when it is given a fallback.
    """


@dataclass
class Measurement:
    """The result of one measurement window.

    Attributes:
        joules: energy over the window.
        duration_s: window length in seconds.
        source: ``energy_source`` label: ``meter:<name>``, ``rapl``, ``nvml`` or
            ``model:<profile>``.
        timestamps: sample times in seconds from the window start (may be empty
            for counter-based sources).
        watts: power samples matching ``timestamps``.
        domains: joules per sub-domain where the source has several (e.g. RAPL
            ``package-0`` and ``dram``).
    """

    joules: float
    duration_s: float
    source: str
    timestamps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    watts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    domains: dict[str, float] = field(default_factory=dict)

    @property
    def mean_watts(self) -> float:
        """Average power over the window."""
        return self.joules / self.duration_s if self.duration_s > 0 else float("nan")


def trapezoid_joules(timestamps: np.ndarray, watts: np.ndarray) -> float:
    """Integrate a power trace (seconds, watts) with the trapezoid rule."""
    t = np.asarray(timestamps, dtype=float)
    w = np.asarray(watts, dtype=float)
    if t.size < 2:
        return 0.0
    return float(np.sum((w[1:] + w[:-1]) * np.diff(t)) / 2.0)


class Meter(abc.ABC):
    """A source of energy figures for one device."""

    #: the ``energy_source`` label of this meter's figures
    source: str = "unknown"

    @abc.abstractmethod
    def begin_window(self) -> None:
        """Start a measurement window."""

    @abc.abstractmethod
    def end_window(self) -> Measurement:
        """Stop the current window and return its measurement."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the meter's resources."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def window(self) -> Iterator[list[Measurement]]:
        """Context manager: ``with meter.window() as out: ...``; ``out[0]`` after."""
        out: list[Measurement] = []
        self.begin_window()
        try:
            yield out
        finally:
            out.append(self.end_window())
