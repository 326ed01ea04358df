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
    kind = "scpi"                         # rapl | nvml | ina219 | ina260 | scpi | model
    address = "192.0.2.30:23"             # kind-specific keys: the meter's own options
    measures = "pi"

Relative paths resolve against the TOML file's folder and ``~`` is expanded. Every
validation error names the file, the key (``hosts[1].port``) and what was expected.
See ``docs/devices.md`` for every key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ConfigError, choices
from toolkit.fileio import as_path
from toolkit.hardware.profile import DeviceProfile, load_profile
from toolkit.paths import TESTBEDS_DIR
from toolkit.tomlfile import TypedTable, read_toml

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

#: meter kinds read on a host of the testbed (key ``host``); scpi meters have their
#: own network address and model meters need no hardware
_METER_NEEDS_HOST = ("rapl", "nvml", "ina219", "ina260")


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
        python: the Python interpreter on the host that has the toolkit installed
            (runs the edge or cloud worker of an SSH testbed).
        worker_port: TCP port the host's worker listens on (0: any free port, read
            from the worker's announcement in its log).
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
    python: str = "python3"
    worker_port: int = 0
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
        options: the kind-specific keys as written (the meter's constructor
            arguments, e.g. ``address`` and ``transport`` for scpi, ``bus`` and
            ``address`` for ina219); omitted ones take the meter's defaults.
        where: ``FILE meters[i]``, for error messages.
    """

    name: str
    kind: str
    measures: str
    host: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    where: str = ""

    def open_spec(self) -> dict[str, Any]:
        """The spec for :func:`toolkit.energy.open_meter`: ``{"kind": ..., options}``."""
        from toolkit.energy.factory import meter_parameters

        spec = {"kind": self.kind, **self.options}
        if "name" in meter_parameters(self.kind):
            spec["name"] = self.name
        return spec


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
    return _parse(read_toml(path, "testbed"), path.resolve())


def _resolve(name_or_path: str | os.PathLike) -> Path:
    p = as_path(name_or_path, "a testbed (a shipped testbed's name or an inventory file)")
    if p.suffix == ".toml" or p.exists() or len(p.parts) > 1:
        return p.expanduser()
    return TESTBEDS_DIR / f"{name_or_path}.toml"


_HOST_KEYS = ("name", "address", "port", "user", "identity_file", "agent", "known_hosts",
              "verify_host_keys", "roles", "profile", "connect_timeout_s",
              "command_timeout_s", "max_sessions", "keepalive_s", "workdir", "python",
              "worker_port")
_METER_KEYS = ("name", "kind", "measures", "host")
#: the TOML types a meter option takes, by its default's type (no default or None: any
#: value but a table)
_OPTION_KINDS: dict[type, type | tuple[type, ...]] = {
    bool: bool, float: (int, float), int: int, str: str, list: list}


def _parse(data: dict[str, Any], path: Path) -> Inventory:
    top = TypedTable(data, path, "")
    top.reject_unknown(("testbed", "hosts", "meters"))
    tb = TypedTable(top.get("testbed", dict), path, "testbed")
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
    for i, n in enumerate(names):
        if n in names[:i]:
            raise ConfigError(f"{path}: key '{key}[{i}].name' repeats the name {n!r}")


def _host(data: Any, path: Path, i: int, testbed_kind: str) -> Host:
    t = TypedTable(data, path, f"hosts[{i}]")
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
    worker_port = t.get("worker_port", int, 0)
    if not 0 <= worker_port < 65536:
        raise t.fail("worker_port", "an integer in 0..65535 (0: any free port)", worker_port)
    python = t.get("python", str, "python3")
    if not python.strip():
        raise t.fail("python", "the remote Python interpreter (e.g. \"python3\" or a "
                     "venv's bin/python)", python)
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
        python=python,
        worker_port=worker_port,
        where=f"{path} hosts[{i}]",
    )


def _profile(t: TypedTable) -> DeviceProfile:
    """The profile ``t`` names: a shipped name, or a path relative to the inventory."""
    try:
        return load_profile(_profile_reference(t))
    except ConfigError as exc:
        raise ConfigError(f"{t.path}: key '{t.name('profile')}': {exc}") from None


def _profile_reference(t: TypedTable) -> str:
    """What ``t``'s ``profile`` key names, as :func:`load_profile` takes it from any
    folder: a shipped name as it is, a path made absolute from the inventory's folder."""
    value = t.get("profile", str)
    p = Path(value).expanduser()
    if p.suffix != ".toml" and len(p.parts) == 1:
        return value
    return str(p if p.is_absolute() else t.path.parent / p)


def _meter(
    data: Any, path: Path, i: int, hosts: dict[str, DeviceProfile | None]
) -> MeterSpec:
    from toolkit.energy.factory import meter_parameters

    t = TypedTable(data, path, f"meters[{i}]")
    kind = t.one_of("kind", METER_KINDS)
    params = {n: p for n, p in meter_parameters(kind).items() if n != "name"}
    if "profile" in params:  # a model meter's profile is read after its own keys
        params["profile"] = params.pop("profile")
    t.reject_unknown(_METER_KEYS + tuple(params))
    measures = t.one_of("measures", hosts)
    host = t.one_of("host", hosts, None)
    if kind in _METER_NEEDS_HOST and host is None:
        raise ConfigError(
            f"{path}: missing key '{t.name('host')}' (the host a {kind} meter is read on; "
            f"one of {choices(hosts)})"
        )
    options = {}
    for key, param in params.items():
        default = param.default
        if default is param.empty and key not in t.data:
            raise ConfigError(f"{path}: missing key '{t.name(key)}' (needed by {kind} meters)")
        if key not in t.data:
            continue
        options[key] = t.get(key, _OPTION_KINDS.get(type(default), (str, int, float, bool, list)))
    if kind == "model" and options.get("profile") is None:
        profile = hosts[measures]
        if profile is None:
            raise ConfigError(
                f"{path}: missing key '{t.name('profile')}' (host {measures!r} has no profile)"
            )
        options["profile"] = profile.name
    elif kind == "model":  # a profile of its own, checked now as a host's is
        _profile(t)
        options["profile"] = _profile_reference(t)
    return MeterSpec(
        name=t.get("name", str),
        kind=kind,
        measures=measures,
        host=host,
        options=options,
        where=f"{path} meters[{i}]",
    )
