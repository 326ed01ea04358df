"""Interfaces every testbed implements, local emulated or reached over SSH.

A *knob* is one hardware setting (edge CPU frequency, TPU power, TPU runtime
mode, cloud GPU). Changing one returns a :class:`KnobChange` with its measured
duration: this is the reconfiguration cost the online scheduler weighs.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from toolkit.config import Config

__all__ = ["EdgeController", "KnobChange"]


@dataclass(frozen=True)
class KnobChange:
    """One hardware setting changed (or confirmed) on one host.

    Attributes:
        host: host name from the inventory (``local`` on the emulated testbed).
        knob: ``cpu_freq``, ``tpu_power``, ``tpu_mode`` or ``cloud_accel``.
        value: the value set, as a string.
        duration_ms: wall time of the change, including verification.
        changed: False when the knob already had that value (nothing done).
        verified: True when the value was read back and matched.
    """

    host: str
    knob: str
    value: str
    duration_ms: float
    changed: bool = True
    verified: bool = True


class EdgeController(abc.ABC):
    """Sets the hardware knobs of one edge device."""

    @abc.abstractmethod
    async def available_frequencies(self) -> list[int]:
        """CPU frequencies in MHz the device offers."""

    @abc.abstractmethod
    async def set_cpu_freq(self, mhz: int) -> KnobChange:
        """Set (and verify) the CPU frequency."""

    @abc.abstractmethod
    async def set_edge_accel(self, accel: str) -> list[KnobChange]:
        """Make ``accel`` usable: power the TPU on/off and pick its runtime mode."""

    async def apply(self, config: Config) -> list[KnobChange]:
        """Apply a configuration's edge knobs; returns every change made."""
        changes = [await self.set_cpu_freq(config.cpu_freq)]
        changes += await self.set_edge_accel(config.edge_accel)
        return changes
