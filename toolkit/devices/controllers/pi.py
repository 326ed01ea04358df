"""Raspberry Pi + Coral USB TPU edge controller, over SSH.

Every knob is changed with real commands on the Pi and verified by reading it back:

- **CPU frequency**: the cpufreq sysfs folder of the profile (``cpu.sysfs_cpufreq``):
  ``scaling_available_frequencies`` (kHz; else ``cpuinfo_min_freq`` /
  ``cpuinfo_max_freq``) gives the choices; the governor becomes ``userspace``
  (``cpu.governor``), ``scaling_setspeed`` gets the frequency, and
  ``scaling_cur_freq`` must then read it back.
- **TPU power**: ``uhubctl -l LOCATION -p PORT -a on|off`` (``tpu.hub_location``,
  ``tpu.port``); uhubctl's printed port status (``Port 1: 0000 off`` vs ``Port 1:
  0503 power highspeed enable connect``) after the change must match.
- **TPU runtime**: the installed ``libedgetpu1-std`` / ``libedgetpu1-max`` package
  (``tpu.runtime_std``, ``tpu.runtime_max``) is switched with ``tpu.install_command``
  after preseeding debconf (``tpu.preseed``), and verified with ``dpkg-query -W``.

Privileged writes run as ``sudo -n ...`` where the profile's ``use_sudo`` says so
(``-n``: fail at once rather than wait for a password). Each change is timed into
a :class:`~toolkit.devices.controllers.base.KnobChange`; a knob that already has the value is
left alone (``changed=False``).

Changing knobs (:meth:`PiController.apply`, ``set_*``) is one remote command per
call: a :class:`~toolkit.devices.controllers.pi_script.KnobScript` run in the controller's
long-lived :class:`~toolkit.devices.transport.shell.RemoteShell`, which reports every step
with its timing on the host.
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from toolkit.config import ACCELERATORS, Config
from toolkit.devices.controllers.base import EdgeController, HostController, KnobChange
from toolkit.devices.controllers.pi_script import KnobScript, parse_uhubctl, runtime_mode
from toolkit.devices.transport.commands import CommandResult
from toolkit.devices.transport.errors import CommandFailed, CommandTimeout, ConnectionLost
from toolkit.devices.transport.remote import RemoteProcess
from toolkit.devices.transport.shell import RemoteShell
from toolkit.devices.transport.ssh import SshTransport
from toolkit.errors import ConfigError, ToolkitError, choices
from toolkit.hardware.profile import DeviceProfile
from toolkit.tomlfile import TypedTable

__all__ = ["ACCEL_TPU", "PiController", "PiSettings", "parse_uhubctl"]

log = logging.getLogger(__name__)

#: edge_accel → (TPU powered, runtime mode or None to leave it)
ACCEL_TPU: dict[str, tuple[bool, str | None]] = {
    name: (accel.tpu_mode is not None, accel.tpu_mode)
    for name, accel in ACCELERATORS["edge"].items()}

_DEFAULT_INSTALL = ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                    "--allow-downgrades", "{package}")
_DEFAULT_PRESEED = (
    "libedgetpu1-max libedgetpu/accepted-eula boolean true",
    "libedgetpu1-max libedgetpu/install-confirm-max boolean true",
)


@dataclass(frozen=True)
class PiSettings:
    """The ``[cpu]`` and ``[tpu]`` keys of a Pi profile that the controller uses.

    Attributes:
        sysfs_cpufreq: the cpufreq folder (``.../cpu0/cpufreq``).
        governor: governor that allows setting a frequency (``userspace``).
        cpu_sudo: sudo program for cpufreq writes, or None to write directly.
        uhubctl: uhubctl program.
        hub_location: uhubctl ``-l`` hub location (e.g. ``1-1``).
        hub_port: uhubctl ``-p`` port the TPU is plugged into.
        tpu_sudo: sudo program for uhubctl and package changes, or None.
        runtime_packages: ``{"std": package, "max": package}``.
        install_command: argv template; ``{package}`` is replaced.
        preseed_command: argv reading debconf selections on stdin.
        preseed: debconf selection lines fed to ``preseed_command`` before installing.
        dpkg_query: dpkg-query program.
    """

    sysfs_cpufreq: str
    governor: str = "userspace"
    cpu_sudo: str | None = "sudo"
    uhubctl: str = "uhubctl"
    hub_location: str = "1-1"
    hub_port: int = 1
    tpu_sudo: str | None = "sudo"
    runtime_packages: tuple[tuple[str, str], ...] = (
        ("std", "libedgetpu1-std"), ("max", "libedgetpu1-max"))
    install_command: tuple[str, ...] = _DEFAULT_INSTALL
    preseed_command: tuple[str, ...] = ("debconf-set-selections",)
    preseed: tuple[str, ...] = _DEFAULT_PRESEED
    dpkg_query: str = "dpkg-query"

    @classmethod
    def from_profile(cls, profile: DeviceProfile) -> PiSettings:
        """Read and check the settings; errors name the profile file and key."""
        cpu, tpu = _settings(profile, "cpu"), _settings(profile, "tpu")
        install = tuple(tpu.strings("install_command", list(_DEFAULT_INSTALL)))
        if "{package}" not in install:
            raise ConfigError(
                f"{profile.path}: key 'tpu.install_command' should contain a '{{package}}' "
                f"argument, got {list(install)!r}"
            )
        return cls(
            sysfs_cpufreq=cpu.get("sysfs_cpufreq", str),
            governor=cpu.get("governor", str, "userspace"),
            cpu_sudo=cpu.get("sudo", str, "sudo") if cpu.get("use_sudo", bool, True) else None,
            uhubctl=tpu.get("uhubctl", str, "uhubctl"),
            hub_location=tpu.get("hub_location", str),
            hub_port=tpu.integer("port", ..., 1),
            tpu_sudo=tpu.get("sudo", str, "sudo") if tpu.get("use_sudo", bool, True) else None,
            runtime_packages=(("std", tpu.get("runtime_std", str)),
                              ("max", tpu.get("runtime_max", str))),
            install_command=install,
            preseed_command=tuple(tpu.strings("preseed_command", ["debconf-set-selections"])),
            preseed=tuple(tpu.strings("preseed", list(_DEFAULT_PRESEED))),
            dpkg_query=tpu.get("dpkg_query", str, "dpkg-query"),
        )

    def package(self, mode: str) -> str:
        """The runtime package for ``std`` or ``max``."""
        return dict(self.runtime_packages)[mode]


def _settings(profile: DeviceProfile, table: str) -> TypedTable:
    """The profile's ``[table]`` for the controller, typed."""
    data = profile.settings.get(table)
    if not isinstance(data, dict):
        raise ConfigError(f"{profile.path}: missing table [{table}] for the Pi controller")
    return TypedTable(data, profile.path, table)


