"""``dynasplit optimize``: search a cube for the Pareto front under a budget."""

from __future__ import annotations

import argparse
from pathlib import Path

from toolkit.cli.common import add_command, non_negative_int, output_file

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``optimize`` sub-command."""
    p = add_command(subparsers, "optimize", _run)
    p.add_argument("cube", metavar="CUBE.nc", help="measurement cube (NetCDF)")
    p.add_argument("--budget", default="0.2",
                   help="fraction of the valid space in (0, 1] (e.g. 0.2) or a count of "
                        "distinct evaluations (e.g. 150); default 0.2")
    p.add_argument("--algorithm", default="nsga2", help="nsga2 (default) or nsga3")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--initial", default="guided",
                   help="initial design: guided (default: corners, then each inner split "
                        "with its other genes chosen by the surrogate) or latin (corners, "
                        "then each inner split with the other genes drawn evenly; the "
                        "design before issue 17)")
    p.add_argument("--objectives", default=None,
                   help="comma-separated subset of latency_ms,energy_j,accuracy "
                        "(default: all the cube has)")
    p.add_argument("--model", default=None, help="model to optimise when the cube has several")
    p.add_argument("--latency-stat", default="mean",
                   help="latency over repeats: mean (default), median or a quantile like 0.99")
    p.add_argument("-o", "--output", required=True, type=output_file, metavar="FRONT.json",
                   help="where to write the front")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run(args: argparse.Namespace) -> int:
    """Find the Pareto front of a cube with NSGA-II/III under an evaluation budget.

    Search the configurations a cube measured for the Pareto front of latency, energy
    and accuracy, spending at most BUDGET distinct evaluations, and write FRONT.json.
    """
    from toolkit.cube import open_cube
    from toolkit.optimize import (
        ConfigSpace,
        CubeEvaluator,
        Optimizer,
        parse_budget,
        save_front,
    )

    cube = open_cube(args.cube)
    evaluator = CubeEvaluator(cube, model=args.model, latency_stat=args.latency_stat)
    space = ConfigSpace.from_cube(cube, model=evaluator.model)
    optimizer = Optimizer(space, evaluator, objectives=args.objectives,
                          algorithm=args.algorithm, seed=args.seed, initial=args.initial,
                          progress=not args.quiet)
    result = optimizer.run(parse_budget(args.budget))
    result.cube = args.cube  # export finds the cube through FRONT.json
    path = save_front(result, Path(args.output))
    source = result.energy_source or "unknown source"
    print(f"{result.algorithm}: {len(result.front)} configurations on the front from "
          f"{result.evaluations} evaluations (budget {result.budget} of {result.space_size}); "
          f"hypervolume {result.hypervolume:.4f}; energy from {source} -> {path}")
    return 0
