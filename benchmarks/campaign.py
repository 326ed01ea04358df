"""Campaign overhead and pool speedup on local emulated testbeds.

``overhead_fraction``: starts the local emulated testbed (worker start-up is not
part of a campaign's per-run cost and is excluded), runs a grid campaign of the
digits CNN, and reports the campaign's wall time, the time spent inside split
inference (head preparation, warm-up and measured samples, summed over runs) and
``overhead_fraction`` = 1 - inside / wall. Goal: <= 0.05.

``pool_speedup_4_testbeds``: the same campaign measured twice in this run, on a
pool of 1 and on a pool of 4 fresh local emulated testbeds; the ratio of the two
wall times. Goal: >= 3.0. The campaign is edge-heavy at a low emulated
frequency (digits CNN, splits 6..9: the edge holds at least 97 % of the MACs, at
600 MHz), so that each testbed's edge worker is bound by its cgroup CPU quota of
``emulated_cores x 600 / 1800`` = 1/3 host core, and 4 testbeds fit on 2 cores.
Both pools are started before timing (start-up excluded, reported) and both
build the controller-side model and labels before timing; each testbed still
prepares its own heads inside the timed campaign. On a host whose cores are
busy with other work the speedup falls: the JSON reports the load average.

    python benchmarks/campaign.py [--samples 200] [--runs 1] [--pool-runs 4]
                                  [--pool-samples 200] [--pool-splits 6,7,8,9]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from toolkit.campaign import Campaign, CampaignSpec, CampaignSummary, grid
from toolkit.devices.testbeds.local import LocalTestbed
from toolkit.devices.testbeds.pool import TestbedPool

MODEL = "digits-cnn"
POOL_FREQ = 600


def timed_campaign(testbed, spec: CampaignSpec, out: Path) -> tuple[CampaignSummary, float]:
    """Run a campaign of ``spec`` on ``testbed`` into ``out``: its summary and wall seconds."""
    campaign = Campaign(testbed, spec, out, progress=False)
    t0 = time.perf_counter()
    campaign.run()
    return campaign.summary, time.perf_counter() - t0


def overhead(args: argparse.Namespace, tmp: Path) -> dict:
    """The single-testbed grid campaign: wall time outside split inference."""
    tb = LocalTestbed(log_dir=tmp / "logs").start()
    try:
        sm = tb.split_model(MODEL)
        configs, _ = grid([MODEL], range(sm.n_splits), [600, 1200, 1800],
                          ["none", "int8"], ["none"], n_splits={MODEL: sm.n_splits})
        spec = CampaignSpec(configs, samples=args.samples, runs=args.runs)
        s, wall = timed_campaign(tb, spec, tmp / "bench.nc")
        throttled = tb.throttled
    finally:
        tb.close()
    return {
        "configurations": len(configs),
        "runs": s.planned,
        "samples_per_run": args.samples,
        "wall_s": round(wall, 3),
        "inside_split_inference_s": round(s.inference_s, 3),
        "overhead_s": round(wall - s.inference_s, 3),
        "overhead_fraction": round(1 - s.inference_s / wall, 4),
        "throttled": throttled,
    }


def pooled(n: int, spec: CampaignSpec, tmp: Path) -> dict:
    """The pool campaign on ``n`` fresh local testbeds: start-up, then the timed campaign."""
    pool = TestbedPool.local(n, log_dir=tmp / f"pool-{n}")
    try:
        t0 = time.perf_counter()
        pool.start()
        pool.warm(MODEL)
        start_s = time.perf_counter() - t0
        s, wall = timed_campaign(pool, spec, tmp / f"pool-{n}.nc")
        throttled = pool.throttled
    finally:
        pool.close()
    assert s.done_now == s.planned and not s.failures, str(s)
    return {"testbeds": n, "start_s": round(start_s, 2), "wall_s": round(wall, 3),
            "runs_per_testbed": s.per_testbed or {"local-1": s.done_now},
            "inside_split_inference_s": round(s.inference_s, 3), "throttled": throttled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--pool-runs", type=int, default=4)
    parser.add_argument("--pool-samples", type=int, default=200)
    parser.add_argument("--pool-splits", default="6,7,8,9")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        single = overhead(args, Path(tmp))
        splits = [int(s) for s in args.pool_splits.split(",")]
        configs, _ = grid([MODEL], splits, [POOL_FREQ], ["none"], ["none"],
                          n_splits={MODEL: 10})
        spec = CampaignSpec(configs, runs=args.pool_runs, samples=args.pool_samples)
        one = pooled(1, spec, Path(tmp))
        four = pooled(4, spec, Path(tmp))
    print(json.dumps({
        "benchmark": "campaign",
        **single,
        "pool_speedup_4_testbeds": round(one["wall_s"] / four["wall_s"], 3),
        "pool_campaign": {
            "what": (f"{MODEL}, splits {args.pool_splits} at {POOL_FREQ} MHz, edge none, "
                     f"cloud none, {args.pool_runs} runs x {args.pool_samples} samples = "
                     f"{len(configs) * args.pool_runs} real runs, grid order; the same "
                     "campaign on a pool of 1 and a pool of 4 fresh local emulated "
                     "testbeds, each edge throttled to 1/3 host core; start-up excluded"),
            "runs": len(configs) * args.pool_runs,
            "one_testbed": one,
            "four_testbeds": four,
        },
        "host_cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
