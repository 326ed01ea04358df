"""The one range check of a number (errors.check_number) that every option builds on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolkit.errors import ConfigError, check_number, check_seconds, first_line


@pytest.mark.parametrize(("value", "kwargs"), [
    (0.0, {}), (0, {"high": 1.0}), (1.0, {"high": 1.0}), (np.float32(0.5), {"high": 1.0}),
    (0.5, {"low": 0.5, "high": 1.0, "high_open": True}), (math.inf, {"finite": False}),
    (10**400, {"finite": False}),
])
def test_numbers_in_range_pass(value, kwargs):
    check_number(value, "x", **kwargs)


@pytest.mark.parametrize(("value", "kwargs", "message"), [
    (-1, {}, "x must be a number >= 0, got -1"),
    (0, {"low_open": True}, "x must be a number > 0, got 0"),
    (1.0, {"high": 1.0, "high_open": True}, r"x must be a number in \[0, 1\), got 1.0"),
    (0.0, {"high": 1.0, "low_open": True, "high_open": True}, r"in \(0, 1\), got 0.0"),
    (math.nan, {}, "x must be a number >= 0, got nan"),
    (math.inf, {}, "got inf"),
    (True, {"high": 1.0}, r"x must be a number in \[0, 1\], got True"),  # not a bool
    ("0.5", {"high": 1.0}, "got '0.5'"),
    (None, {}, "got None"),
    (10**400, {}, r"got 1000000000000000000000000000000000000\.\.\."),  # cut, and not finite
    (-2, {"unit": "ms"}, "x must be a number of ms >= 0, got -2"),
])
def test_everything_else_is_named_with_the_range(value, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        check_number(value, "x", **kwargs)


def test_a_duration_is_a_number_of_seconds():
    check_seconds(math.inf, "period", finite=False)
    with pytest.raises(ConfigError, match=r"^timeout must be a number of seconds > 0, got 0$"):
        check_seconds(0, "timeout", positive=True)


@pytest.mark.parametrize(("exc", "line"), [
    (ValueError("  bad size\nmore detail"), "bad size"),
    (ValueError(""), "ValueError"),       # an empty message: was an IndexError at call sites
    (OSError("\n"), "OSError"),
])
def test_first_line_of_a_library_failure(exc, line):
    assert first_line(exc) == line
