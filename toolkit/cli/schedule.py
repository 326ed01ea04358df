"""``dynasplit schedule``: the live online phase (the exported script's code)."""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_command

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``schedule`` sub-command."""
    from toolkit.scheduler.service import add_options

    p = add_command(subparsers, "schedule", _schedule)
    p.add_argument("policy", metavar="POLICY.json")
    add_options(p)


def _schedule(args: argparse.Namespace) -> int:
    """Serve inference requests with a policy (JSON lines, stdin or TCP).

    Read requests {"id", "deadline_ms", "input"} as JSON lines on stdin (or TCP with
    --listen), choose a configuration per request with the policy, apply it on the
    testbed, run split inference and write one JSON outcome line per request.
    """
    from toolkit.aio import run
    from toolkit.scheduler.script import serve
    from toolkit.scheduler.service import loop_for

    return run(serve(args), loop_for(args))
