"""``dynasplit calibrate``: measure this host against the edge profile (cached per machine)."""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_command, print_json
from toolkit.config import TPU_ACCELS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command."""
    p = add_command(sub, "calibrate", run)
    p.add_argument("--profile", default="raspberry-pi-4", help="edge profile name or path")
    p.add_argument("--rounds", type=int, default=9, help="timing rounds (medians are kept)")
    p.add_argument("--cached", action="store_true",
                   help="show the cached calibration instead of measuring again")
    p.add_argument("--fit-splinter", metavar="POOL_CSV", nargs="?", const="",
                   help="also refit the profile's [timing] and [link] tables to DynaSplit's pool "
                   "(default: simulation_pool_vgg16.csv of the SPLINTER data) and print them")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Measure this host against the edge device profile.

    Time the edge's operations (int8 LiteRT and fp32 Keras, one thread, medians of
    several rounds) on this host, cache the result per machine and print how it compares
    with the edge profile's timing model (fitted to DynaSplit's Raspberry Pi
    measurements).
    """
    from toolkit.devices.testbeds.calibration import host_calibration, report
    from toolkit.errors import ToolkitError
    from toolkit.hardware.profile import load_profile

    if args.rounds < 3:
        raise ToolkitError(f"--rounds must be at least 3, got {args.rounds}")
    profile = load_profile(args.profile)
    if not args.json:
        print("measuring this host (int8 LiteRT and fp32 Keras, one thread, "
              f"{args.rounds} rounds each)..." if not args.cached else "cached calibration:",
              flush=True)
    host = host_calibration(refresh=not args.cached, rounds=args.rounds)
    rep = report(profile, host)
    out = rep.as_dict()
    if args.fit_splinter is not None:
        out["splinter_fit"] = _fit(args.fit_splinter)
    if args.json:
        print_json(out)
        return 0
    print(f"host {host.host} ({host.cpu}), load {host.loadavg}, {host.measured_at}")
    print(f"  int8 LiteRT {host.int8_gmacs:.2f} GMAC/s (spread {host.int8_spread:.0%}), "
          f"fp32 Keras {host.fp32_gmacs:.2f} GMAC/s (spread {host.fp32_spread:.0%}), "
          f"fp32/int8 time ratio {host.fp32_per_int8:.2f}")
    print(f"  cached in {out['cache']}")
    print(f"{profile.name} (timing model: {profile.timing.source}):")
    print(f"  fp32/int8 time ratio {rep.fp32_per_int8:.2f} (from the "
          f"{out['device_fp32_per_int8_source']}; fp32 heads take the int8 time x this)")
    print("  MHz   device int8 GMAC/s   slowdown int8   slowdown fp32   quota cores")
    for row in out["per_freq"]:
        print(f"  {row['cpu_freq']:>4}   {row['device_int8_gmacs']:>18.2f}   "
              f"{row['slowdown_int8']:>13.1f}   {row['slowdown_fp32']:>13.1f}   "
              f"{row['quota_cores_int8']:>11.3f}")
    print("edge timing 'pad' (default): " + (
        "works, the host is faster than the device at every frequency" if rep.pad_ok else
        "the host is SLOWER than the device at some frequency: emulated edge times there "
        "are the host's, longer than the device's"))
    for accel, fit in out.get("splinter_fit", {}).items():
        if accel == "link":
            print(f"refit link: rtt_ms = {fit['rtt_ms']:.3g}, mbps = {fit['mbps']:.4g}; "
                  f"median error {fit['median_rel_error']:.1%} ({fit['runs']} runs)")
            continue
        terms = ", ".join(f"{k} = [{a:.3g}, {b:.3g}]" for k, (a, b) in fit["terms"].items())
        print(f"refit timing.{accel}: {terms}; median error {fit['median_rel_error']:.1%} "
              f"({fit['kept']}/{fit['cells']} cells)")
    return 0


def _fit(pool: str) -> dict:
    from toolkit.devices.testbeds.splinter_fit import fit_splinter, fit_splinter_link, vgg16_costs
    from toolkit.paths import SPLINTER_DIR

    path = pool or SPLINTER_DIR / "simulation_pool_vgg16.csv"
    costs = vgg16_costs()
    out = {}
    for accel in ("int8", *TPU_ACCELS):
        fit = fit_splinter(path, accel, costs)
        out[accel] = {"terms": {k: [round(a, 4), round(b, 4)]
                                for k, (a, b) in fit.terms.terms.items()},
                      "cells": fit.cells, "kept": fit.kept,
                      "median_rel_error": round(fit.median_rel_error, 4),
                      "max_rel_error": round(fit.max_rel_error, 4)}
    out["link"] = {k: round(v, 4) for k, v in fit_splinter_link(path).items()}
    return out
