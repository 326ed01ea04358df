"""``dynasplit partition``: compare partitioning strategies over N devices."""

from __future__ import annotations

import argparse

from toolkit.cli.common import (
    add_command,
    fraction,
    non_negative_float,
    non_negative_int,
    output_file,
    positive_float,
    positive_int,
    print_json,
)
from toolkit.config import CODECS, IDLE_ACCOUNTINGS

__all__ = ["register"]

STRATEGY_CHOICES = ("all", "layer-wise", "spatial", "output-channel", "input-channel", "hybrid")
HEAD_CHOICES = ("layer-wise", "spatial", "output-channel", "input-channel")
#: ``--hybrid-objective`` choices (the keys of ``toolkit.partition.HYBRID_OBJECTIVES``)
OBJECTIVE_CHOICES = ("total", "max")


def _devices(text: str) -> int | tuple[str, ...]:
    """``--devices``: a count, or a comma-separated list of device profiles."""
    if text.strip().lstrip("+-").isdigit():  # a count; -1 is a bad count, not a profile
        from toolkit.errors import ToolkitError
        from toolkit.partition.model.plan import check_devices

        try:
            return check_devices(positive_int(text))
        except ToolkitError as exc:  # the one bound on a plan's devices
            raise argparse.ArgumentTypeError(str(exc)) from None
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"expected a number of devices or profile names separated by commas, got {text!r}")
    return names


def register(subparsers) -> None:
    """Add the ``partition`` sub-command."""
    p = add_command(subparsers, "partition", run)
    p.add_argument("model", metavar="MODEL",
                   help="vgg-stack, mobilenet-stack, a model-zoo name (digits-cnn...) or a "
                   ".keras path")
    p.add_argument("--devices", type=_devices, required=True, metavar="N|P1,P2,...",
                   help="number of devices (each a --profile), or one device profile per "
                        "device, e.g. raspberry-pi-4,raspberry-pi-4,raspberry-pi-3b,jetson-nano "
                        "(--measure throttles each worker to its own device)")
    p.add_argument("--strategy", choices=STRATEGY_CHOICES, default="all",
                   help="strategy to run (default: all, which includes the hybrid plan "
                   "of least energy)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--link-mbps", type=positive_float, default=None, metavar="R",
                   help="link rate between devices in Mbit/s (default 100)")
    p.add_argument("--rtt-ms", type=non_negative_float, default=0.0, metavar="MS",
                   help="round-trip time between devices (default 0)")
    p.add_argument("--gmacs", type=positive_float, default=None, metavar="G",
                   help="throughput of each device in GMAC/s (default 1; with --measure, "
                        "the throughput the workers are throttled to, with their fixed "
                        "costs per instruction and transfer measured on this host)")
    p.add_argument("--equal-shares", action="store_true",
                   help="with a list of profiles in --devices: give every device an equal "
                        "share (default: shares in proportion to each device's speed)")
    p.add_argument("--input-size", type=positive_int, default=None, metavar="S",
                   help="square input size of the built-in stacks and zoo models (stacks: 32)")
    p.add_argument("--fuse", default="all", metavar="all|none|K",
                   help="spatial: exchange halos once (all), before every windowed layer "
                   "(none) or every K windowed layers")
    p.add_argument("--profile", default="raspberry-pi-4",
                   help="device profile of the power model (default raspberry-pi-4)")
    p.add_argument("--cpu-freq", type=positive_int, default=None, metavar="MHZ",
                   help="CPU frequency of every device (default: the profile's highest)")
    p.add_argument("--idle-accounting", choices=IDLE_ACCOUNTINGS, default=IDLE_ACCOUNTINGS[0],
                   help="idle energy of a device, predicted and measured: request (default: "
                        "powered from the request's start to its end, waiting power while "
                        "not computing) or busy (idle energy 0: only compute and the bytes "
                        "it sends and receives count)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random test input")
    p.add_argument("--requests", type=positive_int, default=None, metavar="K",
                   help="a stream of K requests: report throughput, p50/p99 latency and "
                        "energy per request (layer-wise pipelines them, the others serve "
                        "them in turn)")
    p.add_argument("--interval-ms", type=non_negative_float, default=None, metavar="T",
                   help="time between two requests of the stream (with --requests; "
                        "default 0: all at once)")
    hybrid = p.add_argument_group("hybrid edge/cloud partitioning")
    hybrid.add_argument("--hybrid-objective", choices=OBJECTIVE_CHOICES, default="total",
                        help="the hybrid plan's cut, head strategy and codec minimise the "
                        "predicted total energy (edge devices + cloud) or the most loaded "
                        "edge device's energy (max); default total")
    hybrid.add_argument("--min-accuracy", type=fraction, default=None, metavar="A",
                        help="accuracy floor of the hybrid plan in [0, 1] (top-1 on the "
                        "digits evaluation split: true labels for the digits models, else "
                        "agreement with the fp32 model); exit 2 if no plan reaches it")
    hybrid.add_argument("--split", type=positive_int, default=None, metavar="K",
                        help="pin the cut point of the hybrid plan (default: chosen)")
    hybrid.add_argument("--hybrid-strategy", choices=HEAD_CHOICES, default=None,
                        help="pin the strategy of the head over the devices (default: chosen)")
    hybrid.add_argument("--codec", choices=CODECS, default=None,
                        help="pin the codec of the activation sent to the cloud (default: "
                        "chosen)")
    hybrid.add_argument("--cloud-mbps", type=positive_float, default=100.0, metavar="R",
                        help="link rate from device 0 to the cloud (default 100)")
    hybrid.add_argument("--cloud-rtt-ms", type=non_negative_float, default=2.0, metavar="MS",
                        help="round-trip time to the cloud (default 2)")
    hybrid.add_argument("--cloud-gmacs", type=positive_float, default=50.0, metavar="G",
                        help="throughput of the cloud in GMAC/s (default 50)")
    real = p.add_argument_group("real execution")
    real.add_argument("--measure", action="store_true",
                      help="also run every plan on N local device worker processes")
    real.add_argument("--samples", type=positive_int, default=20, metavar="S",
                      help="measured samples per strategy (default 20; with --requests, "
                           "the stream's K requests are the samples)")
    real.add_argument("--inputs", choices=("digits", "random"), default="digits",
                      help="inputs of the measured runs (default: the digits images)")
    real.add_argument("--no-throttle", action="store_true",
                      help="do not emulate the CPU frequency with cgroup quotas")
    real.add_argument("-o", "--output", default=None, type=output_file, metavar="CUBE.nc",
                      help="write the measured runs to a cube (with --measure; resumable)")


