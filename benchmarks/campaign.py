"""Campaign overhead on the local testbed: wall time outside split inference, as a fraction.

Starts the local emulated testbed (worker start-up is not part of a campaign's
per-run cost and is excluded), runs a grid campaign of the digits CNN, and
reports the campaign's wall time, the time spent inside split inference
(head preparation, warm-up and measured samples, summed over runs) and
``overhead_fraction`` = 1 - inside / wall. Goal: <= 0.05.

    python benchmarks/campaign.py [--samples 200] [--runs 1]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from toolkit.campaign import Campaign, CampaignSpec, grid
from toolkit.devices.local import LocalTestbed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tb = LocalTestbed(log_dir=Path(tmp) / "logs").start()
        try:
            sm = tb.split_model("digits-cnn")
            configs, _ = grid(["digits-cnn"], range(sm.n_splits), [600, 1200, 1800],
                              ["none", "int8"], ["none"], n_splits={"digits-cnn": sm.n_splits})
            spec = CampaignSpec(configs, samples=args.samples, runs=args.runs)
            campaign = Campaign(tb, spec, Path(tmp) / "bench.nc", progress=False)
            t0 = time.perf_counter()
            campaign.run()
            wall = time.perf_counter() - t0
            throttled = tb.throttled
        finally:
            tb.close()
    s = campaign.summary
    print(json.dumps({
        "benchmark": "campaign",
        "configurations": len(configs),
        "runs": s.planned,
        "samples_per_run": args.samples,
        "wall_s": round(wall, 3),
        "inside_split_inference_s": round(s.inference_s, 3),
        "overhead_s": round(wall - s.inference_s, 3),
        "overhead_fraction": round(1 - s.inference_s / wall, 4),
        "throttled": throttled,
    }))


if __name__ == "__main__":
    main()
