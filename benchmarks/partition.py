"""Partition benchmark: does the measured run rank the strategies as the prediction does?

For a few (model, devices) settings -- by default ``digits-cnn`` and
``vgg-stack`` (32x32) on 4 equal Raspberry Pi 4s and on the unequal list
``raspberry-pi-4,raspberry-pi-4,raspberry-pi-3b,jetson-nano`` -- it runs every
strategy on a :class:`~toolkit.partition.PartitionCluster` (real worker
processes, each throttled by its cgroup quota to its own device, emulated
links) and compares, per strategy, the predicted and measured latency, total
energy and per-device energy (the most loaded device's, ``max_device_energy_j``).
Measured energy is the power model of the measured times (``energy_source``
``model:<profile>`` per device); every predicted figure is the cost model's.

Two predictions are compared with the same measured runs:

* ``assumed``: the cost model's default throughput (1 GMAC/s for a Raspberry
  Pi 4; what ``dynasplit partition`` predicts without ``--measure``);
* ``calibrated``: the throughput the workers are throttled to
  (:func:`~toolkit.partition.emulated_macs_per_s`: the host's calibrated fp32
  throughput × the Pi 4's quota);
* ``emulated``: that throughput and the workers' fixed costs per instruction
  and per transfer, measured on this host by a separate micro-benchmark and
  scaled by the same quota (:func:`~toolkit.partition.emulated_cost_model`;
  what ``dynasplit partition --measure`` predicts).

Nothing is fitted to the measured runs.

Ranking agreement, per prediction and figure, over the settings:

* ``winner``: the share of settings whose predicted best strategy (lowest
  figure) is the measured best; this is the definition behind the "67 %" of
  issue #8's closing note (notebook 06: winner by ``max_device_energy_j``);
* ``pairs``: the share of strategy pairs (within a setting) that prediction
  and measurement order the same way (Kendall-style concordance: ``(1 + tau) / 2``
  without ties), pooled over the settings.

Prints one JSON object: ``settings`` (per strategy, predicted and measured
figures), ``agreement``, ``definitions``, the host's calibration, the load
average and the elapsed time. ``--baseline`` runs only what the code before
per-device throttling could run (equal devices, the assumed prediction), so
that the same script gives today's figure from an older checkout.

Run::

    .venv/bin/python benchmarks/partition.py [--samples 3] [--models digits-cnn,vgg-stack]
        [--devices 4 --devices raspberry-pi-4,raspberry-pi-4,raspberry-pi-3b,jetson-nano]
        [--links 100] [--rtt-ms 0] [--baseline]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from toolkit.partition import STRATEGIES, Link, PartitionCluster, concordance, estimate_cost

UNEQUAL = "raspberry-pi-4,raspberry-pi-4,raspberry-pi-3b,jetson-nano"
FIGURES = ("latency_ms", "energy_j", "max_device_energy_j")
INPUT_SIZES = {"vgg-stack": 32, "mobilenet-stack": 32}


def _figures(cost) -> dict[str, float]:
    """Latency, total and most-loaded-device energy of a predicted plan cost."""
    return {"latency_ms": cost.latency_ms, "energy_j": cost.energy_j,
            "max_device_energy_j": max(d.energy_j for d in cost.devices)}


def _measured(run) -> dict[str, float]:
    return {"latency_ms": float(run.latency_ms.mean()), "energy_j": float(run.energy_j.mean()),
            "max_device_energy_j": run.max_device_energy_j}


def agreement(settings: list[dict], prediction: str) -> dict[str, float]:
    """Winner and pairwise agreement of ``prediction`` with the measured runs."""
    out: dict[str, float] = {}
    for fig in FIGURES:
        wins, same, pairs = [], 0, 0
        for s in settings:
            pred = {k: v["predicted"][prediction][fig] for k, v in s["strategies"].items()
                    if prediction in v["predicted"]}
            meas = {k: v["measured"][fig] for k, v in s["strategies"].items() if k in pred}
            if len(pred) < 2:
                continue
            wins.append(min(pred, key=pred.get) == min(meas, key=meas.get))
            a, b = concordance(pred, meas)
            same, pairs = same + a, pairs + b
        out[f"winner_{fig}"] = round(sum(wins) / len(wins), 3) if wins else None
        out[f"pairs_{fig}"] = round(same / pairs, 3) if pairs else None
    return out


def _setting(model: str, devices: str, mbps: float, args: argparse.Namespace) -> dict:
    profiles = () if devices.isdigit() else tuple(devices.split(","))
    n = int(devices) if devices.isdigit() else len(profiles)
    link = Link(mbps, args.rtt_ms)
    options = {"device_profiles": profiles} if profiles else {}
    if profiles and args.baseline:
        return {"model": model, "devices": devices, "link_mbps": mbps,
                "skipped": "baseline: equal devices only"}
    size = INPUT_SIZES.get(model)
    out: dict = {"model": model, "devices": devices, "input_size": size, "link_mbps": mbps,
                 "strategies": {}}
    with PartitionCluster(n, run_timeout=600, **options) as cluster:
        calibrated = None
        if not args.baseline:
            from toolkit.partition import emulated_cost_model, emulated_macs_per_s

            calibrated = emulated_macs_per_s(cluster.profile)
        for strategy in STRATEGIES:
            run = cluster.run(model, strategy, n, samples=args.samples, warmup=args.warmup,
                              input_size=size, link=link)
            entry = {"predicted": {"assumed": _figures(run.predicted)},
                     "measured": _measured(run), "throttled": run.throttled,
                     "energy_source": run.energy_source,
                     "compute_ms": [round(d.compute_ms, 3) for d in run.devices]}
            if calibrated is not None:
                plan = cluster.plan(model, strategy, n, input_size=size)
                assumed = run.predicted.model
                for name, cm in (
                        ("calibrated", dataclasses.replace(assumed, macs_per_s=calibrated)),
                        ("emulated", emulated_cost_model(assumed, cluster.profile))):
                    entry["predicted"][name] = _figures(estimate_cost(plan, cm))
                entry["quota_cores"] = [d.quota_cores for d in run.devices]
            out["strategies"][strategy] = entry
        if calibrated is not None:
            out["calibrated_macs_per_s"] = calibrated
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="digits-cnn,vgg-stack")
    parser.add_argument("--devices", action="append", default=None,
                        help=f"a device count or a profile list (repeatable; default 4 and "
                             f"{UNEQUAL})")
    parser.add_argument("--samples", type=int, default=3, help="measured samples per run")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--links", default="100", help="link rates, Mbit/s, comma-separated")
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--baseline", action="store_true",
                        help="equal devices and the assumed prediction only (older code)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    settings = [_setting(m, d, float(mbps), args) for m in args.models.split(",")
                for d in (args.devices or ["4", UNEQUAL]) for mbps in args.links.split(",")]
    ran = [s for s in settings if "strategies" in s]
    predictions = ["assumed"] if args.baseline else ["assumed", "calibrated", "emulated"]
    result = {
        "agreement": {p: agreement(ran, p) for p in predictions},
        "agreement_equal_devices": {p: agreement([s for s in ran if s["devices"].isdigit()], p)
                                    for p in predictions},
        "definitions": {
            "winner_<figure>": "share of settings whose predicted lowest-<figure> strategy "
                               "is the measured one (the 67 % of issue #8: notebook 06, "
                               "max_device_energy_j)",
            "pairs_<figure>": "share of strategy pairs within a setting ordered the same "
                              "way by prediction and measurement, pooled over settings "
                              "(Kendall-style concordance)",
            "assumed": "cost model at its default 1 GMAC/s per Raspberry Pi 4",
            "calibrated": "cost model at the throughput the workers are throttled to",
            "emulated": "calibrated, with the workers' fixed costs per instruction and "
                        "transfer measured on this host and scaled by the quota",
        },
        "settings": settings,
        "samples": args.samples,
        "rtt_ms": args.rtt_ms,
        "loadavg": os.getloadavg()[0],
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }
    from toolkit.devices.testbeds.calibration import host_calibration

    result["host"] = dataclasses.asdict(host_calibration())
    if not args.baseline:
        from toolkit.partition.execution.emulation import host_overheads

        step_s, transfer_s = host_overheads()
        result["host_overheads_ms"] = {"per_instruction": step_s * 1e3,
                                       "per_transfer_both_ends": transfer_s * 1e3}
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
