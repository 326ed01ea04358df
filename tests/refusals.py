"""One assertion for each kind of refusal: an API argument of the wrong kind, a file
that a reader refuses."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from toolkit.errors import ToolkitError


def assert_refused(call: Callable[[Any], Any], values: Iterable[Any], message: str) -> None:
    """``call(value)`` raises, for every value, one ToolkitError whose whole text is
    the regular expression ``message`` followed by ``, got <the value's type>``."""
    for value in values:
        with pytest.raises(ToolkitError, match=rf"^{message}, got {type(value).__name__}$"):
            call(value)


def assert_file_refused(read: Callable[[Path], Any], path: Path, content: str | bytes,
                        message: str) -> None:
    """``read(path)`` of a file holding ``content`` (text or bytes) raises one
    ToolkitError that matches the regular expression ``message``."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ToolkitError, match=message):
        read(path)
