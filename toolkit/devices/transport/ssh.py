"""SSH transport to one testbed host, on asyncssh.

One :class:`SshTransport` holds one SSH connection to one inventory
:class:`~toolkit.devices.inventory.Host` and reuses it for every command and file
transfer. It

- connects as :mod:`toolkit.devices.transport.connect` describes (host keys
  verified, keys or agent only, keepalives) and reconnects with exponential
  backoff when the connection has dropped;
- limits every command in time, and takes commands as argv lists
  (:mod:`toolkit.devices.transport.commands`);
- opens at most ``max_sessions - 2`` channels at once (sshd's ``MaxSessions``,
  default 10, bounds channels per connection);
- copies files with SFTP and verifies them with the remote ``sha256sum``
  (:mod:`toolkit.devices.transport.files`).

Errors are :mod:`toolkit.devices.transport.errors` (all
:class:`~toolkit.errors.ToolkitError`) whose messages name the host. The methods
are coroutines; notebooks use them through :class:`toolkit.devices.Blocking`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.devices.inventory import Host
from toolkit.devices.transport import files
from toolkit.devices.transport.commands import (
    REMOTE_GRACE_S,
    CommandResult,
    finished,
    guarded_command,
    remote_command,
)
from toolkit.devices.transport.connect import (
    TRANSIENT_ERRORS,
    ReconnectPolicy,
    connect_once,
    endpoint,
)
from toolkit.devices.transport.errors import (
    CommandTimeout,
    ConnectError,
    ConnectionLost,
    SshError,
)
from toolkit.devices.transport.sshlib import import_asyncssh
from toolkit.errors import ConfigError, ToolkitError
from toolkit.retry import Backoff

asyncssh = import_asyncssh()

__all__ = ["SshTransport", "TransportStats"]

log = logging.getLogger(__name__)


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



#: how a channel refused by sshd is retried: briefly, from 5 ms doubling, for half a second
_OPEN_RETRY = Backoff(0.005, give_up_s=0.5)



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
        return endpoint(self.host)

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
                return await connect_once(self.host)
            except ConnectError as exc:
                last = exc
                self.stats.failed_attempts += 1
                self.stats.note(f"connect failed: {exc}")
                log.debug("connect to %s failed: %s", self.name, exc)
            if await anext(delays, None) is None:
                break
        raise ConnectError(
            self.name,
            f"cannot connect to {self.name} ({self.endpoint}) after {attempts} attempts "
            f"in {time.monotonic() - start:.1f} s: {last}",
        ) from None

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
            except TRANSIENT_ERRORS as exc:
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
                self._release_when_closed(proc, slots, REMOTE_GRACE_S + 5.0)
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
        return finished(self.name, argv, status, stdout or b"", stderr or b"", start, check)

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

    async def sftp(self, what: str, remote: str, action) -> None:
        """Run ``action(sftp_client)`` in one of the host's session slots.

        A whole-file copy is safe to redo, so a connection found dead is reopened
        and the action run once more. ``what`` and ``remote`` name it in errors.
        """
        async with self._primitives()[1]:
            for attempt in (1, 2):
                conn = await self._connection()
                try:
                    async with conn.start_sftp_client() as client:
                        await action(client)
                    return
                except asyncssh.SFTPError as exc:
                    raise ToolkitError(
                        f"{what} {self.name}:{remote} failed: {exc.reason}") from None
                except TRANSIENT_ERRORS as exc:
                    if conn.is_closed() and attempt == 1:
                        continue
                    raise self.lost_connection(f"{what} of {remote}", exc) from None

    async def sha256(self, paths: Sequence[str]) -> dict[str, str | None]:
        """The host's sha256 of each path (:func:`.files.remote_sha256`)."""
        return await files.remote_sha256(self, paths)

    async def upload(self, local: str | Path, remote: str, *, verify: bool = True) -> str:
        """Copy a local file to the host, verified (:func:`.files.upload`)."""
        return await files.upload(self, local, remote, verify=verify)

    async def download(self, remote: str, local: str | Path, *, verify: bool = True) -> str:
        """Copy a file from the host, verified (:func:`.files.download`)."""
        return await files.download(self, remote, local, verify=verify)
