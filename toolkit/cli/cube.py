"""``dynasplit cube``: inspect measurement cubes and import DynaSplit data.

::

    dynasplit cube import-splinter POOL.csv -o CUBE.nc --model NAME
    dynasplit cube info CUBE.nc [--json]
"""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``cube`` sub-command and its actions."""
    parser = subparsers.add_parser(
        "cube", help="inspect cubes, import DynaSplit data",
        description="Inspect measurement cubes and import DynaSplit (SPLINTER) data.",
    )
    actions = parser.add_subparsers(dest="cube_action", metavar="ACTION", required=True)

    imp = actions.add_parser(
        "import-splinter", help="convert a DynaSplit simulation-pool CSV into a cube",
        description="Convert a DynaSplit simulation_pool_*.csv (one row per run) into a "
                    "cube. The output is replaced atomically, and only once the input "
                    "has been read without error.",
    )
    imp.add_argument("pool", metavar="POOL.csv", help="DynaSplit simulation-pool CSV")
    imp.add_argument("-o", "--output", required=True, metavar="CUBE.nc", help="cube to write")
    imp.add_argument("--model", required=True, metavar="NAME",
                     help="model the pool was measured with, e.g. vgg16")
    imp.set_defaults(func=_import_splinter)

    info = actions.add_parser(
        "info", help="dims, coverage, energy source and Pareto front size of a cube",
        description="Print a cube's dims, coverage (measured / possible configurations), "
                    "energy source and Pareto front size.",
    )
    info.add_argument("cube", metavar="CUBE.nc")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_info)


def _import_splinter(args: argparse.Namespace) -> int:
    from toolkit.cube import configurations, cube_info, save_cube
    from toolkit.splinter import read_pool

    cube = read_pool(args.pool, model=args.model)
    save_cube(cube, args.output)
    info = cube_info(cube)
    print(f"wrote {args.output}: {info['runs']} runs of {len(configurations(cube))} "
          f"configurations ({args.model}), energy source {cube.attrs['energy_source']}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from toolkit.cube import cube_info, format_cube_info, open_cube

    info = cube_info(open_cube(args.cube))
    print(json.dumps(info, indent=2) if args.json else format_cube_info(info))
    return 0
