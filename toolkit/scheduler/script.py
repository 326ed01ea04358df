#!/usr/bin/env python3
"""DynaSplit online scheduler (exported by ``dynasplit export --script``).

Serves inference requests with a policy: for each request it picks a
configuration with the policy's rule, applies it through the testbed (CPU
frequency, accelerators), runs split inference on the requested input and
writes one JSON line per outcome.

Requests are JSON lines on stdin, or on a TCP socket with ``--listen``
(loopback unless a host is named)::

    {"id": "r1", "deadline_ms": 250, "input": 17}    # evaluation sample 17
    {"id": "r2", "deadline_ms": 250, "input": {"image": "<base64 PNG/JPEG>"}}

Outcome lines carry the request's ``id``, ``status`` (``ok``, ``timeout``,
``failed``, ``cancelled``), the chosen ``config``, ``latency_ms``,
``energy_j`` with its ``energy_source``, and ``met`` (latency within the
deadline); live ones also the ``codec`` the run used and the ``tensor_kb`` it
sent to the cloud, and ``top_k``: the best classes as ``[[class, score], ...]``.
Inline inputs (``{"npy": ...}``, ``{"image": ...}``, or a raw tensor frame) get
the model's preprocessing and a shape check. A candidate's codec is its
configuration's ``codec``, else the policy's, else ``fp32``. Multi-device
partition candidates (``strategy``, ``devices``) are served with ``--dry-run``
only. ``--dry-run`` only decides: latency and energy are then the policy's
predictions (``"measured": false``). Without ``--listen`` the scheduler reads
stdin until EOF, finishes every accepted request and exits 0; SIGINT/SIGTERM
stop it within ``--grace`` seconds. Every answer carries the request's
``line``; a malformed line gets one ``{"error", "line"}`` line; an ``id`` still
in flight on the same connection is refused. Exit status: 0; 1 when stdout went
away or answers could not be delivered; 2 on a start error.

A non-loopback ``--listen`` needs a bearer token (``--token-file`` or
``$DYNASPLIT_SCHEDULER_TOKEN``) or mutual TLS (``--tls-ca``), else ``--insecure``;
``--metrics`` serves Prometheus ``/metrics`` and ``/healthz``; logs are JSON
lines on stderr. The options and this set-up live in ``toolkit.scheduler.service``.
Needs Python and the ``toolkit`` package.

Usage::

    python scheduler.py [--policy POLICY.json] [--dry-run]
                        [--listen 127.0.0.1:PORT] [--testbed local|FILE.toml]
                        [--token-file F] [--tls-cert C --tls-key K [--tls-ca CA]]
                        [--metrics HOST:PORT] [--log-level info]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from toolkit.adapt import DriftTracker
from toolkit.aio import run
from toolkit.errors import ToolkitError
from toolkit.policy import Policy
from toolkit.scheduler.dryrun import DryRun
from toolkit.scheduler.inputs import Preprocessor
from toolkit.scheduler.metrics import json_record, log_event
from toolkit.scheduler.protocol import Request
from toolkit.scheduler.server import Server
from toolkit.scheduler.service import Service, add_options, loop_for
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
        self.prepare: Preprocessor | None = None   # the model's, loaded on first use
        self.immediate = self.decide_only if testbed is None else None
        self.dry = DryRun(policy)

    def decide_only(self, request: Request) -> dict[str, Any]:
        """--dry-run: the decision with the policy's predictions, at once (see DryRun)."""
        if request.path is not None and not request.path.is_file():
            raise ToolkitError(f"input file {request.path} does not exist")
        outcome, self.state = self.dry.outcome(
            request.deadline_ms, self.state, self.drift.grid_factor if self.drift else 1.0)
        return outcome

    async def __call__(self, request: Request) -> dict[str, Any]:
        if self.testbed is None:
            return self.decide_only(request)
        if request.path is not None and not request.path.is_file():
            raise ToolkitError(f"input file {request.path} does not exist")
        factor = self.drift.grid_factor if self.drift else 1.0
        t0 = time.perf_counter()
        decision = self.policy.decide(request.deadline_ms, self.state, factor)
        outcome = {"config": decision.config, "deadline_ms": request.deadline_ms,
                   "predicted_ms": round(decision.predicted_ms, 3),
                   "decide_us": round((time.perf_counter() - t0) * 1e6, 1)}
        if request.path is not None:
            raise ToolkitError("a live request carries its input inline ({\"npy\": BASE64} "
                               "or {\"image\": BASE64}) or names a sample index; not a file")
        inputs = None
        if request.inline is not None:
            if self.prepare is None:
                model = await self.testbed.split_model_for(decision.config["model"])
                self.prepare = Preprocessor.for_model(model.model)
            inputs = self.prepare(request.inline)
        record = await self.testbed.arun(decision.config, samples=1, warmup=0,
                                         offset=request.sample or 0, inputs=inputs,
                                         top_k=request.top_k,
                                         codec=self.policy.codec(decision.index))
        self.state = decision.state
        switch_ms = record.switch_ms
        latency = record.latency_ms + switch_ms
        if self.drift is not None:
            expected = float(self.policy.candidates.transfer_ms[decision.index])
            self.drift.observe(expected, record.transfer_ms)
        return {**outcome, "latency_ms": round(latency, 3),
                "inference_ms": round(record.latency_ms, 3), "switch_ms": round(switch_ms, 3),
                "energy_j": record.energy_j, "energy_source": record.energy_source,
                "codec": record.codec, "tensor_kb": round(record.tensor_kb, 3),
                "measured": True, "met": latency <= request.deadline_ms,
                "top_k": record.result.extra.get("top_k", [[]])[0]}


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
    service = Service.from_args(args)           # refuse bad options before anything starts
    policy = Policy.load(args.policy)
    testbed = None
    if not args.dry_run:
        from toolkit.devices.testbeds.factory import open_testbed

        for config in policy.configs:             # refuse what no testbed runs live
            problem = live_problem(config)
            if problem:
                raise ToolkitError(problem)

        testbed = open_testbed(args.testbed, model=policy.doc.get("model") or "digits-cnn",
                               emulate_switching=True)
        log_event("info", "starting testbed", testbed=str(args.testbed))
        await testbed.astart()
    try:
        if testbed is not None:
            for config in policy.configs:         # refuse a policy this testbed cannot run
                await testbed.validate(config)
        server = Server(Online(policy, testbed, args.adapt), queue_size=args.queue,
                        timeout_s=args.timeout, grace_s=args.grace, **service.server_options())
        await service.serve(server)
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


def main(argv: list[str] | None = None) -> int:
    """Run the scheduler; returns the exit status (2 on a user error)."""
    args = build_parser(Path(__file__).resolve().parent / POLICY_FILE).parse_args(argv)
    try:
        return run(serve(args), loop_for(args))
    except ToolkitError as exc:
        if sys.stderr is not None:                  # 2>&-: nowhere to say it
            print(json_record("error", "start failed", error=str(exc)), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
