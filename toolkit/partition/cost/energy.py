"""Where a device's energy goes: compute, communication and idle.

A device's energy per request, with :class:`~toolkit.energy.model.PowerModel` of
its profile, is the sum of three parts (:class:`EnergySplit`):

* **compute**: ``P_busy × compute time`` (the device runs its part of the model);
* **communication**: its link's energy per byte (the profile's
  ``network_j_per_byte``) × the bytes it sends *and* receives;
* **idle**: ``P_wait × the time it is powered but not computing``.

What "powered" spans is the *idle accounting* (:data:`IDLE_ACCOUNTINGS`, the
``idle`` field of :class:`~toolkit.partition.cost.per_device.CostModel`):

* ``request`` (the default): every device is powered from the request's start
  to its end (the result complete on device 0), so its idle time is the
  request's latency minus its compute time; waiting for peers and for its own
  transfers counts as idle;
* ``busy``: a device is counted only for its own work, compute and bytes moved;
  its idle energy is 0 (as if it were switched off, or doing other work,
  whenever it is not computing).

The papers differ here: Tang, Guo and Stefanov count a device's energy over the
whole request (``request``), the hybrid-partitioning poster of Katare et al.
(SEC 2024) optimises computation and communication energy separately (``busy``
gives exactly those two).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from dataclasses import dataclass

from toolkit.config import IDLE_ACCOUNTINGS
from toolkit.energy.model import PowerModel
from toolkit.errors import ConfigError, choices

__all__ = ["ENERGY_SPLIT_KEYS", "IDLE_ACCOUNTINGS", "EnergySplit", "check_idle", "split_energy"]

#: the JSON keys (and partition cube variables) of an energy split, in order
ENERGY_SPLIT_KEYS = ("compute_energy_j", "comm_energy_j", "idle_energy_j")


def check_idle(idle: str) -> str:
    """``idle`` if it is an idle accounting, else a :class:`ConfigError` naming the valid ones."""
    if idle not in IDLE_ACCOUNTINGS:
        raise ConfigError(f"unknown idle accounting {idle!r}; valid: {choices(IDLE_ACCOUNTINGS)}")
    return idle


@dataclass(frozen=True)
class EnergySplit:
    """A device's (or a plan's) energy in its three parts, joules per request.

    Attributes:
        compute_j: energy while computing.
        comm_j: energy per byte sent and received.
        idle_j: energy while powered but not computing (0 under ``busy`` accounting).
    """

    compute_j: float = 0.0
    comm_j: float = 0.0
    idle_j: float = 0.0

    @property
    def total_j(self) -> float:
        """``compute_j + comm_j + idle_j``, added in that order (a device's ``energy_j``)."""
        return self.compute_j + self.comm_j + self.idle_j

    def __add__(self, other: EnergySplit) -> EnergySplit:
        return EnergySplit(self.compute_j + other.compute_j, self.comm_j + other.comm_j,
                           self.idle_j + other.idle_j)

    @classmethod
    def sum(cls, splits: Iterable[EnergySplit]) -> EnergySplit:
        """The parts summed over ``splits`` (several devices, or several samples)."""
        return functools.reduce(operator.add, splits, cls())

    def scaled(self, factor: float) -> EnergySplit:
        """Every part times ``factor`` (a mean over samples, a share of a metered total)."""
        return EnergySplit(self.compute_j * factor, self.comm_j * factor, self.idle_j * factor)

    def as_dict(self) -> dict[str, float]:
        """``{compute_energy_j, comm_energy_j, idle_energy_j}``."""
        return dict(zip(ENERGY_SPLIT_KEYS, (self.compute_j, self.comm_j, self.idle_j),
                        strict=True))


def split_energy(
    power: PowerModel,
    *,
    compute_s: float,
    request_s: float,
    bytes_moved: float,
    idle: str = "request",
    freq: int | None = None,
    accel: str = "none",
) -> EnergySplit:
    """A device's modelled energy in its three parts (see the module docstring).

    Args:
        power: the device's power model.
        compute_s: the time it computes.
        request_s: the request's latency (the span ``request`` accounting powers it).
        bytes_moved: the bytes it sends and receives.
        idle: the idle accounting, one of :data:`IDLE_ACCOUNTINGS`.
        freq: its CPU frequency (None: the profile's highest).
        accel: its accelerator setting.
    """
    check_idle(idle)
    compute = power.energy_j(compute_s, freq=freq, accel=accel)
    comm = power.energy_j(0.0, freq=freq, accel=accel, bytes_sent=bytes_moved)
    waiting = request_s - compute_s if idle == "request" else 0.0
    return EnergySplit(compute, comm, power.energy_j(0.0, waiting, freq=freq, accel=accel))
