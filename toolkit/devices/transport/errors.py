"""The errors of talking to a host over SSH: each names the host, and says
whether a retry can help (:attr:`~toolkit.errors.ToolkitError.retryable`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.errors import DeviceError

if TYPE_CHECKING:
    from toolkit.devices.transport.commands import CommandResult

__all__ = [
    "AuthError",
    "ChecksumMismatch",
    "CommandFailed",
    "CommandTimeout",
    "ConnectError",
    "ConnectionLost",
    "HostKeyError",
    "SshError",
]


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
