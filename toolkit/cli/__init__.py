"""The ``dynasplit`` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``; :data:`COMMANDS` lists them in help order. A command's
short help and description are the docstring of the function that handles it
(:func:`~toolkit.cli.common.add_command`, as click does), so they are written once.
Modules import heavy libraries (TensorFlow, xarray) inside their handlers so that
``dynasplit --help`` stays fast.

Every :class:`~toolkit.errors.ToolkitError` becomes one line on stderr and exit
status 2, without a traceback; so does running out of memory (a ``MemoryError``,
or TensorFlow's ``ResourceExhaustedError``), which sizes a machine cannot hold
cause (``--input-size 100000``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from toolkit import __version__
from toolkit.errors import ToolkitError, first_line
from toolkit.quiet import import_tensorflow

__all__ = ["COMMANDS", "main"]

#: sub-command modules of this package, in the order ``--help`` lists them
COMMANDS: tuple[str, ...] = ("demo", "split", "train", "measure", "calibrate", "cube", "trace",
                             "optimize", "export", "simulate", "schedule", "partition")


#: sub-commands that load models: TensorFlow is imported first, quietly
TENSORFLOW_COMMANDS = frozenset({"demo", "split", "train-digits", "measure", "partition",
                                 "calibrate", "schedule"})


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="dynasplit",
        description="Energy-aware split inference: split, measure, optimise, schedule.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"toolkit.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in TENSORFLOW_COMMANDS and not getattr(args, "dry_run", False):
        import_tensorflow()       # a dry run (schedule --dry-run) loads no model
    try:
        status = args.func(args)
    except ToolkitError as exc:
        print(f"dynasplit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dynasplit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not out_of_memory(exc):
            raise
        reason = first_line(exc)
        reason = reason if len(reason) <= 160 else f"{reason[:157]}..."
        print(f"dynasplit: error: out of memory ({reason}); give smaller sizes or counts",
              file=sys.stderr)
        return 2
    return int(status or 0)


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the machine's memory ran out: a ``MemoryError`` (NumPy's
    too), or TensorFlow's ``ResourceExhaustedError`` where TensorFlow is loaded."""
    if isinstance(exc, MemoryError):
        return True
    tf = sys.modules.get("tensorflow")
    errors = getattr(tf, "errors", None)
    return errors is not None and isinstance(exc, errors.ResourceExhaustedError)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
