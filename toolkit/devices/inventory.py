"""Testbed inventories: which hosts and meters a testbed has and how to reach them.

An inventory is a TOML file under ``hardware/testbeds/`` (or anywhere, by path)::

    [testbed]
    name = "pi-coral-gpu"
    kind = "ssh"                    # or "local": the emulated testbed on this machine

    [[hosts]]
    name = "pi"
    address = "192.0.2.10"
    user = "pi"
    identity_file = "~/.ssh/id_ed25519"   # or: agent = true
    known_hosts = "~/.ssh/known_hosts"    # or: verify_host_keys = false (warns on every connect)
    roles = ["edge"]
    profile = "raspberry-pi-4"            # shipped profile name, or a path to a .toml

    [[meters]]
    name = "gpm"
    kind = "scpi"
    address = "192.0.2.30"
    measures = "pi"

Relative paths resolve against the TOML file's folder and ``~`` is expanded. Every
validation error names the file, the key (``hosts[1].port``) and what was expected.
See ``docs/devices.md`` for every key.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.devices.profile import DeviceProfile, load_profile
from toolkit.errors import ConfigError, choices
from toolkit.paths import TESTBEDS_DIR

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "METER_KINDS",
    "ROLES",
    "TESTBED_KINDS",
    "Host",
    "Inventory",
    "MeterSpec",
    "available_testbeds",
    "load_inventory",
]

TESTBED_KINDS: tuple[str, ...] = ("local", "ssh")
ROLES: tuple[str, ...] = ("edge", "cloud", "meter")
METER_KINDS: tuple[str, ...] = ("rapl", "nvml", "ina219", "ina260", "scpi", "model")

#: kind-specific meter keys with their default (``...``: required)
_METER_OPTIONS: dict[str, dict[str, Any]] = {
    "rapl": {"domains": ["package-0"], "sysfs_powercap": "/sys/class/powercap"},
    "nvml": {"gpu_index": 0},
    "ina219": {"i2c_bus": 1, "i2c_address": 0x40, "shunt_ohms": 0.1, "max_expected_amps": 3.2},
    "ina260": {"i2c_bus": 1, "i2c_address": 0x40},
    "scpi": {"port": 23, "channel": 1, "timeout_s": 5.0},
    "model": {"profile": None},  # None: the measured host's profile
}
#: which meter kinds are reached through ``host`` (run there) vs ``address`` (own socket)
_METER_NEEDS_HOST = ("rapl", "nvml", "ina219", "ina260")
_METER_NEEDS_ADDRESS = ("scpi",)


@dataclass(frozen=True)
class Host:
    """One machine of a testbed.

    Attributes:
        name: unique name in the inventory (used in messages and results).
        address: IP address or DNS name.
        port: SSH port.
        user: login user (None on a local testbed).
        identity_file: private key file, or None when ``agent`` is used.
        agent: authenticate with the keys of the running ssh-agent.
        known_hosts: known_hosts file that host keys are verified against.
        verify_host_keys: False only when the inventory turns verification off
            explicitly (a warning is logged on every connect).
        roles: subset of :data:`ROLES`.
        profile: the device profile this host uses.
        connect_timeout_s: limit for TCP connect plus SSH handshake and login.
        command_timeout_s: default limit for one remote command.
        max_sessions: the server's ``MaxSessions``; at most ``max_sessions - 2``
            channels are opened at once.
        keepalive_s: interval of SSH keepalive requests.
        workdir: remote folder (relative to the login directory) for deployed files,
            PID files and worker logs.
        where: ``FILE hosts[i]``, for error messages.
    """

    name: str
    address: str
    port: int = 22
    user: str | None = None
    identity_file: Path | None = None
    agent: bool = False
    known_hosts: Path | None = None
    verify_host_keys: bool = True
    roles: tuple[str, ...] = ()
    profile: DeviceProfile | None = None
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 60.0
    max_sessions: int = 10
    keepalive_s: float = 15.0
    workdir: str = ".dynasplit"
    where: str = ""

    @property
    def session_limit(self) -> int:
        """How many channels the toolkit opens at once: below ``MaxSessions``."""
        return max(1, self.max_sessions - 2)


@dataclass(frozen=True)
class MeterSpec:
    """One power meter of a testbed.

    Attributes:
        name: unique meter name; figures are labelled ``meter:<name>``.
        kind: one of :data:`METER_KINDS`.
        measures: name of the host whose energy it measures.
        host: name of the host it is read on (rapl, nvml, ina219, ina260).
        address: network address of a standalone meter (scpi).
        sample_hz: sampling rate asked for.
        options: the kind-specific keys, defaults filled in.
        where: ``FILE meters[i]``, for error messages.
    """

    name: str
    kind: str
    measures: str
    host: str | None = None
    address: str | None = None
    sample_hz: float = 10.0
    options: dict[str, Any] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class Inventory:
    """A loaded, validated testbed inventory.

    Attributes:
        name: testbed name.
        kind: ``local`` or ``ssh``.
        hosts: hosts in file order.
        meters: meters in file order.
        path: the file it was loaded from.
    """

    name: str
    kind: str
    hosts: tuple[Host, ...]
    meters: tuple[MeterSpec, ...] = ()
    path: Path | None = None

    def host(self, name: str) -> Host:
        """The host called ``name``; ConfigError naming the valid names otherwise."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise ConfigError(
            f"testbed {self.name!r} has no host {name!r}; hosts: {choices(self.host_names)}"
        )

    @property
    def host_names(self) -> list[str]:
        """Names of all hosts, in file order."""
        return [h.name for h in self.hosts]

    def with_role(self, role: str) -> list[Host]:
        """Hosts that have ``role`` (``edge``, ``cloud`` or ``meter``)."""
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; valid: {choices(ROLES)}")
        return [h for h in self.hosts if role in h.roles]

    def meters_for(self, host: str) -> list[MeterSpec]:
        """Meters that measure the host called ``host``."""
        return [m for m in self.meters if m.measures == host]