def _measure(args: argparse.Namespace, report: dict, cluster_profile: str,
             profiles: tuple[str, ...] = ()) -> dict:
    """Run every strategy of ``report`` for real; returns report key -> run dict."""
    from tqdm.auto import tqdm

    from toolkit.partition import (
        HYBRID_PREFIX,
        Link,
        PartitionCluster,
        PartitionStudy,
        StudySpec,
    )

    keys = list(report["strategies"])
    hybrid = report["strategies"].get("hybrid")
    names = {k: (f"{HYBRID_PREFIX}{hybrid['head_strategy']}" if k == "hybrid" else k)
             for k in keys}
    codec = hybrid["codec"] if hybrid else "fp32"
    link = Link(report["cost_model"]["link_mbps"], args.rtt_ms)
    cloud_link = Link(args.cloud_mbps, args.cloud_rtt_ms)
    with PartitionCluster(args.devices, profile=cluster_profile, device_profiles=profiles,
                          throttle=not args.no_throttle) as cluster:
        if args.output:
            spec = StudySpec(
                str(args.model), [names[k] for k in keys], [args.devices],
                [args.cpu_freq] if args.cpu_freq else None, args.input_size, args.fuse,
                hybrid["split"] if hybrid else None, [codec], link, cloud_link,
                args.samples, 1, 2, args.inputs, args.seed, idle=args.idle_accounting)
            study = PartitionStudy(cluster, spec, args.output, progress=not args.json)
            study.run()
            done = {r["config"]["strategy"]: r["run"] for r in study.measured()}
            return {k: done[names[k]] for k in keys if names[k] in done}
        stream = {} if args.requests is None else {"interval_ms": args.interval_ms or 0.0}
        return {k: cluster.run(
            str(args.model), names[k], args.devices,
            samples=args.samples if args.requests is None else args.requests, **stream,
            inputs=args.inputs, input_size=args.input_size, fuse=args.fuse,
            split=hybrid["split"] if k == "hybrid" else None, codec=codec,
            cpu_freq=args.cpu_freq, link=link, cloud_link=cloud_link, seed=args.seed,
            macs_per_s=report["cost_model"]["macs_per_s"],
            cloud_macs_per_s=args.cloud_gmacs * 1e9, idle=args.idle_accounting,
            equal_shares=args.equal_shares).as_dict()
            for k in tqdm(keys, desc="measuring", unit="strategy", disable=args.json or None)}


