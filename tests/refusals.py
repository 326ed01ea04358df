"""One assertion for the API's refusals of arguments of the wrong kind."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from toolkit.errors import ToolkitError


def assert_refused(call: Callable[[Any], Any], values: Iterable[Any], message: str) -> None:
    """``call(value)`` raises, for every value, one ToolkitError whose whole text is
    the regular expression ``message`` followed by ``, got <the value's type>``."""
    for value in values:
        with pytest.raises(ToolkitError, match=rf"^{message}, got {type(value).__name__}$"):
            call(value)
