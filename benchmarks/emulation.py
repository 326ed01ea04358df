"""Emulation benchmark: the local testbed's emulated Pi against DynaSplit's real one.

Measures VGG16 at DynaSplit's input size (224x224) on the local emulated
testbed -- real edge and cloud worker processes, real sockets, the int8 head
really run on the host's LiteRT, the edge's time padded to the profile's
timing model (``--edge-timing pad``, the default) or throttled by the
calibrated cgroup quota (``--edge-timing quota``) -- for early, middle and
late splits at several CPU frequencies with the int8 head (DynaSplit's TPU
"off": a full-int8 TFLite head on the Pi's CPU) and, for the emulated Edge
TPU, ``tpu-std``/``tpu-max``. The tensor goes as int8 (DynaSplit's tensor
sizes). It compares, per configuration, the emulated edge latency and transfer
time (median over the run's samples: the host is shared, and its stalls are
not the Pi's) with DynaSplit's measured ``avg latency edge (ms)`` and ``avg
latency transfer (ms)`` (median over their runs of that configuration; VGG16's
DynaSplit ``layer`` is the toolkit's ``split``).

Prints one JSON object: ``median_rel_error_edge_ms`` (goal <= 0.25, int8),
``worst_rel_error_edge_ms``, ``median_rel_error_transfer_ms`` (goal <= 0.25),
``median_rel_error_edge_ms_tpu``, ``frequency_dependence`` (emulated vs their
600/1800 MHz edge-time ratio), the per-configuration table, the host's
calibration and the load average.

``cloud`` holds the emulated cloud's validation (no runs needed): per cloud
accelerator (``none``: DynaSplit's server CPU, ``gpu``) the error of the cloud
profile's ``[tail_timing]`` fit against DynaSplit's measured ``avg latency
cloud (ms)`` (medians per layer, and every run), with their per-request cost
(``dynasplit_request_ms``) and with the toolkit's (``request_ms``, what the
emulated cloud charges), and the modelled cloud energy (profile power × the
fitted time) against their ``avg energy cloud (J)``.

Run::

    .venv/bin/python benchmarks/emulation.py [--samples 4] [--splits 3,10,18]
        [--freqs 600,1200,1800] [--tpu-freqs 600,1800] [--edge-timing pad|quota]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd
from tqdm.auto import tqdm

from toolkit.devices.testbeds.local import LocalTestbed
from toolkit.devices.testbeds.splinter_fit import fit_splinter_cloud, vgg16_tail_costs
from toolkit.errors import ToolkitError
from toolkit.hardware.profile import load_profile
from toolkit.paths import SPLINTER_DIR

DYNASPLIT_ACCEL = {"int8": "off", "tpu-std": "std", "tpu-max": "max"}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def their_figures(pool: pd.DataFrame, split: int, freq: int, accel: str) -> dict:
    rows = pool[(pool["layer"] == split) & (pool["cpu-freq"] == freq)
                & (pool["edge-accelerator"] == DYNASPLIT_ACCEL[accel])]
    if rows.empty:
        return {}
    return {"their_edge_ms": float(rows["avg latency edge (ms)"].median()),
            "their_transfer_ms": float(rows["avg latency transfer (ms)"].median()),
            "their_tensor_kb": float(rows["tensor size (KB)"].median()),
            "their_runs": len(rows)}


def cloud_validation(pool: pd.DataFrame, pool_path) -> dict:
    """The cloud profile's tail timing and energy against DynaSplit's server, per accelerator."""
    profile = load_profile("cloud-gpu-server")
    timing = profile.tail_timing
    costs = vgg16_tail_costs()
    out = {"request_ms": timing.request_ms, "source": timing.source}
    for accel, server in (("none", False), ("gpu", True)):
        fit = fit_splinter_cloud(pool_path, accel, costs)
        runs = pool[(pool["server-accelerator"] == server) & pool["layer"].isin(list(costs))]
        med = runs.groupby("layer")[["avg latency cloud (ms)", "avg energy cloud (J)"]].median()
        theirs = med["avg latency cloud (ms)"].to_numpy(float)
        intercept = timing.dynasplit_request_ms[accel]
        model = [timing.time_ms(costs[int(lay)], accel, intercept) for lay in med.index]
        ours = [timing.time_ms(costs[int(lay)], accel) for lay in med.index]
        watts = profile.power.accelerators.get(accel)
        power = watts.busy_w if watts is not None and watts.busy_w else profile.power.busy_w[0]
        rel = [abs(m / t - 1) for m, t in zip(model, theirs, strict=True)]
        energy = [abs(power * m / 1e3 / e - 1)
                  for m, e in zip(model, med["avg energy cloud (J)"], strict=True)]
        out[accel] = {
            "fit": {k: round(v, 4) for k, v in asdict(fit)["terms"].items()},
            "dynasplit_request_ms": round(fit.request_ms, 2),
            "layers": fit.layers, "runs": fit.runs,
            "median_rel_error_cloud_ms": round(statistics.median(rel), 4),
            "worst_rel_error_cloud_ms": round(max(rel), 4),
            "median_rel_error_cloud_ms_runs": round(fit.median_rel_error_runs, 4),
            "their_cloud_ms_range": [round(float(theirs.min()), 1), round(float(theirs.max()), 1)],
            "emulated_cloud_ms_range": [round(min(ours), 2), round(max(ours), 2)],
            "their_power_w": round(fit.power_w, 1), "profile_power_w": power,
            "median_rel_error_cloud_energy_j": round(statistics.median(energy), 4),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--splits", default="3,10,18", help="early, middle, late")
    parser.add_argument("--freqs", default="600,1200,1800")
    parser.add_argument("--tpu-freqs", default="600,1800")
    parser.add_argument("--tpu", default="tpu-std,tpu-max")
    parser.add_argument("--edge-timing", default="pad", choices=["pad", "quota"])
    args = parser.parse_args(argv)
    if args.samples < 1:
        print("emulation.py: --samples must be at least 1", file=sys.stderr)
        return 2
    pool_path = SPLINTER_DIR / "simulation_pool_vgg16.csv"
    if not pool_path.is_file():
        print(f"emulation.py: DynaSplit's pool {pool_path} is missing; set DYNASPLIT_SPLINTER",
              file=sys.stderr)
        return 2
    pool = pd.read_csv(pool_path)
    splits, freqs, tpu_freqs = _ints(args.splits), _ints(args.freqs), _ints(args.tpu_freqs)
    tpus = [t for t in args.tpu.split(",") if t]
    plan = [(s, f, "int8") for s in splits for f in freqs]
    plan += [(s, f, a) for a in tpus for s in splits for f in tpu_freqs]
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    rows = []
    tb = LocalTestbed(model="vgg16", input_size=224, edge_timing=args.edge_timing)
    try:
        tb.start()
        cal = tb.calibration().host
        for split, freq, accel in tqdm(plan, desc="vgg16 configurations", unit="config"):
            config = {"model": "vgg16", "split": split, "cpu_freq": freq,
                      "edge_accel": accel, "cloud_accel": "none"}
            r = tb.time_run(config, samples=args.samples, codec="int8", warmup=1)
            row = {"split": split, "layer": f"{split}", "cpu_freq": freq, "edge_accel": accel,
                   "edge_ms": statistics.median(r.timings["edge_ms"]),
                   "edge_ms_mean": float(r.timings["edge_ms"].mean()),
                   "pad_ms": float(r.extra["pad_ms"].mean()) if len(r.extra["pad_ms"]) else 0.0,
                   "transfer_ms": statistics.median(r.timings["transfer_ms"]),
                   "tensor_kb": float(r.payload_bytes.mean()) / 1024,
                    "target_ms": tb.run_blocking(
                        tb.edge_target_ms(tb.run_blocking(tb.validate(config))))}
            row["cloud_ms"] = statistics.median(r.timings["cloud_ms"])
            row["cloud_host_ms"] = statistics.median(r.extra["cloud_host_ms"])
            row.update(their_figures(pool, split, freq, accel))
            if "their_edge_ms" in row:
                row["rel_error_edge_ms"] = abs(row["edge_ms"] / row["their_edge_ms"] - 1)
                row["rel_error_transfer_ms"] = abs(
                    row["transfer_ms"] / row["their_transfer_ms"] - 1)
            rows.append(row)
    finally:
        tb.close()
    df = pd.DataFrame(rows)
    cpu = df[(df.edge_accel == "int8") & df.rel_error_edge_ms.notna()]
    tpu = df[(df.edge_accel != "int8") & df.rel_error_edge_ms.notna()]
    worst = cpu.loc[cpu.rel_error_edge_ms.idxmax()]
    freq_dep = {}
    lo, hi = min(freqs), max(freqs)
    for split in splits:
        a = df[(df.split == split) & (df.edge_accel == "int8")].set_index("cpu_freq")
        if lo in a.index and hi in a.index:
            freq_dep[str(split)] = {
                "emulated_ratio": round(a.edge_ms[lo] / a.edge_ms[hi], 3),
                "their_ratio": round(a.their_edge_ms[lo] / a.their_edge_ms[hi], 3)}
    out = {
        "benchmark": "emulation",
        "model": "vgg16", "input_size": 224, "edge_timing": args.edge_timing,
        "samples_per_config": args.samples,
        "median_rel_error_edge_ms": round(float(cpu.rel_error_edge_ms.median()), 4),
        "worst_rel_error_edge_ms": round(float(worst.rel_error_edge_ms), 4),
        "worst_config": {"split": int(worst.split), "cpu_freq": int(worst.cpu_freq),
                         "edge_accel": worst.edge_accel},
        "median_rel_error_transfer_ms": round(float(df.rel_error_transfer_ms.median()), 4),
        "worst_rel_error_transfer_ms": round(float(df.rel_error_transfer_ms.max()), 4),
        "median_rel_error_edge_ms_tpu": (round(float(tpu.rel_error_edge_ms.median()), 4)
                                         if len(tpu) else None),
        "frequency_dependence": freq_dep,
        "cloud_timing": tb.cloud_timing,
        "cloud": cloud_validation(pool, pool_path),
        "goal": {"median_rel_error_edge_ms": 0.25, "median_rel_error_transfer_ms": 0.25},
        "configs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
                    for r in rows],
        "host_calibration": asdict(cal),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "wall_s": round(time.perf_counter() - t_start, 1),
        "reference": str(pool_path),
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except ToolkitError as exc:
        print(f"emulation.py: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
