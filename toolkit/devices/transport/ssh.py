"""SSH transport to one testbed host, on asyncssh.

One :class:`SshTransport` holds one SSH connection to one inventory
:class:`~toolkit.devices.inventory.Host` and reuses it for every command and file
transfer. It

- verifies the server's host key against the host's known_hosts file (turning
  this off needs ``verify_host_keys = false`` in the inventory, and logs a
  warning on every connect);
- authenticates with a key file or the ssh-agent only: password and
  keyboard-interactive authentication are never offered;
- sends keepalives, and limits connecting and every command in time;
- takes commands as argv lists and builds the remote command line with
  :func:`shlex.join`, so no argument is ever interpreted by the remote shell;
- opens at most ``max_sessions - 2`` channels at once (sshd's ``MaxSessions``,
  default 10, bounds channels per connection);
- reconnects with exponential backoff when the connection has dropped;
- copies files with SFTP and verifies them with the remote ``sha256sum``.

Errors are :class:`SshError` subclasses (all :class:`~toolkit.errors.ToolkitError`)
whose messages name the host. The methods are coroutines; notebooks use them
through :class:`toolkit.devices.Blocking`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import posixpath
import shlex
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.devices.inventory import Host
from toolkit.devices.transport.sshlib import import_asyncssh
from toolkit.errors import ConfigError, DeviceError, ToolkitError
from toolkit.retry import Backoff

asyncssh = import_asyncssh()

__all__ = [
    "AuthError",
    "ChecksumMismatch",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "ConnectError",
    "ConnectionLost",
    "HostKeyError",
    "ReconnectPolicy",
    "SshError",
    "SshTransport",
    "TransportStats",
    "file_sha256",
    "guarded_command",
    "remote_command",
]

log = logging.getLogger(__name__)


class SshError(DeviceError):
    """Something went wrong talking to a host over SSH (retrying may help, unless
    the host key or the credentials are wrong).

    Attributes:
        host: the inventory name of the host.
    """

    def __init__(self, host: str, message: str) -> None:
        super().__init__(message)
        self.host = host


class HostKeyError(SshError):
    """The server's host key is not the one known_hosts lists (or none is listed)."""

    retryable = False


class AuthError(SshError):
    """The server refused the key (or agent keys) for the user."""

    retryable = False


class ConnectError(SshError):
    """The host could not be reached (refused, unreachable, handshake timed out)."""


class ConnectionLost(SshError):
    """The connection dropped while a command or transfer was running."""


class CommandTimeout(SshError):
    """A remote command ran longer than its timeout; it was signalled and abandoned.

    Attributes:
        command: the remote command line (or the part of a script that hung).
        timeout_s: the limit it exceeded.
        output: standard output received before giving up (where it was kept).
    """

    def __init__(self, host: str, command: str, timeout_s: float, output: str = "") -> None:
        super().__init__(host, f"command on {host} timed out after {timeout_s:g} s: {command}")
        self.command, self.timeout_s, self.output = command, timeout_s, output


class CommandFailed(SshError):
    """A remote command exited with a non-zero status (when ``check=True``).

    Attributes:
        result: the command's :class:`CommandResult`.
    """

    def __init__(self, result: CommandResult) -> None:
        detail = (result.stderr.strip() or result.stdout.strip())[-500:]
        super().__init__(
            result.host,
            f"command on {result.host} failed with exit status {result.exit_status}: "
            f"{result.command}" + (f": {detail}" if detail else ""),
        )
        self.result = result