def run(args: argparse.Namespace) -> int:
    """Compare multi-device partitioning strategies (per-device cost and error).

    Partition MODEL over N devices with each strategy; report the error against the
    unpartitioned model and per-device MACs, memory, traffic, and predicted latency and
    energy (power model of the raspberry-pi-4 profile). With --measure, also run each
    plan on N local device worker processes and report predicted vs measured; -o CUBE.nc
    writes those runs to a cube (resumable: rerunning the command continues). --requests
    K --interval-ms T adds each strategy's stream of K requests, one every T ms
    (layer-wise pipelines them, the others serve them in turn): throughput, p50/p99
    latency and energy per request, predicted and, with --measure, measured. The hybrid
    plan's cut, head strategy and codec are those of least predicted energy
    (--hybrid-objective) above --min-accuracy, unless pinned.
    """
    from toolkit.errors import ToolkitError
    from toolkit.partition import (
        DEFAULT_LINK_MBPS,
        DEFAULT_MACS_PER_S,
        CloudModel,
        CostModel,
        add_measurements,
        check_fuse,
        check_stream,
        evaluate,
        format_table,
        load_partition_model,
    )

    if args.output and not args.measure:
        raise ToolkitError("-o/--output writes measured runs: add --measure")
    if args.interval_ms is not None and args.requests is None:
        raise ToolkitError("--interval-ms sets the time between a stream's requests: "
                           "add --requests K")
    stream = None if args.requests is None else check_stream(args.requests,
                                                             args.interval_ms or 0.0)
    if stream is not None and args.output:
        raise ToolkitError("-o/--output writes one-request runs to a cube; a stream "
                           "(--requests) is reported, not stored: drop one of them")
    profiles: tuple[str, ...] = ()
    if isinstance(args.devices, tuple):
        profiles, args.devices = args.devices, len(args.devices)
        if args.output:
            raise ToolkitError(
                "-o/--output records studies of equal devices; a list of profiles in "
                "--devices is measured without a cube for now: leave out -o")
    cost_model = CostModel(
        macs_per_s=args.gmacs * 1e9 if args.gmacs else DEFAULT_MACS_PER_S,
        link_mbps=args.link_mbps or DEFAULT_LINK_MBPS,
        rtt_ms=args.rtt_ms,
        profile=args.profile,
        freq_mhz=args.cpu_freq,
        device_profiles=profiles,
        idle=args.idle_accounting,
    )
    cost_model.power_model()  # a bad profile or frequency fails before the model loads
    if args.measure and not args.gmacs:  # predict the devices the workers emulate
        from toolkit.partition import emulated_cost_model

        cost_model = emulated_cost_model(cost_model, args.profile, args.cpu_freq,
                                         throttled=not args.no_throttle)
    fuse = check_fuse(args.fuse)
    model = load_partition_model(args.model, args.input_size)
    strategies = "all" if args.strategy == "all" else [args.strategy]
    hybrid = None
    if args.strategy in ("hybrid", "all"):
        hybrid = {"split": args.split, "strategy": args.hybrid_strategy, "codec": args.codec,
                  "objective": args.hybrid_objective, "min_accuracy": args.min_accuracy,
                  "cloud": CloudModel(args.cloud_gmacs * 1e9, args.cloud_mbps,
                                      args.cloud_rtt_ms)}
    speeds = cost_model.speeds(args.devices) if profiles and not args.equal_shares else None
    report = evaluate(model, args.devices, strategies, cost_model=cost_model, fuse=fuse,
                      seed=args.seed, model_name=str(args.model), progress=not args.json,
                      hybrid=hybrid, speeds=speeds, stream=stream)
    if args.measure:
        add_measurements(report, _measure(args, report, args.profile, profiles))
    if args.json:
        print_json(report)
    else:
        print(format_table(report))
    return 0