class PiController(HostController, EdgeController):
    """Sets the knobs of a Raspberry Pi with a Coral USB TPU over SSH.

    Knob changes run as one script per call in a reused remote shell (see the
    module docstring); reads (:meth:`cpu_state`, :meth:`tpu_powered`,
    :meth:`tpu_mode`) are plain commands.

    Args:
        transport: the Pi's SSH transport.
        profile: its device profile (default: the host's profile).
    """

    role = "edge"

    def __init__(self, transport: SshTransport, profile: DeviceProfile | None = None) -> None:
        super().__init__(transport, profile)
        self.settings = PiSettings.from_profile(self.profile)
        self.shell = RemoteShell(transport)
        self._freqs: list[int] | None = None
        self._interpreter: list[str] | None = None

    def _sysfs(self, leaf: str) -> str:
        return posixpath.join(self.settings.sysfs_cpufreq, leaf)

    # -- reading --------------------------------------------------------------------

    async def available_frequencies(self) -> list[int]:
        """CPU frequencies in MHz, from sysfs (cached after the first call)."""
        if self._freqs is None:
            run = self.transport.run
            res = await run(["cat", "--", self._sysfs("scaling_available_frequencies")],
                            check=False)
            if res.ok and res.stdout.split():
                freqs = sorted({int(k) // 1000 for k in res.stdout.split()})
            else:
                res = await run(["cat", "--", self._sysfs("cpuinfo_min_freq"),
                                 self._sysfs("cpuinfo_max_freq")])
                lo, hi = (int(k) // 1000 for k in res.stdout.split()[:2])
                within = [f for f in self.profile.frequencies_mhz if lo <= f <= hi]
                freqs = within or sorted({lo, hi})
            self._freqs = freqs
        return list(self._freqs)

    async def cpu_state(self) -> tuple[str, int]:
        """The current governor and frequency (MHz)."""
        res = await self.transport.run(
            ["cat", "--", self._sysfs("scaling_governor"), self._sysfs("scaling_cur_freq")])
        governor, khz = res.stdout.split()[:2]
        return governor, int(khz) // 1000

    async def tpu_powered(self) -> bool:
        """Whether the TPU's USB port is powered (uhubctl status)."""
        s = self.settings
        argv = [s.uhubctl, "-l", s.hub_location, "-p", str(s.hub_port)]
        res = await self.transport.run([s.tpu_sudo, "-n", *argv] if s.tpu_sudo else argv)
        state = parse_uhubctl(res.stdout, s.hub_port)
        if state is None:
            raise self._no_port(res.stdout)
        return state

    async def tpu_mode(self) -> str | None:
        """``std`` or ``max`` by the installed libedgetpu package; None if neither is."""
        packages = dict(self.settings.runtime_packages)
        res = await self.transport.run(
            [self.settings.dpkg_query, "-W", "-f", "${Package} ${db:Status-Abbrev}\n",
             *packages.values()], check=False)
        return runtime_mode(res.stdout, packages)

    def _no_port(self, output: str) -> ToolkitError:
        s = self.settings
        return ToolkitError(
            f"uhubctl on {self.name} did not report port {s.hub_port} of hub "
            f"{s.hub_location}: {output.strip()[-300:]!r}; check tpu.hub_location and "
            "tpu.port in the profile (`uhubctl` lists the hubs)"
        )

    # -- changing -------------------------------------------------------------------

    async def _check_freq(self, mhz: int) -> None:
        freqs = await self.available_frequencies()
        if mhz not in freqs:
            raise ConfigError(
                f"frequency {mhz} MHz is not available on {self.name}; valid: {choices(freqs)}"
            )

    def _accel_plan(self, accel: str) -> tuple[bool, str | None]:
        self.profile.check_accel(accel)
        if accel not in ACCEL_TPU:
            raise ConfigError(
                f"edge accelerator {accel!r} has no Pi/Coral setting; valid: {choices(ACCEL_TPU)}"
            )
        return ACCEL_TPU[accel]

    async def set_cpu_freq(self, mhz: int) -> KnobChange:
        """Set the ``userspace`` governor and ``mhz``; verify with ``scaling_cur_freq``."""
        await self._check_freq(mhz)
        return (await self._apply_knobs(cpu_freq=mhz))[0]

    async def set_tpu_power(self, on: bool) -> KnobChange:
        """Power the TPU's USB port on or off and verify uhubctl's new status."""
        return (await self._apply_knobs(tpu_power=on))[0]

    async def set_tpu_mode(self, mode: str) -> KnobChange:
        """Install the ``std`` or ``max`` runtime package and verify with dpkg-query."""
        if mode not in ("std", "max"):
            raise ConfigError(f"unknown TPU runtime mode {mode!r}; valid: std, max")
        return (await self._apply_knobs(tpu_mode=mode))[0]

    async def set_edge_accel(self, accel: str) -> list[KnobChange]:
        """``none``/``int8``: TPU off; ``tpu-std``/``tpu-max``: TPU on and that runtime."""
        powered, mode = self._accel_plan(accel)
        return await self._apply_knobs(tpu_power=powered, tpu_mode=mode)

    async def apply(self, config: Config) -> list[KnobChange]:
        """Apply a configuration's edge knobs in one remote command.

        Sets ``cpu_freq``, then the accelerator (TPU power, then the runtime mode
        for ``tpu-*``); returns every knob's change, verified by reading back.
        """
        await self._check_freq(config.cpu_freq)
        powered, mode = self._accel_plan(config.edge_accel)
        return await self._apply_knobs(cpu_freq=config.cpu_freq, tpu_power=powered,
                                       tpu_mode=mode)

    async def _apply_knobs(self, *, cpu_freq: int | None = None, tpu_power: bool | None = None,
                           tpu_mode: str | None = None) -> list[KnobChange]:
        """Build and run the knob script; a connection lost on the way is retried once.

        The script only moves knobs towards the wanted values and verifies them,
        so running it again after a lost connection is safe whether or not the
        first attempt got to run.
        """
        for attempt in (1, 2):
            script = KnobScript(self.settings)
            if cpu_freq is not None:
                script.cpu_freq(cpu_freq)
            if tpu_power is not None:
                script.tpu_power(tpu_power)
            if tpu_mode is not None:
                script.tpu_mode(tpu_mode)
            try:
                return await self._run_script(script)
            except ConnectionLost as exc:
                if attempt == 2:
                    raise
                log.info("%s; applying again after reconnecting", exc)
        raise AssertionError("unreachable")

    async def _run_script(self, script: KnobScript) -> list[KnobChange]:
        if self._interpreter is None:
            # bash gives the script a microsecond clock; --norc: Debian's bash would
            # otherwise source ~/.bashrc whenever it finds itself started over SSH
            probe = await self.shell.run(["sh", "-c", "command -v bash"], check=False)
            found = probe.ok and probe.stdout.strip()
            self._interpreter = ["bash", "--norc", "--noprofile"] if found else ["sh"]
        start = time.perf_counter()
        try:
            res = await self.shell.run([*self._interpreter, "-c", script.text], check=False)
        except CommandTimeout as exc:
            hung = script.command(script.parse(exc.output).running)
            raise CommandTimeout(self.name, hung, exc.timeout_s, output=exc.output) from None
        except ConnectionLost as exc:  # name the knobs, not the whole script
            detail = str(exc).rsplit(": ", 1)[-1]
            raise ConnectionLost(self.name, f"connection to {self.name} "
                                 f"({self.transport.endpoint}) lost during the "
                                 f"{script.command(None)}: {detail}") from None
        wall_ms = (time.perf_counter() - start) * 1000.0
        report = script.parse(res.stdout)
        if report.failure is not None:
            _, status, label = report.failure
            # the failing command's own stderr (the report lines are not its output)
            raise CommandFailed(CommandResult(self.name, tuple(script.argv(label)), status,
                                              "", res.stderr, wall_ms))
        if not res.ok or report.remote_ms is None or len(report.steps) != len(script.wanted):
            raise CommandFailed(dataclasses.replace(
                res, argv=(*self._interpreter, "-c", script.command(None))))
        for step in report.steps:
            if step.knob == "tpu_power" and script.hub_states(step)[0] is None:
                raise self._no_port(step.blobs.get("out", ""))
        changes = script.changes(report, self.name)
        # the command's round trip (channel, shell, interpreter) is part of the cost of
        # the first knob, so that the durations of one call add up to its wall time
        overhead = max(wall_ms - report.remote_ms, 0.0)
        changes[0] = dataclasses.replace(changes[0],
                                         duration_ms=changes[0].duration_ms + overhead)
        return changes

    # -- worker and files -----------------------------------------------------------

    async def start_worker(
        self, argv: Sequence[str], *, name: str = "edge-worker",
        env: Mapping[str, str] | None = None, cwd: str | None = None,
    ) -> RemoteProcess:
        """Start the edge worker (any argv) in the background, replacing one named ``name``."""
        return await RemoteProcess.start(self.transport, name, argv, env=env, cwd=cwd)

    async def close(self) -> None:
        """Close the remote shell and the SSH connection (a started worker keeps running)."""
        await self.shell.close()
        await self.transport.close()
