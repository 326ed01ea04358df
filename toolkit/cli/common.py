"""Small helpers shared by the sub-commands: list parsing, tables, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["int_list", "print_json", "str_list"]

T = TypeVar("T")


def _parse_list(text: str, convert: Callable[[str], T], what: str) -> list[T]:
    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"empty {what} list")
    try:
        return [convert(p) for p in items]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of {what}"
        ) from None


def int_list(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` (argparse type)."""
    return _parse_list(text, int, "integers")


def str_list(text: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (argparse type)."""
    return _parse_list(text, str, "names")


def print_json(obj: Any) -> None:
    """Print one JSON document to stdout."""
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
