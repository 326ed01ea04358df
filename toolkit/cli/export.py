"""``dynasplit export``: turn a front into a policy (and a scheduler script)."""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_command, output_file
from toolkit.errors import ToolkitError

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    from toolkit.policy import DEFAULT_RULE
    from toolkit.rules import RULES

    p = add_command(subparsers, "export", _export)
    p.add_argument("front", metavar="FRONT.json", help="front written by dynasplit optimize")
    p.add_argument("--cube", default=None, metavar="CUBE.nc",
                   help="the cube the front was made from (gives the latency distributions; "
                        "default: the cube FRONT.json records)")
    p.add_argument("-o", "--output", required=True, type=output_file, metavar="POLICY.json")
    p.add_argument("--rule", default=DEFAULT_RULE["name"], choices=RULES,
                   help=f"selection rule (default {DEFAULT_RULE['name']})")
    p.add_argument("--target", type=float, default=DEFAULT_RULE["target"], metavar="TAU",
                   help="tail rule: probability of meeting the threshold (default 0.99)")
    p.add_argument("--confidence", type=float, default=DEFAULT_RULE["confidence"],
                   metavar="C", help="one-sided confidence of the Wilson bound on measured "
                   f"runs, 0.5 = point estimate (default {DEFAULT_RULE['confidence']})")
    p.add_argument("--accuracy-floor", type=float, default=None, metavar="X",
                   help="never choose a configuration with mean accuracy below X")
    p.add_argument("--reconfiguration", action="store_true",
                   help="decide reconfiguration-aware (count hardware-change time and energy)")
    p.add_argument("--edge-profile", default=None, metavar="P",
                   help="edge profile for switch costs (default: the cube's, else "
                        "raspberry-pi-4)")
    p.add_argument("--cloud-profile", default=None, metavar="P",
                   help="cloud profile for switch costs (default: the cube's, else "
                        "cloud-gpu-server)")
    p.add_argument("--script", default=None, type=output_file, metavar="scheduler.py",
                   help="also write the standalone scheduler script here")


def _export(args: argparse.Namespace) -> int:
    """Make a policy (and a standalone scheduler script) from a front.

    Make a policy from FRONT.json: each front configuration with its latency
    distribution from the cube, energy, accuracy, the selection rule and the
    hardware-change costs of the device profiles. With --script, also write a standalone
    async scheduler that serves requests with it. The cube gives each candidate its
    latency distribution (FRONT.json records objective means only); without --cube, the
    cube FRONT.json records (dynasplit optimize writes it) is used while that file still
    exists.
    """
    from pathlib import Path

    from toolkit.cube import open_cube
    from toolkit.optimize import front_cube
    from toolkit.policy import Policy, make_policy, read_front

    front = read_front(args.front)
    if args.cube is None:
        try:
            args.cube = front_cube(args.front)
        except ToolkitError as exc:
            raise ToolkitError(f"--cube CUBE.nc is needed: {exc}") from None
    cube = open_cube(args.cube)
    doc = make_policy(
        front, cube, rule=args.rule, target=args.target, confidence=args.confidence,
        accuracy_floor=args.accuracy_floor, reconfiguration=args.reconfiguration,
        edge_profile=args.edge_profile, cloud_profile=args.cloud_profile,
        source={"front": Path(args.front).name, "cube": Path(args.cube).name},
    )
    policy = Policy.from_dict(doc)
    policy.save(args.output)
    rule = policy.rule
    detail = f" target {rule['target']}" if rule["name"] == "tail" else ""
    print(f"wrote {args.output}: {len(policy)} candidates, rule {rule['name']}{detail}, "
          f"energy source {policy.energy_source}")
    if args.script:
        from toolkit.scheduler import export_script

        export_script(args.script, args.output)
        print(f"wrote {args.script}: python {args.script} [--dry-run] [--listen HOST:PORT]")
    return 0
