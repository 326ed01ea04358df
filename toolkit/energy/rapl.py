"""Intel/AMD RAPL energy counters through Linux powercap (``/sys/class/powercap``).

Each RAPL zone is a folder ``intel-rapl:N`` (sub-zones ``intel-rapl:N:M``) with
``name`` (``package-0``, ``dram``, ``core``, ``uncore``, ``psys``), ``energy_uj``
(a cumulative counter in microjoules) and ``max_energy_range_uj`` (where it wraps
back to zero). AMD processors expose the same tree since Linux 5.8.

By default the package and DRAM zones are read and the window's total is their
sum (``core`` and ``uncore`` are parts of a package, so they never add to the
total). Since Linux 5.10 ``energy_uj`` is readable by root only.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from toolkit.energy.meter import MeterUnavailableError
from toolkit.energy.sampling import CounterMeter
from toolkit.errors import ConfigError, ToolkitError, choices

__all__ = ["RaplMeter", "RaplZone", "discover_rapl_zones"]

DEFAULT_ROOT = "/sys/class/powercap"
_ZONE_DIR = re.compile(r"^intel-rapl:\d+(:\d+)*$")


@dataclass(frozen=True)
class RaplZone:
    """One RAPL zone of a powercap tree.

    Attributes:
        label: unique domain label (the zone's ``name``, qualified by its parent's
            as ``package-1/dram`` where two zones share a name).
        name: the zone's ``name`` file.
        path: the zone's folder.
        max_range_uj: ``max_energy_range_uj``, where the counter wraps.
    """

    label: str
    name: str
    path: Path
    max_range_uj: int

    def read_uj(self) -> int:
        """Read ``energy_uj``.

        Raises:
            MeterUnavailableError: the file cannot be read (permission, gone).
            ToolkitError: it does not hold an integer.
        """
        path = self.path / "energy_uj"
        try:
            text = path.read_text()
        except PermissionError:
            raise MeterUnavailableError(
                f"rapl meter: cannot read {path}: permission denied (since Linux 5.10 "
                "energy_uj is readable by root only; run as root or grant read access)"
            ) from None
        except OSError as exc:
            raise MeterUnavailableError(f"rapl meter: cannot read {path}: {exc}") from None
        try:
            return int(text.strip())
        except ValueError:
            raise ToolkitError(
                f"rapl meter: {path} holds {text.strip()[:40]!r}, not a counter"
            ) from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise MeterUnavailableError(f"rapl meter: cannot read {path}: {exc}") from None


def discover_rapl_zones(root: str | os.PathLike = DEFAULT_ROOT) -> list[RaplZone]:
    """List the RAPL zones under a powercap root, in folder order.

    Raises:
        MeterUnavailableError: the root does not exist or holds no RAPL zone.
    """
    root = Path(root)
    if not root.is_dir():
        raise MeterUnavailableError(
            f"rapl meter: {root} does not exist (no Linux powercap here, or the "
            "intel_rapl_common module is not loaded)"
        )
    dirs = sorted(
        (p for p in root.iterdir() if _ZONE_DIR.match(p.name)),
        key=lambda p: [int(x) for x in p.name.split(":")[1:]],
    )
    if not dirs:
        raise MeterUnavailableError(
            f"rapl meter: no intel-rapl:* zones under {root} (no RAPL support on this CPU, "
            "or running in a VM or container without it)"
        )
    names = {d.name: _read_text(d / "name") for d in dirs}
    counts = collections.Counter(names.values())
    zones = []
    for d in dirs:
        name = names[d.name]
        label = name
        if counts[name] > 1:
            parent = d.name.rsplit(":", 1)[0]
            label = f"{names[parent]}/{name}" if parent in names else f"{d.name}/{name}"
        raw = _read_text(d / "max_energy_range_uj")
        try:
            max_range = int(raw)
        except ValueError:
            raise ToolkitError(
                f"rapl meter: {d / 'max_energy_range_uj'} holds {raw[:40]!r}, not an integer"
            ) from None
        zones.append(RaplZone(label=label, name=name, path=d, max_range_uj=max_range))
    return zones


def _is_total_part(name: str) -> bool:
    return name.startswith("package") or name == "dram"


class RaplMeter(CounterMeter):
    """Energy of the CPU packages and DRAM from RAPL counters.

    ``Measurement.domains`` holds joules per selected zone label; ``joules`` is
    the sum of the package and DRAM zones among them (or of all selected zones
    when none is a package or DRAM zone, e.g. ``domains=["psys"]``).

    Args:
        root: the powercap folder (a fake tree in tests).
        domains: zone labels to read (``package-0``, ``dram``, ``core``...);
            default: every package and DRAM zone.
        period_s: sampling period of the power trace; it must stay well below
            the counter's wrap time (minutes to hours).

    Raises:
        MeterUnavailableError: no readable RAPL zone (names the path probed).
        ConfigError: an unknown domain label (lists the available ones).
    """

    source = "rapl"

    def __init__(
        self,
        root: str | os.PathLike = DEFAULT_ROOT,
        domains: Iterable[str] | None = None,
        *,
        period_s: float = 0.1,
    ) -> None:
        super().__init__(period_s, "rapl")
        if not isinstance(root, str | os.PathLike):
            raise ConfigError(f"rapl meter: root must be a folder path, got {root!r}")
        self.root = Path(root)
        available = discover_rapl_zones(self.root)
        by_label = {z.label: z for z in available}
        if domains is None:
            chosen = [z for z in available if _is_total_part(z.name)] or available
        else:
            if isinstance(domains, str):
                domains = [domains]
            wanted = list(domains)
            unknown = [d for d in wanted if d not in by_label]
            if unknown or not wanted:
                raise ConfigError(
                    f"rapl meter: unknown domain(s) {choices(unknown) or '(none given)'} "
                    f"under {self.root}; available: {choices(by_label)}"
                )
            chosen = [by_label[d] for d in dict.fromkeys(wanted)]
        self.zones: tuple[RaplZone, ...] = tuple(chosen)
        for zone in self.zones:  # probe now: permissions are the usual failure
            zone.read_uj()

    @property
    def domains(self) -> list[str]:
        """Labels of the zones this meter reads."""
        return [z.label for z in self.zones]

    def read_counters(self) -> Mapping[str, float]:
        """Cumulative joules per zone label."""
        return {z.label: z.read_uj() / 1e6 for z in self.zones}

    def wrap_ranges(self) -> Mapping[str, float]:
        """Each zone's ``max_energy_range_uj`` in joules."""
        return {z.label: z.max_range_uj / 1e6 for z in self.zones}

    def total_domains(self, domains: list[str]) -> list[str]:
        """Package and DRAM zones (all zones when none of them is selected)."""
        by_label = {z.label: z for z in self.zones}
        parts = [d for d in domains if _is_total_part(by_label[d].name)]
        return parts or domains
