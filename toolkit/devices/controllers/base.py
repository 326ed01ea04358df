"""Interfaces every testbed implements, local emulated or reached over SSH.

A *knob* is one hardware setting (edge CPU frequency, TPU power, TPU runtime
mode, cloud GPU). Changing one returns a :class:`KnobChange` with its measured
duration: this is the reconfiguration cost the online scheduler weighs.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from toolkit.config import Config
from toolkit.errors import ConfigError
from toolkit.switching import elapsed_ms

if TYPE_CHECKING:  # asyncssh is imported only where SSH is used
    from typing_extensions import Self

    from toolkit.devices.inventory import Host
    from toolkit.devices.transport.deploy import DeployReport
    from toolkit.devices.transport.ssh import SshTransport
    from toolkit.hardware.profile import DeviceProfile

__all__ = ["EdgeController", "HostController", "KnobChange", "switch_time_ms"]


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


def switch_time_ms(changes: Iterable[KnobChange]) -> float:
    """How long a set of knob changes took: each host changes its knobs one after
    another, the hosts at the same time (the edge and the cloud; unchanged knobs
    cost nothing; :func:`toolkit.switching.elapsed_ms`, the rule predictions use)."""
    return elapsed_ms((c.host, c.duration_ms) for c in changes if c.changed)


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


class HostController:
    """What the controller of an inventory host has: its SSH transport, its
    device profile (default: the host's) and its name.

    Args:
        transport: the host's SSH transport.
        profile: its device profile (default: the host's profile).
    """

    #: the host's role, for the error of a host without a profile
    role = "device"

    def __init__(self, transport: SshTransport, profile: DeviceProfile | None = None) -> None:
        profile = profile or transport.host.profile
        if profile is None:
            raise ConfigError(f"{transport.host.where}: the {self.role} host needs a 'profile'")
        self.transport = transport
        self.profile = profile

    @classmethod
    def from_host(cls, host: Host) -> Self:
        """A controller with its own transport for an inventory host."""
        from toolkit.devices.transport.ssh import SshTransport

        return cls(SshTransport(host))

    @property
    def name(self) -> str:
        """The host's inventory name."""
        return self.transport.name

    async def deploy(self, files: Mapping[str | os.PathLike, str],
                     progress: bool = True) -> DeployReport:
        """Copy files (local → remote path) with checksum verification, skipping identical ones."""
        from toolkit.devices.transport.deploy import deploy

        return await deploy(self.transport, files, progress=progress)
