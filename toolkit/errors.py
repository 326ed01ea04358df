"""User-facing errors.

Every problem a user can cause (an unknown model, a split out of range, a bad
profile file, a foreign cube) raises a :class:`ToolkitError` whose message names
the problem and the valid choices. The command line prints it as one line on
stderr and exits with status 2; notebooks show it as an ordinary exception.

Every error says whether trying again can help (:func:`retryable`): the user's
mistakes never (a retry would fail the same way), a device, worker or
connection that failed may (:class:`DeviceError`). Retry loops
(:func:`toolkit.retry.retry_run`) ask the error, not a list of types.
"""

from __future__ import annotations

import math
from typing import ClassVar

__all__ = ["ConfigError", "DeviceError", "ProtocolError", "ToolkitError", "check_count",
           "check_number", "check_seconds", "check_seed", "first_line", "in_range", "is_count",
           "is_number", "retryable", "short_repr"]


class ToolkitError(Exception):
    """A problem with the user's input or environment, with a readable message.

    Attributes:
        retryable: whether trying again may help (not for the user's mistakes).
    """

    retryable: ClassVar[bool] = False


class DeviceError(ToolkitError):
    """A device, worker or connection failed (died, timed out, went away): trying
    again, after restarting what failed, may help."""

    retryable: ClassVar[bool] = True


class ConfigError(ToolkitError):
    """A configuration, profile or inventory value is invalid."""


class ProtocolError(ToolkitError):
    """A peer sent something that is not a valid frame of the wire protocol."""


def retryable(exc: BaseException) -> bool:
    """Whether trying again may help: a toolkit error says so itself; OS errors
    (timeouts, refused and lost connections) may pass; anything else is a bug."""
    if isinstance(exc, ToolkitError):
        return exc.retryable
    return isinstance(exc, OSError)


def is_number(value: object) -> bool:
    """Whether ``value`` is a real number (Python's or NumPy's), not a bool: the one test
    of a numeric argument before its range is checked."""
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_count(value: object, minimum: int = 1) -> bool:
    """Whether ``value`` is an integer (Python's or NumPy's), not a bool, >= ``minimum``:
    the one test of a count before a function words its own refusal."""
    import numbers

    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and value >= minimum)


def check_count(value: object, what: str, minimum: int = 1, maximum: int | None = None) -> None:
    """Refuse a count (samples, runs...) that is not an integer >= ``minimum`` (and at
    most ``maximum`` where one is given), naming it.

    Raises:
        ConfigError: ``"<what> must be an integer >= <minimum>, got <value>"``, or
            ``"<what> must be at most <maximum>, got <value>"``.
    """
    if not is_count(value, minimum):
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {short_repr(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{what} must be at most {maximum}, got {short_repr(value)}")


def in_range(value: object, low: float = 0.0, high: float = math.inf, *,
             low_open: bool = False, high_open: bool = False, finite: bool = True) -> bool:
    """Whether ``value`` is a real number (not a bool, not nan) in ``[low, high]`` (an
    end left out where ``low_open`` or ``high_open``; ``inf``, or an integer too large
    for a float, only where not ``finite``): the test :func:`check_number` words."""
    if not is_number(value):
        return False
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # a 400-digit integer
        number = math.inf if value > 0 else -math.inf  # type: ignore[operator]
    return (not math.isnan(number) and not (finite and math.isinf(number))
            and (number < high if high_open else number <= high)
            and (number > low if low_open else number >= low))


def check_number(value: object, what: str, low: float = 0.0, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = False, finite: bool = True,
                 unit: str = "") -> None:
    """Refuse what is not a real number in ``[low, high]`` (as :func:`in_range`), naming
    it: the one range check of a probability, a fraction, a weight or a duration.

    Raises:
        ConfigError: ``"<what> must be a number [of <unit>] in [<low>, <high>], got
            <value>"`` (or ``">= <low>"`` without an upper end).
    """
    if not in_range(value, low, high, low_open=low_open, high_open=high_open, finite=finite):
        if high == math.inf:
            wanted = f"{'>' if low_open else '>='} {low:g}"
        else:
            wanted = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        unit = f" of {unit}" if unit else ""
        raise ConfigError(f"{what} must be a number{unit} {wanted}, got {short_repr(value)}")


def check_seed(seed: object, what: str = "seed") -> None:
    """Refuse a random seed that is not None or an integer >= 0 (numpy's rule), naming it.

    Raises:
        ConfigError: ``"<what> must be None or an integer >= 0, got <seed>"``.
    """
    if seed is not None and not is_count(seed, 0):
        raise ConfigError(f"{what} must be None or an integer >= 0, got {seed!r}")


def check_seconds(value: object, what: str, *, positive: bool = False,
                  finite: bool = True) -> None:
    """Refuse a duration that is not a number of seconds >= 0 (> 0 where ``positive``;
    ``inf`` only where not ``finite``), naming it.

    Raises:
        ConfigError: ``"<what> must be a number of seconds >= 0, got <value>"``.
    """
    check_number(value, what, low_open=positive, finite=finite, unit="seconds")


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters with ``...`` (a 400-digit number in
    an error message)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name where it has none
    (the reason a library's failure gives, in one line of a ToolkitError)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def choices(values) -> str:
    """Format valid choices for an error message: ``a, b, c``."""
    return ", ".join(str(v) for v in values)
