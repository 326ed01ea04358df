"""Generate QoS traces.

QoS traces: one latency threshold per request, in DynaSplit's Index,Network,Latency CSV
format.
"""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_command, non_negative_int, output_file

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``trace`` sub-command and its actions."""
    parser = add_command(subparsers, "trace", doc=__doc__)
    actions = parser.add_subparsers(dest="trace_action", metavar="ACTION", required=True)
    gen = add_command(actions, "generate", _generate)
    gen.add_argument("--model", required=True, metavar="NAME", help="network name, e.g. vgg16")
    gen.add_argument("--min", dest="min_ms", required=True, type=float, metavar="MS",
                     help="smallest threshold, ms")
    gen.add_argument("--max", dest="max_ms", required=True, type=float, metavar="MS",
                     help="largest threshold, ms")
    gen.add_argument("-n", dest="n", required=True, type=int, metavar="N",
                     help="number of requests")
    gen.add_argument("--seed", required=True, type=non_negative_int, metavar="S",
                     help="random seed")
    gen.add_argument("--shape", type=float, default=1.0, metavar="K",
                     help="Weibull shape (default 1)")
    gen.add_argument("-o", "--output", required=True, type=output_file, metavar="TRACE.csv")


def _generate(args: argparse.Namespace) -> int:
    """Weibull thresholds rescaled to [min, max].

    Draw N Weibull thresholds (shape K, default 1 as in DynaSplit), rescale them
    linearly to [MIN, MAX] ms and write Index,Network,Latency. The output is replaced
    atomically.
    """
    from toolkit.trace import generate_trace, write_trace

    trace = generate_trace(args.model, args.min_ms, args.max_ms, args.n, args.seed,
                           shape=args.shape)
    write_trace(trace, args.output)
    print(f"wrote {args.output}: {len(trace)} thresholds for {args.model}, "
          f"{trace['Latency'].min():.6g}..{trace['Latency'].max():.6g} ms")
    return 0