class ChecksumMismatch(SshError):
    """A copied file's sha256 differs between the two ends."""


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one remote command.

    Attributes:
        host: host name.
        argv: the arguments as given.
        exit_status: exit status (negative signal number when killed by a signal).
        stdout: standard output, decoded as UTF-8 (invalid bytes replaced).
        stderr: standard error, decoded likewise.
        duration_ms: wall time from opening the channel to the exit status.
    """

    host: str
    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str
    duration_ms: float

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.exit_status == 0

    @property
    def command(self) -> str:
        """The remote command line as sent."""
        return shlex.join(self.argv)


@dataclass(frozen=True)
class ReconnectPolicy(Backoff):
    """Backoff for (re)connecting: 0.1 s doubling to 2 s, giving up after 30 s."""

    max_delay_s: float = 2.0
    give_up_s: float = 30.0


@dataclass
class TransportStats:
    """Counters of one transport (what happened, for logs and tests).

    Attributes:
        connects: successful connects, the first included.
        reconnects: successful connects after an earlier connection (lost or closed).
        failed_attempts: connect attempts that failed (each one backed off).
        commands: commands started.
        timeouts: commands that timed out.
        connection_losses: operations that failed because the connection dropped.
        events: a short log of notable events, oldest first.
    """

    connects: int = 0
    reconnects: int = 0
    failed_attempts: int = 0
    commands: int = 0
    timeouts: int = 0
    connection_losses: int = 0
    events: list[str] = field(default_factory=list)

    def note(self, event: str) -> None:
        """Record an event (the log keeps the last 200)."""
        self.events.append(event)
        del self.events[:-200]


def remote_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The remote command line for ``argv``: every part quoted with :func:`shlex.join`.

    ``env`` becomes a leading ``env NAME=VALUE ...`` so that no shell syntax is
    needed. A plain string is refused: it would be interpreted by the remote shell.
    """
    if isinstance(argv, (str, bytes)):
        raise TypeError("argv must be a list of arguments, not a shell string")
    parts = [str(a) for a in argv]
    if not parts:
        raise ValueError("argv is empty")
    if env:
        bad = [k for k in env if not k.isidentifier()]
        if bad:
            raise ValueError(f"invalid environment variable names: {bad}")
        parts = ["env", *(f"{k}={v}" for k, v in env.items()), *parts]
    return shlex.join(parts)


#: the remote `timeout` guard fires this long after the client-side timeout
_REMOTE_GRACE_S = 1.0


def guarded_command(argv: Sequence[str], timeout_s: float,
                    env: Mapping[str, str] | None = None) -> str:
    """The remote command line for ``argv`` under the host's coreutils ``timeout``.

    The guard ends the command's whole process group shortly after the client
    gives up on it (``timeout_s`` plus a second, SIGKILL two seconds later), so
    nothing lingers on the host even where sshd ignores signal requests (root
    logins) or the connection is gone.
    """
    guard = ["timeout", "-k", "2", f"{timeout_s + _REMOTE_GRACE_S:.1f}"]
    return remote_command([*guard, *argv], env)
#: how a channel refused by sshd is retried: briefly, from 5 ms doubling, for half a second
_OPEN_RETRY = Backoff(0.005, give_up_s=0.5)

_TRANSIENT = (OSError, asyncio.TimeoutError, asyncssh.DisconnectError, asyncssh.ChannelOpenError)

#: Ciphers offered to the host, most wanted first: AES-GCM costs asyncssh one AEAD
#: call per packet where chacha20-poly1305 builds three cipher contexts, a quarter
#: of the controller's CPU per command at fan-out (``benchmarks/fanout.py``).
#: asyncssh's other defaults follow, for hosts that lack AES-GCM.
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
           "chacha20-poly1305@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr")


