"""``dynasplit schedule``: the live online phase (the exported script's code).

::

    dynasplit schedule POLICY.json [--testbed local|FILE.toml] [--listen HOST:PORT]
              [--dry-run] [--queue N] [--timeout S] [--grace S] [--adapt]
              [--token-file F] [--tls-cert C [--tls-key K] [--tls-ca CA]] [--insecure]
              [--metrics HOST:PORT] [--log-level debug|info|warning|error]
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``schedule`` sub-command."""
    from toolkit.scheduler.service import add_options

    p = subparsers.add_parser(
        "schedule", help="serve inference requests with a policy (JSON lines, stdin or TCP)",
        description="Read requests {\"id\", \"deadline_ms\", \"input\"} as JSON lines on stdin "
                    "(or TCP with --listen), choose a configuration per request with the "
                    "policy, apply it on the testbed, run split inference and write one JSON "
                    "outcome line per request.",
    )
    p.add_argument("policy", metavar="POLICY.json")
    add_options(p)
    p.set_defaults(func=_schedule)


def _schedule(args: argparse.Namespace) -> int:
    from toolkit.aio import run
    from toolkit.scheduler.script import serve
    from toolkit.scheduler.service import loop_for

    return run(serve(args), loop_for(args))
