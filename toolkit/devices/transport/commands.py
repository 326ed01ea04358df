"""Remote command lines and what a remote command returns.

Commands are argv lists; :func:`remote_command` quotes every part with
:func:`shlex.join`, so no argument is ever interpreted by the remote shell, and
:func:`guarded_command` puts the host's coreutils ``timeout`` around it.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from toolkit.devices.transport.errors import CommandFailed

__all__ = ["REMOTE_GRACE_S", "CommandResult", "finished", "guarded_command", "remote_command"]


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


def finished(host: str, argv: Sequence[str], status: int, stdout: bytes, stderr: bytes,
             start: float, check: bool) -> CommandResult:
    """The result of a command that began at ``start`` (``time.perf_counter``), its
    output decoded; with ``check``, :class:`~.errors.CommandFailed` where it failed."""
    result = CommandResult(host, tuple(str(a) for a in argv), status,
                           stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"),
                           (time.perf_counter() - start) * 1000.0)
    if check and not result.ok:
        raise CommandFailed(result)
    return result


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
REMOTE_GRACE_S = 1.0


def guarded_command(argv: Sequence[str], timeout_s: float,
                    env: Mapping[str, str] | None = None) -> str:
    """The remote command line for ``argv`` under the host's coreutils ``timeout``.

    The guard ends the command's whole process group shortly after the client
    gives up on it (``timeout_s`` plus a second, SIGKILL two seconds later), so
    nothing lingers on the host even where sshd ignores signal requests (root
    logins) or the connection is gone.
    """
    guard = ["timeout", "-k", "2", f"{timeout_s + REMOTE_GRACE_S:.1f}"]
    return remote_command([*guard, *argv], env)
