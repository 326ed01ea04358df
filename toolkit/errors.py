"""User-facing errors.

Every problem a user can cause (an unknown model, a split out of range, a bad
profile file, a foreign cube) raises a :class:`ToolkitError` whose message names
the problem and the valid choices. The command line prints it as one line on
stderr and exits with status 2; notebooks show it as an ordinary exception.
"""

from __future__ import annotations

__all__ = ["ConfigError", "ProtocolError", "ToolkitError"]


class ToolkitError(Exception):
    """A problem with the user's input or environment, with a readable message."""


class ConfigError(ToolkitError):
    """A configuration, profile or inventory value is invalid."""


class ProtocolError(ToolkitError):
    """A peer sent something that is not a valid frame of the wire protocol."""


def choices(values) -> str:
    """Format valid choices for an error message: ``a, b, c``."""
    return ", ".join(str(v) for v in values)
