"""A long-lived remote shell: many commands over one SSH channel, one at a time.

Every :meth:`SshTransport.run <toolkit.devices.transport.ssh.SshTransport.run>` opens a new
SSH session, for which sshd forks a process and starts the login shell. A
:class:`RemoteShell` opens one session running ``sh`` once and then writes each
command to that shell's standard input, so a command costs the host only the
command itself. This is what makes applying a configuration on many hosts at
once cheap (see :meth:`toolkit.devices.PiController.apply`).

Every command keeps the guarantees of ``SshTransport.run``: it is an argv list
quoted with :func:`shlex.join`; it runs under the host's coreutils ``timeout``
(:func:`~toolkit.devices.transport.commands.guarded_command`) with standard input from
``/dev/null``; the client gives up after the limit with
:class:`~toolkit.devices.transport.errors.CommandTimeout`; a dropped connection raises
:class:`~toolkit.devices.transport.errors.ConnectionLost`. After a timeout or a loss the
channel is discarded and the next command opens a fresh one (reconnecting with
backoff where needed). Output ends at a random sentinel the shell prints after
the command, with the exit status (``128 + N`` when a signal ended it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence

from toolkit.devices.transport.commands import (
    CommandResult,
    finished,
    guarded_command,
    remote_command,
)
from toolkit.devices.transport.errors import CommandTimeout
from toolkit.devices.transport.ssh import SshTransport
from toolkit.devices.transport.sshlib import import_asyncssh

asyncssh = import_asyncssh()

__all__ = ["RemoteShell"]

_CHUNK = 1 << 16


class RemoteShell:
    """One reused ``sh`` channel on a host that runs commands one after another.

    The channel opens on the first command and reopens after a timeout, a lost
    connection or :meth:`close`. Commands sent concurrently wait for each other.
    It holds one of the host's session slots while open; on a host that allows
    the toolkit a single session (``max_sessions`` below 4), every command takes
    a session of its own instead (:meth:`SshTransport.run`), so that other
    commands are never starved.

    Args:
        transport: the host's transport (its connection, limits and counters).
        shell: the program reading the commands (a POSIX shell).
    """

    def __init__(self, transport: SshTransport, shell: str = "sh") -> None:
        self.transport = transport
        self.shell = shell
        self.opened = 0
        self._proc: asyncssh.SSHClientProcess | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def is_open(self) -> bool:
        """Whether the shell's channel is open right now."""
        proc = self._proc
        return (proc is not None and not proc.is_closing()
                and not proc.channel.get_connection().is_closed())

    async def _ensure(self) -> asyncssh.SSHClientProcess:
        if not self.is_open:
            await self.close()
            self._proc = await self.transport.open_channel([self.shell])
            self.opened += 1
        return self._proc  # type: ignore[return-value]

    async def close(self) -> None:
        """Close the channel; the shell exits once its current command has ended."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait_closed(), 5.0)

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run one command in the shell and wait for it.

        Args:
            argv: the program and its arguments; each is quoted for the shell.
            timeout: seconds before giving up (default: the host's
                ``command_timeout_s``); the host's ``timeout`` guard ends the
                command a second later.
            check: raise :class:`CommandFailed` on a non-zero exit status.
            env: environment variables for the command (through ``env``).

        Raises:
            CommandTimeout: it ran past ``timeout`` (``output`` holds the standard
                output received until then).
            CommandFailed: non-zero exit with ``check``.
            ConnectionLost: the connection dropped while it ran.
            ConnectError, HostKeyError, AuthError: (re)connecting failed.
        """
        if self.transport.host.session_limit < 2:
            return await self.transport.run(argv, timeout=timeout, check=check, env=env)
        command = remote_command(argv, env)
        limit = self.transport.host.command_timeout_s if timeout is None else timeout
        token = uuid.uuid4().hex
        line = (f"{guarded_command(argv, limit, env)} </dev/null; "
                f"printf '\\n%s %d\\n' {token} $?; printf '\\n%s\\n' {token} >&2\n").encode()
        if self._lock is None:
            self._lock = asyncio.Lock()
        stats = self.transport.stats
        async with self._lock:
            proc = await self._send(line, command)
            stats.commands += 1
            start = time.perf_counter()
            out, err = bytearray(), bytearray()
            try:
                status = await asyncio.wait_for(self._collect(proc, token, out, err), limit)
            except asyncio.TimeoutError:
                stats.timeouts += 1
                stats.note(f"timeout after {limit:g} s: {command}")
                await self.close()  # the guard ends the command; the shell then exits
                raise CommandTimeout(self.transport.name, command, limit,
                                     output=out.decode("utf-8", "replace")) from None
            except (asyncssh.Error, OSError, EOFError) as exc:
                await self.close()
                raise self.transport.lost_connection(command, exc) from None
        return finished(self.transport.name, argv, status, bytes(out), bytes(err), start, check)

    async def _send(self, line: bytes, command: str) -> asyncssh.SSHClientProcess:
        """Write the command line; a channel that refuses it never ran it: retry once."""
        for attempt in (1, 2):
            proc = await self._ensure()
            try:
                proc.stdin.write(line)
                return proc
            except (asyncssh.Error, OSError) as exc:
                await self.close()
                if attempt == 2:
                    raise self.transport.lost_connection(command, exc) from None
        raise AssertionError("unreachable")

    @staticmethod
    async def _collect(proc: asyncssh.SSHClientProcess, token: str,
                       out: bytearray, err: bytearray) -> int:
        """Read stdout and stderr up to their sentinels; strip them; the exit status."""
        mark = b"\n" + token.encode()
        status, _ = await asyncio.gather(_read_until(proc.stdout, mark, out),
                                         _read_until(proc.stderr, mark, err))
        return int(status)


async def _read_until(reader: asyncssh.SSHReader, mark: bytes, buf: bytearray) -> str:
    """Append ``reader``'s data to ``buf`` until a whole line starting with ``mark``
    (after a newline) has arrived; cut ``buf`` there.

    Returns the rest of that line, stripped (the exit status on standard output,
    ``""`` on standard error). ``buf`` keeps what arrived so far if this is cancelled
    (a timeout), for the caller's error message.
    """
    searched = 0
    while True:
        at = buf.find(mark, max(0, searched - len(mark)))
        end = buf.find(b"\n", at + len(mark)) if at >= 0 else -1
        if end >= 0:
            rest = bytes(buf[at + len(mark):end]).decode().strip()
            del buf[at:]
            return rest
        searched = at if at >= 0 else len(buf)
        data = await reader.read(_CHUNK)
        if not data:
            raise EOFError("the channel closed before the command finished")
        buf += data