def available_testbeds() -> list[str]:
    """Names of the shipped inventories (files in ``hardware/testbeds``)."""
    return sorted(p.stem for p in TESTBEDS_DIR.glob("*.toml"))


def load_inventory(path_or_name: str | os.PathLike) -> Inventory:
    """Load and validate a testbed inventory by shipped name (``local``) or by path.

    Raises:
        ConfigError: the file is missing or unreadable, or a key is unknown,
            missing or has a wrong value; the message names the file, the key
            and the expected value.
    """
    path = _resolve(path_or_name)
    if not path.is_file():
        raise ConfigError(
            f"testbed {str(path_or_name)!r} not found ({path}); "
            f"shipped testbeds: {choices(available_testbeds())}"
        )
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read testbed {path}: {exc}") from None
    return _parse(data, path.resolve())


def _resolve(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists() or len(p.parts) > 1:
        return p.expanduser()
    return TESTBEDS_DIR / f"{name_or_path}.toml"


class _Table:
    """Typed access to one TOML table, with errors naming file and key."""

    def __init__(self, data: Any, path: Path, key: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: key '{key}' should be a table, got {data!r}")
        self.data, self.path, self.key, self.used = data, path, key, set()

    def name(self, sub: str) -> str:
        return f"{self.key}.{sub}" if self.key else sub

    def fail(self, sub: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(f"{self.path}: key '{self.name(sub)}' should be {expected}, got {got!r}")

    def get(self, sub: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(sub)
        if sub not in self.data:
            if default is ...:
                raise ConfigError(f"{self.path}: missing key '{self.name(sub)}'")
            return default
        value = self.data[sub]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise self.fail(sub, _kind_name(kinds), value)
        return value

    def number(self, sub: str, default: float, minimum: float = 0.0) -> float:
        value = self.get(sub, (int, float), default)
        if value <= minimum:
            raise self.fail(sub, f"a number > {minimum:g}", value)
        return float(value)

    def one_of(self, sub: str, valid: Iterable[str], default: Any = ...) -> str:
        valid = tuple(valid)
        value = self.get(sub, str, default)
        if value not in valid and not (value is None and default is None):
            raise self.fail(sub, f"one of {choices(valid)}", value)
        return value

    def file(self, sub: str, default: Any = None) -> Path | None:
        value = self.get(sub, str, default)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.path.parent / p)

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{self.path}: unknown key '{self.name(unknown[0])}'; "
                f"valid keys: {choices(sorted(allowed))}"
            )


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a table", bool: "true or false"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


_HOST_KEYS = ("name", "address", "port", "user", "identity_file", "agent", "known_hosts",
              "verify_host_keys", "roles", "profile", "connect_timeout_s",
              "command_timeout_s", "max_sessions", "keepalive_s", "workdir")
_METER_KEYS = ("name", "kind", "measures", "host", "address", "sample_hz")


def _parse(data: dict[str, Any], path: Path) -> Inventory:
    top = _Table(data, path, "")
    top.reject_unknown(("testbed", "hosts", "meters"))
    tb = _Table(top.get("testbed", dict), path, "testbed")
    tb.reject_unknown(("name", "kind", "description"))
    name = tb.get("name", str)
    kind = tb.one_of("kind", TESTBED_KINDS)
    tb.get("description", str, "")
    host_tables = top.get("hosts", list)
    if not host_tables:
        raise ConfigError(f"{path}: key 'hosts' should list at least one [[hosts]] table")
    hosts = tuple(_host(t, path, i, kind) for i, t in enumerate(host_tables))
    _unique([h.name for h in hosts], path, "hosts")
    profiles = {h.name: h.profile for h in hosts}
    meter_tables = top.get("meters", list, [])
    meters = tuple(_meter(t, path, i, profiles) for i, t in enumerate(meter_tables))
    _unique([m.name for m in meters], path, "meters")
    return Inventory(name=name, kind=kind, hosts=hosts, meters=meters, path=path)


def _unique(names: list[str], path: Path, key: str) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ConfigError(f"{path}: key '{key}[{i}].name' repeats the name {n!r}")
        seen.add(n)


def _host(data: Any, path: Path, i: int, testbed_kind: str) -> Host:
    t = _Table(data, path, f"hosts[{i}]")
    t.reject_unknown(_HOST_KEYS)
    port = t.get("port", int, 22)
    if not 0 < port < 65536:
        raise t.fail("port", "an integer in 1..65535", port)
    roles = t.get("roles", list)
    if not roles or any(r not in ROLES for r in roles):
        raise t.fail("roles", f"a non-empty list of {choices(ROLES)}", roles)
    max_sessions = t.get("max_sessions", int, 10)
    if max_sessions < 1:
        raise t.fail("max_sessions", "an integer >= 1 (sshd's MaxSessions)", max_sessions)
    device_roles = [r for r in roles if r != "meter"]
    profile = _profile(t) if "profile" in t.data or device_roles else None
    for role in device_roles:
        if profile is not None and profile.role != role:
            raise ConfigError(
                f"{path}: key '{t.name('profile')}' names profile {profile.name!r} of role "
                f"{profile.role!r}, but the host has role {role!r}; use a profile of role {role!r}"
            )
    agent = t.get("agent", bool, False)
    identity = t.file("identity_file")
    verify = t.get("verify_host_keys", bool, True)
    known_hosts = t.file("known_hosts", "~/.ssh/known_hosts" if verify else None)
    user = t.get("user", str, None)
    if testbed_kind == "ssh":
        if user is None:
            raise ConfigError(f"{path}: missing key '{t.name('user')}' (the SSH login user)")
        if agent == (identity is not None):
            raise ConfigError(
                f"{path}: keys '{t.name('identity_file')}' / '{t.name('agent')}': set "
                "exactly one: identity_file = a private key file, or agent = true (keys "
                "of the running ssh-agent); passwords are not supported"
            )
    return Host(
        name=t.get("name", str),
        address=t.get("address", str),
        port=port,
        user=user,
        identity_file=identity,
        agent=agent,
        known_hosts=known_hosts,
        verify_host_keys=verify,
        roles=tuple(roles),
        profile=profile,
        connect_timeout_s=t.number("connect_timeout_s", 10.0),
        command_timeout_s=t.number("command_timeout_s", 60.0),
        max_sessions=max_sessions,
        keepalive_s=t.number("keepalive_s", 15.0),
        workdir=t.get("workdir", str, ".dynasplit"),
        where=f"{path} hosts[{i}]",
    )


def _profile(t: _Table) -> DeviceProfile:
    value = t.get("profile", str)
    p = Path(value).expanduser()
    is_path = p.suffix == ".toml" or len(p.parts) > 1
    if is_path and not p.is_absolute():
        p = t.path.parent / p
    try:
        return load_profile(p if is_path else value)
    except ConfigError as exc:
        raise ConfigError(f"{t.path}: key '{t.name('profile')}': {exc}") from None


def _meter(
    data: Any, path: Path, i: int, hosts: dict[str, DeviceProfile | None]
) -> MeterSpec:
    t = _Table(data, path, f"meters[{i}]")
    kind = t.one_of("kind", METER_KINDS)
    defaults = _METER_OPTIONS[kind]
    t.reject_unknown(_METER_KEYS + tuple(defaults))
    measures = t.one_of("measures", hosts)
    host = t.one_of("host", hosts, None)
    address = t.get("address", str, None)
    if kind in _METER_NEEDS_HOST and host is None:
        raise ConfigError(
            f"{path}: missing key '{t.name('host')}' (the host a {kind} meter is read on; "
            f"one of {choices(hosts)})"
        )
    if kind in _METER_NEEDS_ADDRESS and address is None:
        raise ConfigError(
            f"{path}: missing key '{t.name('address')}' (the {kind} meter's network address)"
        )
    options = {}
    for key, default in defaults.items():
        kinds = (int, float) if isinstance(default, float) else type(default)
        options[key] = t.get(key, str if default is None else kinds, default)
    if kind == "model" and options["profile"] is None:
        profile = hosts[measures]
        if profile is None:
            raise ConfigError(
                f"{path}: missing key '{t.name('profile')}' (host {measures!r} has no profile)"
            )
        options["profile"] = profile.name
    return MeterSpec(
        name=t.get("name", str),
        kind=kind,
        measures=measures,
        host=host,
        address=address,
        sample_hz=t.number("sample_hz", 10.0),
        options=options,
        where=f"{path} meters[{i}]",
    )
