"""Small helpers shared by the sub-commands: adding one, list and number parsing, JSON
output."""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from toolkit.errors import ToolkitError
from toolkit.fileio import check_writable, figure_format

__all__ = [
    "add_command",
    "figure_file",
    "fraction",
    "int_list",
    "non_negative_float",
    "non_negative_int",
    "output_file",
    "output_folder",
    "positive_float",
    "positive_int",
    "print_json",
    "str_list",
]

T = TypeVar("T")


def add_command(subparsers: argparse._SubParsersAction, name: str,
                run: Callable[[argparse.Namespace], int | None] | None = None, *,
                doc: str | None = None) -> argparse.ArgumentParser:
    """Add the sub-command (or action) ``name``, described by ``doc``, by default the
    docstring of ``run``, the function that handles it, as click describes a command
    by its function's docstring: the first line is the short help the parent's
    ``--help`` lists (without its full stop), the paragraphs after it the description
    ``NAME --help`` shows. Without ``run`` the command is a group of actions.
    """
    text = inspect.cleandoc(doc if doc is not None else getattr(run, "__doc__", None) or "")
    summary, _, details = text.partition("\n")
    parser = subparsers.add_parser(name, help=summary.rstrip("."),
                                   description=" ".join(details.split()) or summary)
    if run is not None:
        parser.set_defaults(func=run)
    return parser


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


def _number(convert: Callable[[str], T], ok: Callable[[T], bool],
            expected: str) -> Callable[[str], T]:
    """An argparse type: ``convert(text)`` where ``ok`` holds, else "expected <expected>"."""

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (ok(value) and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


#: argparse types of numbers in a range (the message names the range)
positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")  # seeds
positive_float = _number(float, lambda v: v > 0, "a positive number")
non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")
fraction = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def _checked_output(text: str, check: Callable[[str], Any]) -> str:
    try:
        check(text)
    except ToolkitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def output_file(text: str) -> str:
    """An output file that can be written (argparse type; checked before any work)."""
    return _checked_output(text, check_writable)


def output_folder(text: str) -> str:
    """An output folder whose files can be written (argparse type)."""
    return _checked_output(text, lambda t: check_writable(t, folder=True))


def figure_file(text: str) -> str:
    """An image file matplotlib can write, by its suffix (argparse type)."""
    return _checked_output(text, lambda t: (figure_format(t), check_writable(t)))


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