class SshTransport:
    """One reused SSH connection to one host (see the module docstring).

    Args:
        host: the inventory host (address, port, user, key, known_hosts, limits).
        reconnect: backoff for (re)connecting.
    """

    def __init__(self, host: Host, reconnect: ReconnectPolicy | None = None) -> None:
        if host.user is None:
            raise ConfigError(f"{host.where}: missing key 'user' (the SSH login user)")
        self.host = host
        self.reconnect = reconnect or ReconnectPolicy()
        self.stats = TransportStats()
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock: asyncio.Lock | None = None
        self._slots: asyncio.Semaphore | None = None
        self._background: set[asyncio.Task] = set()
        self._failure: tuple[float, SshError] | None = None

    # -- connection -----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The host's inventory name."""
        return self.host.name

    @property
    def endpoint(self) -> str:
        """``address:port``, for messages."""
        return f"{self.host.address}:{self.host.port}"

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now."""
        return self._conn is not None and not self._conn.is_closed()

    def _primitives(self) -> tuple[asyncio.Lock, asyncio.Semaphore]:
        if self._lock is None or self._slots is None:
            self._lock = asyncio.Lock()
            self._slots = asyncio.Semaphore(self.host.session_limit)
        return self._lock, self._slots

    async def connect(self) -> None:
        """Open the connection now (otherwise the first command opens it)."""
        await self._connection()

    async def _connection(self) -> asyncssh.SSHClientConnection:
        lock, _ = self._primitives()
        asked_at = time.monotonic()
        async with lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            if self._failure is not None and self._failure[0] >= asked_at:
                raise self._failure[1]  # it just failed while we waited: no second backoff
            lost = self.stats.connects > 0
            self._conn = None
            try:
                conn = await self._connect_with_backoff()
            except SshError as exc:
                self._failure = (time.monotonic(), exc)
                raise
            self._conn = conn
            self.stats.connects += 1
            if lost:
                self.stats.reconnects += 1
                self.stats.note(f"reconnected to {self.endpoint}")
                log.info("reconnected to %s (%s)", self.name, self.endpoint)
            return conn

    async def _connect_with_backoff(self) -> asyncssh.SSHClientConnection:
        start, attempts, delays = time.monotonic(), 0, self.reconnect.delays()
        while True:
            attempts += 1
            try:
                return await self._connect_once()
            except ConnectError as exc:
                last = exc
                self._failed(exc)
            if await anext(delays, None) is None:
                break
        raise ConnectError(
            self.name,
            f"cannot connect to {self.name} ({self.endpoint}) after {attempts} attempts "
            f"in {time.monotonic() - start:.1f} s: {last}",
        ) from None

    def _failed(self, exc: Exception) -> None:
        self.stats.failed_attempts += 1
        self.stats.note(f"connect failed: {exc}")
        log.debug("connect to %s failed: %s", self.name, exc)

    def _options(self) -> dict:
        h = self.host
        opts: dict = dict(
            port=h.port,
            username=h.user,
            config=[],  # the inventory is the whole truth, not ~/.ssh/config
            connect_timeout=h.connect_timeout_s,
            keepalive_interval=h.keepalive_s,
            keepalive_count_max=3,
            password_auth=False,
            kbdint_auth=False,
            host_based_auth=False,
            gss_auth=False,
            gss_kex=False,
            public_key_auth=True,
            encryption_algs=list(CIPHERS),
        )
        if h.agent:
            # the agent's keys (SSH_AUTH_SOCK), then unencrypted ~/.ssh/id_* as OpenSSH does
            opts.update(client_keys=(), agent_path=())
        else:
            if h.identity_file is None or not h.identity_file.is_file():
                raise ConfigError(
                    f"{h.where}: key 'identity_file' names {h.identity_file}, which is not "
                    "a readable private key file"
                )
            opts.update(client_keys=[str(h.identity_file)], agent_path=None)
        if h.verify_host_keys:
            if h.known_hosts is None or not h.known_hosts.is_file():
                raise ConfigError(
                    f"{h.where}: key 'known_hosts' names {h.known_hosts}, which does not "
                    f"exist; add the host with `ssh-keyscan -p {h.port} {h.address}` (and "
                    "check the fingerprint), or set verify_host_keys = false"
                )
            opts.update(known_hosts=str(h.known_hosts))
        else:
            log.warning(
                "host key verification is OFF for %s (%s): verify_host_keys = false in %s",
                self.name, self.endpoint, h.where,
            )
            opts.update(known_hosts=None)
        return opts

    async def _connect_once(self) -> asyncssh.SSHClientConnection:
        h = self.host
        opts = self._options()
        try:
            return await asyncssh.connect(h.address, **opts)
        except asyncssh.HostKeyNotVerifiable:
            raise self._host_key_error() from None
        except asyncssh.PermissionDenied:
            how = "the ssh-agent's keys" if h.agent else f"key {h.identity_file}"
            raise AuthError(
                self.name,
                f"authentication failed for user {h.user!r} on {self.name} ({self.endpoint}) "
                f"with {how}: the server refused it (is the public key in the user's "
                "authorized_keys?)",
            ) from None
        except socket.gaierror as exc:
            raise ConfigError(
                f"{h.where}: key 'address' = {h.address!r} cannot be resolved: {exc}"
            ) from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise ConfigError(
                f"{h.where}: key 'identity_file' = {h.identity_file}: cannot use it ({exc}); "
                "encrypted keys need the ssh-agent (agent = true)"
            ) from None
        except _TRANSIENT as exc:
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            raise ConnectError(
                self.name, f"cannot connect to {self.name} ({self.endpoint}): {reason}"
            ) from None

    def _host_key_error(self) -> HostKeyError:
        h = self.host
        try:
            known = asyncssh.read_known_hosts(str(h.known_hosts))
            listed = any(known.match(h.address, h.address, h.port)[:2])
        except (OSError, ValueError):
            listed = False
        if listed:
            msg = (f"host key for {self.name} ({self.endpoint}) does not match known_hosts "
                   f"{h.known_hosts}: the host was reinstalled or someone is in the middle; "
                   "check its fingerprint out of band before updating known_hosts")
        else:
            msg = (f"host key for {self.name} ({self.endpoint}) is not in known_hosts "
                   f"{h.known_hosts}; add it with `ssh-keyscan -p {h.port} {h.address}` "
                   "after checking the fingerprint")
        return HostKeyError(self.name, msg)

    async def close(self) -> None:
        """Close the connection (a later command opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
        if self._background:  # slot releases waiting on channels, which are closed now
            await asyncio.gather(*self._background, return_exceptions=True)

    async def __aenter__(self) -> SshTransport:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- channels -------------------------------------------------------------------

    def _release_when_closed(self, proc: asyncssh.SSHClientProcess,
                             slots: asyncio.Semaphore, within: float | None) -> None:
        """Give the session slot back once the channel has closed (or after ``within``)."""
        async def wait_then_release() -> None:
            try:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait_closed(), within)
            finally:
                slots.release()

        task = asyncio.get_running_loop().create_task(wait_then_release())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        _, slots = self._primitives()
        async with slots:
            yield

    def lost_connection(self, what: str, exc: BaseException) -> ConnectionLost:
        """Count a connection that dropped during ``what``; the error to raise."""
        self.stats.connection_losses += 1
        self.stats.note(f"connection lost during {what}: {exc}")
        return ConnectionLost(
            self.name,
            f"connection to {self.name} ({self.endpoint}) lost during {what}: "
            f"{exc or type(exc).__name__}",
        )

    async def _open_in_slot(self, command: str):
        """Open a process channel in one of the host's session slots.

        Returns the process and the slot semaphore; the caller releases the slot
        when the channel closes (on an error here it is released at once).
        """
        _, slots = self._primitives()
        await slots.acquire()
        try:
            return await self._open_process(command, command), slots
        except BaseException:
            slots.release()
            raise

    async def _open_process(self, wire: str, command: str) -> asyncssh.SSHClientProcess:
        """Open a channel running ``wire`` (``command`` in messages).

        The command has not started when opening fails, so two failures are retried:
        a connection found dead (reconnect, once), and a session refused by sshd
        (briefly, with backoff: sshd frees closed sessions lazily, so under churn it
        may count a few more than are open).
        """
        reconnected, refused = False, _OPEN_RETRY.delays()
        while True:
            conn = await self._connection()
            try:
                return await conn.create_process(wire, encoding=None)
            except _TRANSIENT as exc:
                if conn.is_closed() and not reconnected:
                    self.stats.note(f"connection found dead before {command!r}: {exc}")
                    reconnected = True
                    continue
                if not isinstance(exc, asyncssh.ChannelOpenError) or conn.is_closed():
                    raise self.lost_connection(command, exc) from None
                if await anext(refused, None) is None:
                    raise SshError(
                        self.name, f"{self.name} refused a new session for {command}: {exc} "
                        "(more channels than sshd's MaxSessions? check the host's "
                        "max_sessions in the inventory)",
                    ) from None

    async def open_channel(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> asyncssh.SSHClientProcess:
        """Open a long-lived channel running ``argv`` (e.g. a shell reading commands).

        The channel holds one of the host's session slots until it closes. Its
        command runs without the ``timeout`` guard: whoever feeds it bounds the
        work it starts (see :class:`toolkit.devices.transport.shell.RemoteShell`).
        """
        proc, slots = await self._open_in_slot(remote_command(argv, env))
        self._release_when_closed(proc, slots, None)
        return proc

    async def run(
        self,
        argv: Sequence[str],
        *,
        input: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run a command on the host and wait for it.

        Args:
            argv: the program and its arguments; each is quoted for the remote shell.
            input: data for the command's standard input (then EOF).
            timeout: seconds before the command is signalled and abandoned
                (default: the host's ``command_timeout_s``).
            check: raise :class:`CommandFailed` on a non-zero exit status.
            env: environment variables for the command (through ``env``).

        Raises:
            CommandTimeout: it ran past ``timeout``.
            CommandFailed: non-zero exit with ``check``.
            ConnectionLost: the connection dropped while it ran.
            ConnectError, HostKeyError, AuthError: (re)connecting failed.
        """
        command = remote_command(argv, env)
        limit = self.host.command_timeout_s if timeout is None else timeout
        data = input.encode() if isinstance(input, str) else input
        wire = guarded_command(argv, limit, env)
        _, slots = self._primitives()
        await slots.acquire()
        release = True
        try:
            start = time.perf_counter()
            proc = await self._open_process(wire, command)
            self.stats.commands += 1
            try:
                stdout, stderr = await asyncio.wait_for(proc.communicate(data), limit)
                await proc.wait_closed()  # sshd frees the session only once both sides closed
            except asyncio.TimeoutError:
                self.stats.timeouts += 1
                self.stats.note(f"timeout after {limit:g} s: {command}")
                with contextlib.suppress(Exception):
                    proc.send_signal("KILL")
                proc.close()
                # the session lives on at sshd until the command dies: keep its slot
                release = False
                self._release_when_closed(proc, slots, _REMOTE_GRACE_S + 5.0)
                raise CommandTimeout(self.name, command, limit) from None
            except (asyncssh.Error, OSError) as exc:
                proc.close()
                raise self.lost_connection(command, exc) from None
        finally:
            if release:
                slots.release()
        status = proc.returncode
        if status is None:  # the channel closed without an exit status
            raise self.lost_connection(command,
                                       ConnectionError("channel closed without exit status"))
        result = CommandResult(
            host=self.name,
            argv=tuple(str(a) for a in argv),
            exit_status=status,
            stdout=(stdout or b"").decode("utf-8", "replace"),
            stderr=(stderr or b"").decode("utf-8", "replace"),
            duration_ms=(time.perf_counter() - start) * 1000.0,
        )
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    async def stream_lines(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> AsyncIterator[str]:
        """Run a command and yield its standard output line by line (no timeout).

        The channel (one of the host's session slots) stays open until the command
        exits or the iterator is closed; closing it signals and closes the channel.
        """
        command = remote_command(argv, env)
        proc, slots = await self._open_in_slot(command)
        self.stats.commands += 1
        try:
            while raw := await proc.stdout.readline():
                yield raw.decode("utf-8", "replace").removesuffix("\n")
        except (asyncssh.Error, OSError) as exc:
            raise self.lost_connection(command, exc) from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(Exception):
                    proc.send_signal("TERM")  # sshd ignores it for root logins
            proc.close()
            # the slot comes back once sshd has closed the session too
            self._release_when_closed(proc, slots, 30.0)

    # -- files ----------------------------------------------------------------------

    async def sha256(self, paths: Sequence[str]) -> dict[str, str | None]:
        """Remote sha256 of each path (None where the file is missing or unreadable)."""
        out: dict[str, str | None] = dict.fromkeys(paths)
        if not paths:
            return out
        result = await self.run(["sha256sum", "--", *paths], check=False)
        for line in result.stdout.splitlines():
            digest, sep, name = line.partition("  ")
            if not sep:
                continue
            if digest.startswith("\\"):  # sha256sum escapes names with \\ or newline
                digest = digest[1:]
                name = name.replace("\\n", "\n").replace("\\\\", "\\")
            if name in out:
                out[name] = digest
        return out

    async def upload(self, local: str | Path, remote: str, *, verify: bool = True) -> str:
        """Copy a local file to the host with SFTP and return its sha256.

        The file is written beside ``remote`` under a temporary name, checked with
        the remote ``sha256sum`` and then renamed, so ``remote`` is never half-written.
        Missing remote folders are created. Remote relative paths start at the
        login folder.

        Raises:
            ChecksumMismatch: the remote copy's sha256 differs (it is removed).
        """
        local = Path(local)
        if not local.is_file():
            raise ToolkitError(f"cannot upload {local}: no such file")
        digest = await asyncio.to_thread(file_sha256, local)
        tmp = f"{remote}.part-{uuid.uuid4().hex[:8]}"
        parent = posixpath.dirname(remote)
        try:
            async with self._slot():
                await self._sftp("upload", remote, lambda sftp: _put(sftp, local, tmp, parent))
            got = (await self.sha256([tmp]))[tmp] if verify else digest
            if got != digest:
                raise ChecksumMismatch(
                    self.name,
                    f"upload of {local} to {self.name}:{remote} is corrupt: "
                    f"sha256 {got} on the host, {digest} here",
                )
            await self.run(["mv", "-f", "--", tmp, remote])
        except Exception:
            with contextlib.suppress(Exception):  # best effort: the connection may be gone
                await self.run(["rm", "-f", "--", tmp], check=False, timeout=10)
            raise
        return digest

    async def download(self, remote: str, local: str | Path, *, verify: bool = True) -> str:
        """Copy a file from the host with SFTP, verify its sha256 and return it.

        Raises:
            ChecksumMismatch: the local copy's sha256 differs (it is removed).
        """
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f"{local.name}.part-{uuid.uuid4().hex[:8]}")
        want = (await self.sha256([remote]))[remote] if verify else None
        if verify and want is None:
            raise ToolkitError(f"cannot download {self.name}:{remote}: no such readable file")
        try:
            async with self._slot():
                await self._sftp("download", remote, lambda sftp: sftp.get(remote, str(tmp)))
            digest = await asyncio.to_thread(file_sha256, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if verify and digest != want:
            tmp.unlink(missing_ok=True)
            raise ChecksumMismatch(
                self.name,
                f"download of {self.name}:{remote} to {local} is corrupt: "
                f"sha256 {digest} here, {want} on the host",
            )
        tmp.replace(local)
        return digest

    async def _sftp(self, what: str, remote: str, action) -> None:
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                async with conn.start_sftp_client() as sftp:
                    await action(sftp)
                return
            except asyncssh.SFTPError as exc:
                raise ToolkitError(f"{what} {self.name}:{remote} failed: {exc.reason}") from None
            except _TRANSIENT as exc:
                if conn.is_closed() and attempt == 1:
                    continue  # whole-file copy: safe to redo after reconnecting
                raise self.lost_connection(f"{what} of {remote}", exc) from None


async def _put(sftp: asyncssh.SFTPClient, local: Path, remote: str, parent: str) -> None:
    if parent:
        await sftp.makedirs(parent, exist_ok=True)
    await sftp.put(str(local), remote)


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a local file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
