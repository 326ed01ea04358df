"""The embedded default, end to end: what ``dynasplit demo`` (and ``make demo``) runs.

1. Load the shipped digits CNN and list its valid cut points.
2. Measure the accuracy of every (split, edge accelerator, codec) on the
   held-out digits.
3. Start the local emulated testbed and run a campaign over every valid split ×
   three emulated CPU frequencies × edge accelerators ``none``/``int8``.
4. Print a table (latency breakdown, energy, accuracy), the Pareto-optimal
   configurations, and write ``demo.nc`` (the cube), ``demo.png`` (energy vs
   latency) and ``accuracy.csv`` into the output folder.

The campaign is resumable: interrupted, the same command continues it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import xarray as xr

__all__ = ["DemoResult", "run_demo"]

MODEL = "digits-cnn"


@dataclass
class DemoResult:
    """What the demo produced."""

    cube: xr.Dataset
    cube_path: Path
    plot_path: Path
    accuracy: pd.DataFrame
    table: pd.DataFrame
    front: list[dict]


def _pick_freqs(freqs: tuple[int, ...]) -> list[int]:
    """Lowest, middle and highest frequency of a profile."""
    return sorted({freqs[0], freqs[len(freqs) // 2], freqs[-1]})


def run_demo(out: str | os.PathLike = "dynasplit-demo", samples: int = 200,
             print_fn=print) -> DemoResult:
    """Run the demo; see the module docstring. Returns what it wrote."""
    from toolkit.campaign import Campaign, CampaignSpec, grid
    from toolkit.cube import pareto_configs, to_dataframe
    from toolkit.devices.local import LocalTestbed
    from toolkit.models import SplitModel, accuracy_table, eval_data, load_model
    from toolkit.plots import energy_latency

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(MODEL)
    sm = SplitModel(model, name=MODEL)
    print_fn(f"== {MODEL}: {sm.n_splits} splits (0 = all in the cloud, "
             f"{sm.last_split} = all on the edge)")
    for c in sm.cut_points:
        print_fn(f"   split {c.split}: after {c.layer:<12} sends {c.shape!s:<12} "
                 f"{c.bytes:>6} B   head {c.head_macs:>7,} MACs   tail {c.tail_macs:>7,} MACs")

    print_fn("== accuracy on the 360 held-out digits per split, edge accelerator and codec")
    acc = accuracy_table(sm, eval_data(model))
    acc.to_csv(out / "accuracy.csv", index=False)
    pivot = acc.pivot_table(index="split", columns=["edge_accel", "codec"], values="accuracy")
    print_fn(pivot.to_string(float_format=lambda v: f"{v:.3f}"))

    testbed = LocalTestbed(model=MODEL, log_dir=out / "logs")
    freqs = _pick_freqs(testbed.edge_profile.frequencies_mhz)
    configs, _ = grid([MODEL], range(sm.n_splits), freqs, ["none", "int8"], ["none"],
                      n_splits={MODEL: sm.n_splits})
    print_fn(f"== campaign: {len(configs)} configurations x {samples} samples on the local "
             f"emulated testbed (frequencies {freqs} MHz)")
    cube_path = out / "demo.nc"
    try:
        campaign = Campaign(testbed, CampaignSpec(configs, samples=samples), cube_path)
        cube = campaign.run()
        throttled = testbed.throttled
    finally:
        testbed.close()
    print_fn(str(campaign.summary))
    if not throttled:
        print_fn("note: cgroups could not be written here, so the edge ran unthrottled: "
                 "all frequencies ran at host speed (recorded as throttled=0 in the cube)")

    df = to_dataframe(cube)
    keys = ["split", "cpu_freq", "edge_accel"]
    table = df.groupby(keys, as_index=False)[
        ["latency_ms", "edge_ms", "transfer_ms", "cloud_ms", "energy_j", "accuracy"]].mean()
    table.insert(1, "layer", table["split"].map(lambda s: sm.cut_points[int(s)].layer))
    source = cube.attrs.get("energy_source", "?")
    print_fn(f"== per configuration (means over {samples} samples; energy modelled: {source})")
    print_fn(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    front = pareto_configs(cube)
    print_fn(f"== Pareto-optimal configurations (latency, energy, accuracy): {len(front)}")
    for config in front:
        row = table[(table.split == config["split"]) & (table.cpu_freq == config["cpu_freq"])
                    & (table.edge_accel == config["edge_accel"])].iloc[0]
        print_fn(f"   split {config['split']} ({row.layer}) {config['cpu_freq']} MHz "
                 f"{config['edge_accel']}: {row.latency_ms:.3f} ms, {row.energy_j:.4g} J, "
                 f"accuracy {row.accuracy:.3f}")

    fig = energy_latency(cube)
    plot_path = out / "demo.png"
    fig.savefig(plot_path, dpi=120)
    print_fn(f"== wrote {cube_path}, {plot_path} and {out / 'accuracy.csv'}")
    return DemoResult(cube, cube_path, plot_path, acc, table, front)
