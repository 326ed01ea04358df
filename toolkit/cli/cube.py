"""Inspect cubes, import DynaSplit data.

Inspect measurement cubes and import DynaSplit (SPLINTER) data.
"""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_command, output_file, print_json

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``cube`` sub-command and its actions."""
    parser = add_command(subparsers, "cube", doc=__doc__)
    actions = parser.add_subparsers(dest="cube_action", metavar="ACTION", required=True)

    imp = add_command(actions, "import-splinter", _import_splinter)
    imp.add_argument("pool", metavar="POOL.csv", help="DynaSplit simulation-pool CSV")
    imp.add_argument("-o", "--output", required=True, type=output_file, metavar="CUBE.nc",
                     help="cube to write")
    imp.add_argument("--model", required=True, metavar="NAME",
                     help="model the pool was measured with, e.g. vgg16 or vit-b16 (whose "
                     "DynaSplit layer index 0-19 is mapped to the toolkit's split)")
    imp.add_argument("--accuracy", type=float, default=None, metavar="VALUE",
                     help="for a pool without an accuracy column (DynaSplit's ViT pool): "
                     "store this constant accuracy; without it the cube has no accuracy "
                     "and optimisation works on latency x energy")

    table = add_command(actions, "splinter-table", _splinter_table)
    table.add_argument("experiment", metavar="EXPERIMENT.csv",
                       help="DynaSplit experiment-progress CSV")
    table.add_argument("--model", default=None, metavar="NAME",
                       help="model of the experiment (default: from the file name)")
    table.add_argument("--json", action="store_true", help="print JSON instead of text")

    info = add_command(actions, "info", _info)
    info.add_argument("cube", metavar="CUBE.nc")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")


def _import_splinter(args: argparse.Namespace) -> int:
    """Convert a DynaSplit simulation-pool CSV into a cube.

    Convert a DynaSplit simulation_pool_*.csv (one row per run) into a cube. The output
    is replaced atomically, and only once the input has been read without error.
    """
    from toolkit.cube import configurations, cube_info, save_cube
    from toolkit.splinter import read_pool

    cube = read_pool(args.pool, model=args.model, accuracy=args.accuracy)
    save_cube(cube, args.output)
    info = cube_info(cube)
    print(f"wrote {args.output}: {info['runs']} runs of {len(configurations(cube))} "
          f"configurations ({args.model}), energy source {cube.attrs['energy_source']}, "
          f"accuracy {cube.attrs['accuracy_mode']}")
    return 0


def _splinter_table(args: argparse.Namespace) -> int:
    """DynaSplit's testbed table from an experiment_progress CSV.

    Per-strategy results of a DynaSplit experiment_progress_<model>.csv: requests, mean
    energy per image, share of latency thresholds met, mean accuracy and energy saving
    against the cloud-only strategy.
    """
    from toolkit.splinter import experiment_model, experiment_summary

    model = args.model or experiment_model(args.experiment)
    summary = experiment_summary(args.experiment, model)
    if args.json:
        print_json(summary)
        return 0
    print(f"{summary['model']}: DynaSplit testbed ({summary['energy_source']})")
    print(f"{'strategy':<30} {'requests':>8} {'energy J':>10} {'QoS met':>8} "
          f"{'accuracy':>9} {'vs cloud':>12}")
    for name, row in summary["strategies"].items():
        acc = "-" if row["accuracy_mean"] is None else f"{row['accuracy_mean']:.3f}"
        saving = row["energy_saving_vs_cloud"]
        versus = "-" if saving is None else (
            f"{saving:.1%} less" if saving >= 0 else f"{-saving:.1%} more")
        print(f"{name:<30} {row['requests']:>8} {row['energy_j_mean']:>10.2f} "
              f"{row['qos_met']:>8.0%} {acc:>9} {versus:>12}")
    return 0


def _info(args: argparse.Namespace) -> int:
    """Dims, coverage, energy source and Pareto front size of a cube.

    Print a cube's dims, coverage (measured / possible configurations), energy source
    and Pareto front size.
    """
    from toolkit.cube import cube_info, format_cube_info, open_cube

    info = cube_info(open_cube(args.cube))
    print_json(info) if args.json else print(format_cube_info(info))
    return 0
