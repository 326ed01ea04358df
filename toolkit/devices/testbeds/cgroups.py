"""CPU throttling with a cgroup CPU quota (cgroup v1 or v2).

The local emulated testbed slows the edge worker down to an emulated CPU
frequency ``f`` by giving its cgroup ``quota = f / f_max × cores × period``. The
CFS period is 10 ms so that millisecond-scale inferences are throttled evenly,
not in bursts. Where no cgroup can be written (no permission, no cpu
controller), :func:`open_cpu_quota` warns once and returns None; the testbed then
runs unthrottled and records that in its results.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from pathlib import Path

__all__ = ["CpuQuota", "open_cpu_quota"]

log = logging.getLogger("toolkit.devices")
MIN_US = 1_000
_warned = False


def _own_path(controller_line: str) -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hier, ctrls, path = line.split(":", 2)
            if controller_line == "v2" and hier == "0" and ctrls == "":
                return path
            if controller_line in ctrls.split(","):
                return path
    return "/"


def _candidate_root() -> tuple[Path, int] | None:
    base = Path(os.environ.get("DYNASPLIT_CGROUP_ROOT", "/sys/fs/cgroup"))
    v1 = base / "cpu"
    if (v1 / "cpu.cfs_quota_us").exists():
        return v1 / _own_path("cpu").lstrip("/"), 1
    if (base / "cgroup.controllers").exists():
        return base / _own_path("v2").lstrip("/"), 2
    return None


class CpuQuota:
    """A cgroup whose processes share a CPU quota.

    Use :func:`open_cpu_quota` to create one; :meth:`close` removes it.
    """

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version
        self.cores: float | None = None

    def add(self, pid: int) -> None:
        """Move a process (all its threads) into this group."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def set_cores(self, cores: float | None) -> None:
        """Limit the group to ``cores`` CPUs' worth of time (None = unlimited)."""
        if cores is not None and cores <= 0:
            raise ValueError(f"cores must be positive, got {cores}")
        period = MIN_US if cores is None else max(MIN_US, math.ceil(MIN_US / cores))
        if cores is None:
            value_v1, value_v2 = "-1", f"max {period}"
        else:
            quota = max(MIN_US, round(cores * period))
            value_v1, value_v2 = str(quota), f"{quota} {period}"
        if self.version == 1:
            quota_file = self.path / "cpu.cfs_quota_us"
            quota_file.write_text("-1")
            (self.path / "cpu.cfs_period_us").write_text(str(period))
            quota_file.write_text(value_v1)
        else:
            (self.path / "cpu.max").write_text(value_v2)
        self.cores = cores

    def pids(self) -> list[int]:
        """Processes in the group."""
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def close(self) -> None:
        """Move remaining processes to the parent group and remove this one."""
        parent = self.path.parent / "cgroup.procs"
        for pid in self.pids():
            with contextlib.suppress(OSError):
                parent.write_text(str(pid))
        try:
            self.path.rmdir()
        except OSError as exc:
            log.debug("could not remove cgroup %s: %s", self.path, exc)


def _remove_stale(root: Path) -> None:
    for group in root.glob("dynasplit-*"):
        try:
            owner = int(group.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not Path(f"/proc/{owner}").exists():
            CpuQuota(group, 0).close()


def open_cpu_quota(name: str) -> CpuQuota | None:
    """Create the cgroup ``dynasplit-<pid>-<name>``; None (and one warning) if impossible."""
    global _warned
    if os.environ.get("DYNASPLIT_NO_CGROUPS"):
        reason = "DYNASPLIT_NO_CGROUPS is set"
    else:
        found = _candidate_root()
        reason = "no cgroup cpu controller found under /sys/fs/cgroup"
        if found is not None:
            root, version = found
            path = root / f"dynasplit-{os.getpid()}-{name}"
            try:
                _remove_stale(root)
                if version == 2:
                    control = root / "cgroup.subtree_control"
                    if "cpu" not in control.read_text().split():
                        control.write_text("+cpu")
                path.mkdir(exist_ok=True)
                quota = CpuQuota(path, version)
                quota.set_cores(None)
                return quota
            except OSError as exc:
                reason = f"cannot write {path} ({exc.strerror or exc})"
    if not _warned:
        log.warning("CPU throttling disabled, the edge runs at full speed: %s", reason)
        _warned = True
    return None
