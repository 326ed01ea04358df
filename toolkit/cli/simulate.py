"""``dynasplit simulate``: replay a QoS trace against the online strategies."""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_command, figure_file, non_negative_int, print_json

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` sub-command."""
    p = add_command(subparsers, "simulate", _simulate)
    p.add_argument("cube", metavar="CUBE.nc", help="the cube the policy was exported from")
    p.add_argument("--policy", required=True, metavar="POLICY.json")
    p.add_argument("--trace", required=True, metavar="TRACE.csv",
                   help="thresholds in DynaSplit's Index,Network,Latency format")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the run draws (default 0)")
    p.add_argument("--json", action="store_true", help="print the JSON result")
    p.add_argument("--drift", default=None, metavar="START:END:FACTOR",
                   help="multiply transfer times by FACTOR for requests START..END-1")
    p.add_argument("--adapt", action="store_true",
                   help="also score policy-adaptive (EWMA correction of transfer times)")
    p.add_argument("--switching", action="store_true",
                   help="charge hardware-change time and energy between requests")
    p.add_argument("--plot", default=None, type=figure_file, metavar="FILE.png",
                   help="save a figure of energy and misses per strategy")


def _simulate(args: argparse.Namespace) -> int:
    """Replay a QoS trace: energy and thresholds met per strategy.

    For each request of the trace, let every strategy (cloud, edge, static-energy,
    static-latency (both from the front), their whole-cube versions static-energy-space,
    static-latency-space, dynasplit, policy, dynasplit-exhaustive) choose a
    configuration, draw one of its measured runs from the cube (seeded) and score
    energy, latency and whether the threshold was met; clairvoyant, which sees the drawn
    runs before choosing, is the lower bound.
    """
    from toolkit.cube import open_cube
    from toolkit.policy import Policy
    from toolkit.simulate import Drift, simulate
    from toolkit.trace import read_trace

    policy = Policy.load(args.policy)
    cube = open_cube(args.cube)
    trace = read_trace(args.trace, model=policy.doc.get("model") or None)
    drift = Drift.parse(args.drift) if args.drift else None
    sim = simulate(cube, policy, trace, seed=args.seed, drift=drift, adapt=args.adapt,
                   switching=args.switching, progress=not args.json)
    if args.plot:
        from toolkit.fileio import save_figure
        from toolkit.plots import simulation_summary

        save_figure(simulation_summary(sim), args.plot, dpi=120)
    if args.json:
        print_json(sim.as_dict())
        return 0
    table = sim.table()
    print(f"{len(trace)} requests, seed {args.seed}, energy source {sim.energy_source}")
    print(f"{'strategy':<22}{'energy J':>10}{'latency ms':>12}{'met':>8}{'saving':>9}")
    for name, row in table.iterrows():
        print(f"{name:<22}{row['energy_j_mean']:>10.3f}{row['latency_ms_mean']:>12.1f}"
              f"{row['qos_met']:>8.1%}{row['energy_saving_vs_cloud']:>9.1%}")
    return 0
