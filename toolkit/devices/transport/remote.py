"""Long-running processes on a remote host: start, watch, stream logs, stop.

A :class:`RemoteProcess` is a command started in the background on a host through
an :class:`~toolkit.devices.transport.ssh.SshTransport`, in its own session (``setsid``), so
that it outlives the SSH channel that started it. Its PID, log and exit status
live in files under the host's work folder::

    <workdir>/run/<name>.pid      the process group leader's PID
    <workdir>/run/<name>.log      standard output and error
    <workdir>/run/<name>.status   the exit status, once it ended on its own

Stopping sends SIGTERM to the whole process group, waits a grace period and then
sends SIGKILL. Edge and cloud workers both use it.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
import shlex
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from toolkit.devices.transport.commands import remote_command
from toolkit.devices.transport.ssh import SshTransport
from toolkit.errors import DeviceError, ToolkitError

__all__ = ["RemoteProcess", "StopResult"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class StopResult:
    """How a remote process ended.

    Attributes:
        name: process name.
        how: ``exited`` (it had ended on its own), ``terminated`` (SIGTERM was
            enough), ``killed`` (SIGKILL after the grace period) or
            ``not-running`` (no such process was found).
        exit_status: its exit status when it exited on its own, else None.
        duration_ms: time the stop took.
    """

    name: str
    how: str
    exit_status: int | None
    duration_ms: float


class RemoteProcess:
    """A background process on a remote host, addressed by name.

    Create one with :meth:`start`, or with the constructor to attach to a process
    an earlier session started under the same name.

    Args:
        transport: the host's transport.
        name: a file-name-safe name, unique on that host (e.g. ``cloud-worker``).
        run_dir: remote folder for PID, log and status files (default
            ``<workdir>/run`` of the host).
    """

    def __init__(self, transport: SshTransport, name: str, run_dir: str | None = None) -> None:
        if not _NAME.match(name):
            raise ToolkitError(
                f"process name {name!r} is not valid: use letters, digits, '.', '_' and '-'"
            )
        self.transport = transport
        self.name = name
        self.run_dir = run_dir or posixpath.join(transport.host.workdir, "run")
        self.pid: int | None = None

    @property
    def pid_file(self) -> str:
        """Remote path of the PID file."""
        return posixpath.join(self.run_dir, f"{self.name}.pid")

    @property
    def log_file(self) -> str:
        """Remote path of the log (stdout and stderr)."""
        return posixpath.join(self.run_dir, f"{self.name}.log")

    @property
    def status_file(self) -> str:
        """Remote path of the exit status file."""
        return posixpath.join(self.run_dir, f"{self.name}.status")

    @classmethod
    async def start(
        cls,
        transport: SshTransport,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        run_dir: str | None = None,
        replace: bool = True,
    ) -> RemoteProcess:
        """Start ``argv`` in the background on the host and return its handle.

        Args:
            transport: the host's transport.
            name: process name (see the class).
            argv: the program and its arguments (quoted for the remote shell).
            env: environment variables for it.
            cwd: remote working folder (default: the login folder).
            run_dir: where PID, log and status files go.
            replace: stop a process already running under this name first;
                with False, a running one is an error.

        Raises:
            ToolkitError: one is already running and ``replace`` is False, or the
                process could not be started.
        """
        proc = cls(transport, name, run_dir)
        if await proc.read_pid() is not None and await proc.is_running():
            if not replace:
                raise ToolkitError(
                    f"{name} is already running on {transport.name} (pid {proc.pid})"
                )
            await proc.stop()
        q = shlex.quote
        # The inner shell runs the command and records its exit status; setsid makes
        # it a process group leader so that stop() reaches its children too.
        inner = f"{remote_command(argv, env)}; echo $? > {q(proc.status_file)}"
        if cwd is not None:
            inner = f"cd {q(cwd)} && {inner}"
        script = (
            f"set -e; mkdir -p {q(proc.run_dir)}; rm -f {q(proc.status_file)}; "
            f"setsid sh -c {q(inner)} > {q(proc.log_file)} 2>&1 < /dev/null & "
            f"echo $! > {q(proc.pid_file)}; echo $!"
        )
        result = await transport.run(["sh", "-c", script])
        try:
            proc.pid = int(result.stdout.strip())
        except ValueError:
            raise DeviceError(
                f"could not start {name} on {transport.name}: {result.stdout!r} {result.stderr!r}"
            ) from None
        return proc

    async def read_pid(self) -> int | None:
        """Read the PID file (None when there is none)."""
        result = await self.transport.run(["cat", "--", self.pid_file], check=False)
        text = result.stdout.strip()
        self.pid = int(text) if result.ok and text.isdigit() else None
        return self.pid

    async def _pid(self) -> int | None:
        return self.pid if self.pid is not None else await self.read_pid()

    async def is_running(self) -> bool:
        """Whether any process of its session is alive (zombies do not count).

        The session (started by ``setsid``, id = the PID) includes children that
        outlive the leader, e.g. a worker that ignores SIGTERM.
        """
        pid = await self._pid()
        if pid is None:
            return False
        res = await self.transport.run(["ps", "-o", "stat=", "--sid", str(pid)], check=False)
        return any(not state.startswith(("Z", "X")) for state in res.stdout.split())

    async def exit_status(self) -> int | None:
        """The exit status once it ended on its own (None while running or when killed)."""
        result = await self.transport.run(["cat", "--", self.status_file], check=False)
        text = result.stdout.strip()
        return int(text) if result.ok and text.lstrip("-").isdigit() else None

    async def wait(self, timeout: float, poll_s: float = 0.1) -> bool:
        """Wait up to ``timeout`` seconds for the process to end; True if it did."""
        deadline = time.monotonic() + timeout
        while await self.is_running():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_s)
        return True

    async def stop(self, grace_s: float = 5.0) -> StopResult:
        """Stop cleanly: SIGTERM to the process group, SIGKILL after ``grace_s``."""
        start = time.perf_counter()
        pid = await self._pid()

        def done(how: str, status: int | None = None) -> StopResult:
            return StopResult(self.name, how, status, (time.perf_counter() - start) * 1000.0)

        if pid is None or not await self.is_running():
            status = await self.exit_status()
            return done("exited" if status is not None else "not-running", status)
        await self._signal("TERM", pid)
        if await self.wait(grace_s):
            how = "terminated"
        else:
            await self._signal("KILL", pid)
            await self.wait(5.0)
            how = "killed"
        await self.transport.run(["rm", "-f", "--", self.pid_file], check=False)
        return done(how)

    async def _signal(self, sig: str, pid: int) -> None:
        # the negative PID addresses the whole process group started by setsid
        await self.transport.run(["kill", f"-{sig}", "--", f"-{pid}"], check=False)

    async def logs(self, follow: bool = True, from_start: bool = True) -> AsyncIterator[str]:
        """Yield the log's lines; with ``follow``, keep going until the process ends.

        Args:
            follow: keep reading new lines (``tail -F``) until the process exits
                or the iterator is closed.
            from_start: begin with the first line (else only new lines).
        """
        argv = ["tail", "-n", "+1" if from_start else "0"]
        if follow:
            pid = await self._pid()
            argv += ["-F", "-s", "0.2"] + (["--pid", str(pid)] if pid is not None else [])
        argv += ["--", self.log_file]
        async for line in self.transport.stream_lines(argv):
            yield line

    async def read_log(self) -> str:
        """The whole log as it is now."""
        return (await self.transport.run(["cat", "--", self.log_file], check=False)).stdout

    def __repr__(self) -> str:
        return f"RemoteProcess({self.transport.name}:{self.name}, pid={self.pid})"
