"""Device profiles: what a device can be set to and what it costs.

A profile is a TOML file under ``hardware/profiles/`` (see the shipped ones for
the documented format and the sources of every number). Loading validates it and
names the file, the key and the expected value in every error.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.config import ACCELERATORS
from toolkit.errors import ConfigError, choices
from toolkit.fileio import as_path
from toolkit.hardware.cloud_timing import CloudTimingModel
from toolkit.hardware.edge_timing import EdgeTimingModel
from toolkit.paths import PROFILES_DIR
from toolkit.tomlfile import TypedTable, read_toml

__all__ = ["AcceleratorPower", "DeviceProfile", "PowerSpec", "available_profiles", "load_profile"]


@dataclass(frozen=True)
class AcceleratorPower:
    """Power of one accelerator: ``extra_w`` added, or ``busy_w`` replacing busy power."""

    extra_w: float = 0.0
    busy_w: float | None = None


@dataclass(frozen=True)
class PowerSpec:
    """The power model of a device (see :class:`toolkit.energy.PowerModel`)."""

    busy_w: tuple[float, ...]
    wait_w: tuple[float, ...]
    network_j_per_byte: float
    accelerators: dict[str, AcceleratorPower]


@dataclass(frozen=True)
class DeviceProfile:
    """A device profile loaded from TOML.

    Attributes:
        name: profile name (the file's ``profile.name``).
        role: ``edge`` or ``cloud``.
        frequencies_mhz: settable CPU frequencies, ascending (empty: not settable).
        cores: physical cores of the real device.
        emulated_cores: host cores the local testbed gives this device's worker.
        accelerators: accelerator names this device offers.
        power: its power model.
        reconfiguration: knob-change costs (``*_ms`` and ``*_j``).
        settings: the remaining tables (``cpu``, ``tpu``...) for device controllers.
        path: the file it was loaded from.
        timing: how long the device runs a head per accelerator (its ``[timing]``
            tables, see :mod:`toolkit.hardware.edge_timing`), or None.
        link: the emulated edge-cloud link ``{"mbps", "rtt_ms", "source"}`` (its
            ``[link]`` table), or None.
        tail_timing: how long a cloud node runs a tail per accelerator (its
            ``[tail_timing]`` tables, see :mod:`toolkit.hardware.cloud_timing`), or None.
    """

    name: str
    role: str
    description: str
    frequencies_mhz: tuple[int, ...]
    cores: int
    emulated_cores: int
    accelerators: tuple[str, ...]
    power: PowerSpec
    reconfiguration: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    timing: EdgeTimingModel | None = None
    link: dict[str, Any] | None = None
    tail_timing: CloudTimingModel | None = None

    @property
    def max_freq(self) -> int | None:
        """Highest settable frequency, or None where frequency is not settable."""
        return max(self.frequencies_mhz) if self.frequencies_mhz else None

    def scaled_cores(self, freq: int) -> float:
        """Host cores an uncalibrated emulation gives this device at ``freq``:
        ``emulated_cores × f / f_max`` (the local testbed without a timing model,
        the partition cluster's device workers)."""
        return self.emulated_cores * freq / self.max_freq

    def check_role(self, role: str) -> DeviceProfile:
        """Return this profile if it is for ``role`` (``edge`` or ``cloud``), else raise
        a ConfigError naming the shipped profiles that are."""
        if self.role != role:
            fitting = [n for n in available_profiles() if load_profile(n).role == role]
            raise ConfigError(f"profile {self.name!r} has role {self.role!r}; here a profile "
                              f"with role {role!r} is needed (shipped: {choices(fitting)})")
        return self

    def check_freq(self, freq: int) -> int:
        """Return ``freq`` if this profile offers it, else raise a ConfigError."""
        return self._offered(freq, self.frequencies_mhz, f"frequency {freq} MHz")

    def check_accel(self, accel: str) -> str:
        """Return ``accel`` if this profile offers it, else raise a ConfigError."""
        return self._offered(accel, self.accelerators, f"accelerator {accel!r}")

    def _offered(self, value, offered, what: str):
        if value not in offered:
            raise ConfigError(f"{what} is not in profile {self.name!r}; valid: {choices(offered)}")
        return value


def available_profiles() -> list[str]:
    """Names of the shipped profiles (files in ``hardware/profiles``)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def _resolve(name_or_path: str | os.PathLike) -> Path:
    p = as_path(name_or_path, "a device profile (a shipped profile's name or a TOML file)")
    if p.suffix == ".toml" or p.exists():
        return p
    return PROFILES_DIR / f"{name_or_path}.toml"


def _accelerator_power(table: TypedTable) -> dict[str, AcceleratorPower]:
    """The ``[power.accelerators]`` entries: ``extra_w`` >= 0 added, or ``busy_w`` > 0."""
    power = {}
    for name in table.data:
        spec = table.table(name)
        spec.reject_unknown(("extra_w", "busy_w"))
        busy = None if "busy_w" not in spec.data else spec.number("busy_w")
        power[name] = AcceleratorPower(spec.number("extra_w", 0.0, 0.0, strict=False), busy)
    return power


def load_profile(name_or_path: str | os.PathLike) -> DeviceProfile:
    """Load and validate a device profile by shipped name or by path.

    Raises:
        ConfigError: the file is missing or unreadable, or a key is missing or has
            the wrong type; the message names the file and the key.
    """
    path = _resolve(name_or_path)
    if not path.is_file():
        raise ConfigError(
            f"device profile {str(name_or_path)!r} not found ({path}); "
            f"shipped profiles: {choices(available_profiles())}"
        )
    stat = path.stat()
    return _load(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int, size: int) -> DeviceProfile:
    """A profile file parsed once per version (its modification time and size): cost
    predictions read profiles hundreds of times per search."""
    return _parse(read_toml(path, "device profile"), path)


def _parse(data: dict[str, Any], path: Path) -> DeviceProfile:
    r = TypedTable(data, path)
    role = r.one_of("profile.role", ACCELERATORS)
    freqs = tuple(int(f) for f in r.numbers("cpu.frequencies_mhz", minimum=1))
    if list(freqs) != sorted(set(r.get("cpu.frequencies_mhz", list))):
        raise ConfigError(f"{path}: key 'cpu.frequencies_mhz' should be whole MHz, ascending "
                          "and unique")
    n_power = max(len(freqs), 1)
    accels = tuple(r.strings("accelerators.available"))
    valid = ACCELERATORS[role]
    if not accels or not set(accels) <= set(valid):
        raise r.fail("accelerators.available", f"a non-empty list of {choices(valid)} "
                     f"(the {role}'s accelerators)", list(accels))
    accel_power = _accelerator_power(r.table("power.accelerators", {}))
    unknown = sorted(set(accel_power) - set(accels))
    if unknown:
        raise ConfigError(
            f"{path}: power.accelerators names {choices(unknown)}, which "
            f"accelerators.available lacks ({choices(accels)})"
        )
    power = PowerSpec(
        busy_w=r.numbers("power.busy_w", n_power, "one per frequency", minimum=0),
        wait_w=r.numbers("power.wait_w", n_power, "one per frequency", minimum=0),
        network_j_per_byte=r.number("power.network_j_per_byte", ..., 0.0, strict=False),
        accelerators=accel_power,
    )
    costs = r.table("reconfiguration", {})
    reconf = {k: costs.number(k, ..., 0.0, strict=False) for k in costs.data}
    cores = r.integer("cpu.cores")
    settings = {k: v for k, v in data.items()
                if k not in ("profile", "power", "reconfiguration", "tail_timing")}
    name = r.get("profile.name", str)
    timing = EdgeTimingModel.from_settings(settings, max(freqs) if freqs else None, name,
                                           where=str(path))
    tail_timing = CloudTimingModel.from_settings(data, name, where=str(path))
    link = None
    if "link" in data:
        table = r.table("link")
        table.number("mbps")
        table.number("rtt_ms", ..., 0.0, strict=False)
        link = dict(table.data)
    return DeviceProfile(
        name=name,
        role=role,
        description=r.get("profile.description", str, ""),
        frequencies_mhz=freqs,
        cores=cores,
        emulated_cores=r.integer("cpu.emulated_cores", 1),
        accelerators=accels,
        power=power,
        reconfiguration=reconf,
        settings=settings,
        path=path,
        timing=timing,
        link=link,
        tail_timing=tail_timing,
    )
