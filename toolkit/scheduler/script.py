#!/usr/bin/env python3
"""DynaSplit online scheduler (exported by ``dynasplit export --script``).

Serves inference requests with a policy: for each request it picks a
configuration with the policy's rule, applies it through the testbed (CPU
frequency, accelerators), runs split inference on the requested input and
writes one JSON line per outcome.

Requests are JSON lines on stdin, or on a TCP socket with ``--listen``
(loopback unless a host is named)::

    {"id": "r1", "deadline_ms": 250, "input": 17}    # evaluation sample 17

Outcome lines carry the request's ``id``, ``status`` (``ok``, ``timeout``,
``failed``, ``cancelled``), the chosen ``config``, ``latency_ms``,
``energy_j`` with its ``energy_source``, and ``met`` (latency within the
deadline); live ones also the ``codec`` the run used and the ``tensor_kb`` it
sent to the cloud. A candidate's codec is its configuration's ``codec``, else
the policy's ``codec``, else ``fp32`` (``Policy.codec``); it reaches the
testbed as ``testbed.arun(config, codec=...)``. Candidates of multi-device
partitioning (with ``strategy`` or ``devices``) are served with ``--dry-run``
only: the testbeds run single edge/cloud splits, so live serving refuses such a
policy at start.
``--dry-run`` only decides: latency and energy are then the policy's
predictions (``"measured": false``). Without ``--listen`` the scheduler reads
stdin until EOF, finishes every accepted request and exits 0;
SIGINT/SIGTERM stop it within ``--grace`` seconds. Every answer carries the
request's ``line``; a malformed line gets one ``{"error", "line"}`` line, and
an ``id`` still in flight on the same connection is refused. Exit status: 0,
1 when stdout went away or answers could not be delivered, 2 on a start error.
Needs Python and the ``toolkit`` package.

Usage::

    python scheduler.py [--policy POLICY.json] [--dry-run]
                        [--listen 127.0.0.1:PORT] [--testbed local|FILE.toml]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from toolkit.adapt import DriftTracker
from toolkit.errors import ToolkitError
from toolkit.policy import Policy
from toolkit.scheduler.protocol import Request
from toolkit.scheduler.server import Server, parse_listen
from toolkit.switching import HardwareState

#: the policy exported with this script (resolved beside it)
POLICY_FILE = "policy.json"


class Online:
    """The online phase for one request at a time: decide, apply, run, report."""

    def __init__(self, policy: Policy, testbed: Any = None, adapt: bool = False) -> None:
        self.policy = policy
        self.testbed = testbed            # None: --dry-run, decide only
        self.state: HardwareState | None = None   # unknown until the first apply
        self.drift = DriftTracker() if adapt else None

    async def __call__(self, request: Request) -> dict[str, Any]:
        if request.path is not None and not request.path.is_file():
            raise ToolkitError(f"input file {request.path} does not exist")
        factor = self.drift.grid_factor if self.drift else 1.0
        decision = self.policy.decide(request.deadline_ms, self.state, factor)
        outcome = {"config": decision.config, "deadline_ms": request.deadline_ms,
                   "predicted_ms": round(decision.predicted_ms, 3)}
        if self.testbed is None:
            self.state = decision.state
            return {**outcome, "latency_ms": round(decision.predicted_ms, 3),
                    "energy_j": decision.energy_j, "switch_j": decision.switch_j,
                    "energy_source": self.policy.energy_source, "measured": False,
                    "met": decision.meets}
        if request.path is not None:
            raise ToolkitError("this testbed runs evaluation samples only; send the input "
                               "as a sample index")
        record = await self.testbed.arun(decision.config, samples=1, warmup=0,
                                         offset=request.sample,
                                         codec=self.policy.codec(decision.index))
        self.state = decision.state
        switch_ms = sum(k.duration_ms for k in record.knob_changes if k.changed)
        latency = record.latency_ms + switch_ms
        if self.drift is not None:
            expected = float(self.policy.candidates.transfer_ms[decision.index])
            self.drift.observe(expected, record.transfer_ms)
        return {**outcome, "latency_ms": round(latency, 3),
                "inference_ms": round(record.latency_ms, 3), "switch_ms": round(switch_ms, 3),
                "energy_j": record.energy_j, "energy_source": record.energy_source,
                "codec": record.codec, "tensor_kb": round(record.tensor_kb, 3),
                "measured": True, "met": latency <= request.deadline_ms}


def live_problem(config: dict[str, Any]) -> str | None:
    """Why a testbed cannot run a candidate live, or None when it can.

    The testbeds (local, SSH) run one edge/cloud split with a codec; a
    multi-device partition configuration (``strategy``, ``devices``) needs the
    partition cluster, which measures studies but does not serve requests.
    """
    extra = {k: config[k] for k in ("strategy", "devices") if k in config}
    if not extra:
        return None
    what = ", ".join(f"{k}={v!r}" for k, v in extra.items())
    return (f"candidate {config} is a multi-device partition configuration ({what}); the "
            "testbeds run single edge/cloud splits, so this policy can be served with "
            "--dry-run only")


async def serve(args: argparse.Namespace) -> int:
    """Load the policy, start the testbed (unless --dry-run) and serve until done."""
    policy = Policy.load(args.policy)
    testbed = None
    if not args.dry_run:
        from toolkit.devices.factory import open_testbed

        for config in policy.configs:             # refuse what no testbed runs live
            problem = live_problem(config)
            if problem:
                raise ToolkitError(problem)

        testbed = open_testbed(args.testbed, model=policy.doc.get("model") or "digits-cnn")
        print(f"starting testbed {args.testbed}...", file=sys.stderr, flush=True)
        await testbed.astart()
    try:
        if testbed is not None:
            for config in policy.configs:         # refuse a policy this testbed cannot run
                await testbed.validate(config)
        server = Server(Online(policy, testbed, args.adapt), queue_size=args.queue,
                        timeout_s=args.timeout, grace_s=args.grace)
        if args.listen is None:
            await server.run_stdin()
        else:
            host, port = parse_listen(args.listen)
            await server.run_tcp(host, port, on_listen=lambda h, p: print(
                f"listening on {h}:{p}", file=sys.stderr, flush=True))
    finally:
        if testbed is not None:
            await testbed.aclose()
    return server.exit_status


def build_parser(default_policy: Path | None = None) -> argparse.ArgumentParser:
    """The command-line options (shared with ``dynasplit schedule``)."""
    parser = argparse.ArgumentParser(
        description="Serve inference requests with a DynaSplit policy (JSON lines).")
    parser.add_argument("--policy", type=Path, default=default_policy,
                        help="POLICY.json (default: the one exported beside this script)")
    add_options(parser)
    return parser


def add_options(parser: argparse.ArgumentParser) -> None:
    """Options other than the policy file."""
    parser.add_argument("--dry-run", action="store_true",
                        help="decide only: no testbed, predicted latency and energy")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="serve TCP (loopback unless a host is named) instead of stdin")
    parser.add_argument("--testbed", default="local", metavar="local|FILE.toml",
                        help="where to run (default: the local emulated testbed)")
    parser.add_argument("--queue", type=int, default=1024, metavar="N",
                        help="bounded request queue size (default 1024)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="per-request time limit in seconds (default 60)")
    parser.add_argument("--grace", type=float, default=30.0, metavar="S",
                        help="on SIGINT/SIGTERM, seconds to finish queued requests (default 30)")
    parser.add_argument("--adapt", action="store_true",
                        help="correct predicted latency online from observed transfer times")


def main(argv: list[str] | None = None) -> int:
    """Run the scheduler; returns the exit status (2 on a user error)."""
    args = build_parser(Path(__file__).resolve().parent / POLICY_FILE).parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except ToolkitError as exc:
        print(f"scheduler: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
