"""``dynasplit partition``: compare partitioning strategies over N devices.

Prints, per strategy, the error against the unpartitioned model and per-device
MACs, memory, traffic and *predicted* latency and energy (``--json``: the
design page's format).
"""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]

STRATEGY_CHOICES = ("all", "layer-wise", "spatial", "output-channel", "input-channel")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def register(subparsers) -> None:
    """Add the ``partition`` sub-command."""
    p = subparsers.add_parser(
        "partition",
        help="compare multi-device partitioning strategies (per-device cost and error)",
        description="Partition MODEL over N devices with each strategy; report the error "
        "against the unpartitioned model and per-device MACs, memory, traffic, and "
        "predicted latency and energy (power model of the raspberry-pi-4 profile).",
    )
    p.add_argument("model", metavar="MODEL",
                   help="vgg-stack, mobilenet-stack, a model-zoo name (digits-cnn...) or a "
                   ".keras path")
    p.add_argument("--devices", type=_positive_int, required=True, metavar="N",
                   help="number of devices")
    p.add_argument("--strategy", choices=STRATEGY_CHOICES, default="all",
                   help="strategy to run (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--link-mbps", type=_positive_float, default=None, metavar="R",
                   help="link rate between devices in Mbit/s (default 100)")
    p.add_argument("--gmacs", type=_positive_float, default=None, metavar="G",
                   help="throughput of each device in GMAC/s (default 1)")
    p.add_argument("--input-size", type=_positive_int, default=None, metavar="S",
                   help="square input size of the built-in stacks and zoo models (stacks: 32)")
    p.add_argument("--fuse", default="all", metavar="all|none|K",
                   help="spatial: exchange halos once (all), before every windowed layer "
                   "(none) or every K windowed layers")
    p.add_argument("--profile", default="raspberry-pi-4",
                   help="device profile of the power model (default raspberry-pi-4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random test input")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``dynasplit partition``."""
    from toolkit.partition import (
        DEFAULT_LINK_MBPS,
        DEFAULT_MACS_PER_S,
        CostModel,
        check_fuse,
        evaluate,
        format_table,
        load_partition_model,
    )

    cost_model = CostModel(
        macs_per_s=args.gmacs * 1e9 if args.gmacs else DEFAULT_MACS_PER_S,
        link_mbps=args.link_mbps or DEFAULT_LINK_MBPS,
        profile=args.profile,
    )
    cost_model.power_model()  # a bad profile fails before the model loads
    fuse = check_fuse(args.fuse)
    model = load_partition_model(args.model, args.input_size)
    strategies = "all" if args.strategy == "all" else [args.strategy]
    report = evaluate(model, args.devices, strategies, cost_model=cost_model, fuse=fuse,
                      seed=args.seed, model_name=str(args.model), progress=not args.json)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
    return 0
