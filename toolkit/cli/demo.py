"""``dynasplit demo``: the embedded default, end to end (see :mod:`toolkit.demo`)."""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_command, output_folder


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = add_command(sub, "demo", run)
    p.add_argument("--out", default="dynasplit-demo", type=output_folder,
                   help="output folder (default ./dynasplit-demo)")
    p.add_argument("--samples", type=int, default=60, help="samples per configuration")


def run(args: argparse.Namespace) -> int:
    """Run the embedded default end to end.

    Split the shipped digits-vgg-fc and measure 5 splits x 3 emulated CPU frequencies x
    int8/tpu-std heads x codecs fp32/q1 on the local emulated (Pi-calibrated) testbed;
    print a table, the Pareto front and DynaSplit's picks, and write a cube and a plot.
    """
    from toolkit.demo import run_demo

    run_demo(args.out, samples=args.samples)
    return 0
