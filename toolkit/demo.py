"""The embedded default, end to end: what ``dynasplit demo`` (and ``make demo``) runs.

1. Load the shipped ``digits-vgg-fc`` (four VGG blocks on the digits upsampled
   to 64x64, then two 2048-wide dense layers of fixed random features
   regenerated from a seed: 13.8 M weights, 91 % of them dense, like VGG16's;
   real labels; :mod:`toolkit.models.digits_fc`) and list its valid cut points.
2. Measure the accuracy of each demo split × edge accelerator × codec on the 360
   held-out digits (in-process; the lossy ``q1`` codec, a binarised tensor 32x
   smaller than fp32, really loses accuracy).
3. Start the local emulated testbed -- real worker processes and sockets; the
   edge's time padded to a Raspberry Pi 4's (the profile's timing model, fitted
   to DynaSplit's measurements), the Edge TPU's timing modelled, the link
   DynaSplit's, the cloud's tail time modelled on DynaSplit's server -- and run
   a campaign over the demo splits (cloud-only, after the second and the fourth
   VGG block, after the first dense layer, edge-only) × the emulated CPU
   frequencies :data:`DEMO_FREQS` × codecs ``fp32``/``q1`` × edge accelerators
   ``int8`` (the head on the Pi's CPU, DynaSplit's TPU "off") and ``tpu-std``
   (the emulated Coral Edge TPU: the int8 head runs on the host, its time is
   the model's).
4. Print a table (latency breakdown, energy, accuracy), the Pareto-optimal
   configurations (latency, energy, accuracy on configuration means), which
   split DynaSplit's rule picks at the 10th/50th/90th percentile of the
   configurations' latencies, and write ``demo.nc`` (the cube), ``demo.png``
   (energy vs latency), ``accuracy.csv`` and, last, ``demo.json`` (the front and
   the rule's picks; its presence marks a finished demo) into the output folder.

The campaign is resumable: interrupted, the same command continues it; a finished
demo reruns in seconds (its accuracy table is reused while the model, splits and
codecs are unchanged: ``accuracy.key``). :func:`demo_cube` is how notebooks and
scripts get the demo's cube: a finished demo is opened, an unfinished one resumed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from toolkit.config import MAX_SAMPLES
from toolkit.errors import ToolkitError, check_count
from toolkit.fileio import atomic_output, save_figure

__all__ = ["DEMO_CODECS", "DEMO_EDGE_ACCELS", "DEMO_FREQS", "DemoResult", "demo_cube",
           "demo_splits", "rule_picks", "run_demo"]

MODEL = "digits-vgg-fc"
#: layers after which the demo cuts (besides cloud-only and edge-only)
DEMO_LAYERS = ("block2_pool", "block4_pool", "fc1")
DEMO_EDGE_ACCELS = ("int8", "tpu-std")
#: emulated CPU frequencies (MHz): the Pi's lowest, and its two highest, between
#: which the Edge TPU trades a millisecond for 4 % of the edge's energy
#: (``docs/calibration.md``, "What the embedded demo shows")
DEMO_FREQS = (600, 1600, 1800)
DEMO_CODECS = ("fp32", "q1")
PERCENTILES = (10, 50, 90)
#: the per-configuration table's columns
TABLE_VARIABLES = ("latency_ms", "edge_ms", "transfer_ms", "cloud_ms", "energy_j", "accuracy",
                   "tensor_kb")
#: written last by :func:`run_demo`: a folder holding it holds a finished demo
SUMMARY = "demo.json"


@dataclass
class DemoResult:
    """What the demo produced."""

    cube: xr.Dataset
    cube_path: Path
    plot_path: Path
    accuracy: pd.DataFrame
    table: pd.DataFrame
    front: list[dict]
    picks: dict[int, dict] = field(default_factory=dict)


def _demo_freqs(available: tuple[int, ...]) -> list[int]:
    """:data:`DEMO_FREQS`, checked against the edge profile's frequencies."""
    missing = sorted(set(DEMO_FREQS) - set(available))
    if missing:
        raise ToolkitError(f"the edge profile lacks the demo's frequencies {missing} MHz; "
                           f"it has {list(available)}")
    return list(DEMO_FREQS)


def _dense_share(model) -> float:
    """Share of the model's weights in its fixed dense layers."""
    from toolkit.models.digits_fc import FIXED_LAYERS

    return sum(model.get_layer(n).count_params() for n in FIXED_LAYERS) / model.count_params()


def demo_splits(split_model) -> list[int]:
    """Cloud-only, the cuts after :data:`DEMO_LAYERS`, and edge-only."""
    inner = [split_model.split_for_layer(layer) for layer in DEMO_LAYERS]
    return sorted({0, *inner, split_model.last_split})


def rule_picks(front: pd.DataFrame, percentiles_ms: dict[int, float]) -> dict[int, dict]:
    """DynaSplit's rule over the front at each latency threshold.

    Args:
        front: the front's configuration means (``latency_ms``, ``energy_j``,
            ``accuracy`` and the configuration columns).
        percentiles_ms: percentile -> latency threshold.

    Returns:
        percentile -> the picked row as a dict (with ``threshold_ms``).
    """
    from toolkit.rules import Candidates, dynasplit_rule

    n = len(front)
    cand = Candidates(
        mean_ms=front["latency_ms"].to_numpy(float), energy_j=front["energy_j"].to_numpy(float),
        accuracy=front["accuracy"].to_numpy(float), n_runs=np.ones(n, int),
        runs_ms=[np.array([v]) for v in front["latency_ms"]],
        transfer_ms=front["transfer_ms"].to_numpy(float))
    return {p: {**front.iloc[dynasplit_rule(cand, threshold)].to_dict(),
                "threshold_ms": float(threshold)} for p, threshold in percentiles_ms.items()}


def _accuracy(sm, model, splits: list[int], out: Path) -> pd.DataFrame:
    """The accuracy table, reused from ``out/accuracy.csv`` when the model, splits and
    codecs are those it was made with (a resumed demo skips the minute it takes)."""
    from toolkit.models import accuracy_table, eval_data
    from toolkit.models.quantize import weights_digest

    digest = weights_digest(model.get_weights()).hexdigest()
    key = json.dumps({"model": MODEL, "weights": digest, "splits": splits,
                      "edge_accels": ["none", "int8"], "codecs": list(DEMO_CODECS)})
    csv, key_file = out / "accuracy.csv", out / "accuracy.key"
    if csv.is_file() and key_file.is_file() and key_file.read_text() == key:
        try:
            cached = pd.read_csv(csv)
        except (OSError, ValueError):  # damaged: measured again below
            cached = None
        if cached is not None and {"split", "edge_accel", "codec", "accuracy"} <= set(
                cached.columns) and cached["accuracy"].between(0, 1).all():
            return cached
    acc = accuracy_table(sm, eval_data(model), splits=splits, edge_accels=("none", "int8"),
                         codecs=DEMO_CODECS)
    key_file.unlink(missing_ok=True)  # the key goes with a complete table only
    with atomic_output(csv) as tmp:
        acc.to_csv(tmp, index=False)
    key_file.write_text(key)
    return acc


def run_demo(out: str | os.PathLike = "dynasplit-demo", samples: int = 60,
             print_fn=print) -> DemoResult:
    """Run the demo; see the module docstring. Returns what it wrote.

    Raises:
        ToolkitError: ``samples`` is not a count of 1..:data:`~toolkit.config.MAX_SAMPLES`
            (before anything runs), or what the campaign raises.
    """
    from toolkit.campaign import Campaign, CampaignSpec, grid
    from toolkit.cube import config_means, pareto_configs
    from toolkit.devices.testbeds.local import LocalTestbed
    from toolkit.models import SplitModel, load_model
    from toolkit.plots import energy_latency

    check_count(samples, "samples", maximum=MAX_SAMPLES)  # before the minute of accuracy
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY).unlink(missing_ok=True)  # until this run finishes
    model = load_model(MODEL)
    sm = SplitModel(model, name=MODEL)
    splits = demo_splits(sm)
    print_fn(f"== {MODEL}: {sm.n_splits} splits (0 = all in the cloud, "
             f"{sm.last_split} = all on the edge); the demo measures {splits}")
    print_fn(f"   {model.count_params() / 1e6:.1f} M weights, {_dense_share(model) * 100:.0f} % "
             "in the dense layers fc1/fc2 (VGG16: 89 %): fixed random features regenerated "
             "from a seed;\n   the convolutions and the classifier are trained on the digits")
    for c in sm.cut_points:
        mark = "*" if c.split in splits else " "
        print_fn(f" {mark} split {c.split:>2}: after {c.layer:<13} sends {c.shape!s:<14} "
                 f"{c.bytes:>7} B fp32   head {c.head_macs:>11,} MACs   "
                 f"tail {c.tail_macs:>11,} MACs")

    print_fn("== accuracy on the 360 held-out digits (true labels) per split, edge "
             "accelerator and codec")
    acc = _accuracy(sm, model, splits, out)
    pivot = acc.pivot_table(index="split", columns=["edge_accel", "codec"], values="accuracy")
    print_fn(pivot.to_string(float_format=lambda v: f"{v:.3f}"))

    testbed = LocalTestbed(model=MODEL, log_dir=out / "logs")
    try:
        freqs = _demo_freqs(testbed.edge_profile.frequencies_mhz)
    except Exception:
        testbed.close()
        raise
    configs, _ = grid([MODEL], splits, freqs, ["none", *DEMO_EDGE_ACCELS], ["none"],
                      n_splits={MODEL: sm.n_splits})
    # the edge runs int8 heads (DynaSplit's "off"); "none" is for split 0 only (no head)
    configs = [c for c in configs if c.split == 0 or c.edge_accel in DEMO_EDGE_ACCELS]
    cal = testbed.calibration()
    print_fn(f"== host calibration (cached per machine; `dynasplit calibrate` redoes it): "
             f"int8 {cal.host.int8_gmacs:.1f} GMAC/s, fp32 {cal.host.fp32_gmacs:.1f} GMAC/s "
             f"on one thread; the Pi is {cal.slowdown(freqs[0]):.0f}x-"
             f"{cal.slowdown(freqs[-1]):.0f}x slower")
    spec = CampaignSpec(configs, samples=samples, codecs=list(DEMO_CODECS),
                        n_splits={MODEL: sm.n_splits})
    print_fn(f"== campaign: {len(spec.plan())} runs ({len(configs)} configurations x "
             f"{len(DEMO_CODECS)} codecs, edge-only with fp32 only: it sends nothing) x "
             f"{samples} samples on the local emulated testbed (frequencies {freqs} MHz; "
             f"link {testbed.link.rtt_ms} ms + {testbed.link.mbps:g} Mbit/s)")
    cube_path = out / "demo.nc"
    try:
        campaign = Campaign(testbed, spec, cube_path)
        cube = campaign.run()
    finally:
        testbed.close()
    print_fn(str(campaign.summary))

    table = config_means(cube, TABLE_VARIABLES)
    table.insert(1, "layer", table["split"].map(lambda s: sm.cut_points[int(s)].layer))
    print_fn(f"== per configuration (means over {samples} samples)")
    print_fn(f"   energy is modelled: {cube.attrs.get('energy_source', '?')}")
    print_fn(f"   timing: {cube.attrs.get('latency_source', 'measured')}")
    print_fn(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    front = pareto_configs(cube)
    keys = [k for k in front[0] if k in table.columns] if front else []
    wanted = pd.DataFrame(front)[keys] if front else pd.DataFrame(columns=keys)
    front_table = table.merge(wanted, on=keys, how="inner")
    splits_on_front = sorted({int(s) for s in front_table["split"]})
    print_fn(f"== Pareto-optimal configurations (latency, energy, accuracy): {len(front)}, "
             f"splits {splits_on_front}, accuracy {front_table.accuracy.min():.3f}-"
             f"{front_table.accuracy.max():.3f}")
    for row in front_table.sort_values("latency_ms").itertuples():
        print_fn(f"   split {row.split:>2} ({row.layer}) {row.cpu_freq} MHz {row.edge_accel:<7} "
                 f"{getattr(row, 'codec', 'fp32'):<4}: {row.latency_ms:7.2f} ms, "
                 f"{row.energy_j:.4g} J, accuracy {row.accuracy:.3f}")
    thresholds = {p: float(np.percentile(table["latency_ms"], p)) for p in PERCENTILES}
    picks = rule_picks(front_table, thresholds)
    print_fn("== DynaSplit's rule over the front (least energy meeting the threshold)")
    for p, row in picks.items():
        print_fn(f"   p{p} threshold {row['threshold_ms']:.1f} ms -> split {int(row['split'])} "
                 f"({row['layer']}) {int(row['cpu_freq'])} MHz {row['edge_accel']} "
                 f"{row.get('codec', 'fp32')}: {row['latency_ms']:.1f} ms, "
                 f"{row['energy_j']:.3g} J")

    fig = energy_latency(cube)
    plot_path = out / "demo.png"
    save_figure(fig, plot_path, dpi=120)
    _write_summary(out / SUMMARY, cube, front, picks)
    print_fn(f"== wrote {cube_path}, {plot_path}, {out / 'accuracy.csv'} and {out / SUMMARY}")
    return DemoResult(cube, cube_path, plot_path, acc, table, front, picks)


def _write_summary(path: Path, cube: xr.Dataset, front: list[dict],
                   picks: dict[int, dict]) -> None:
    """``demo.json``: the front, the rule's picks and where the figures come from."""
    def plain(value):
        return value.item() if isinstance(value, np.generic) else str(value)

    summary = {"cube": "demo.nc", "model": MODEL, "front": front,
               "picks": {f"p{p}": row for p, row in picks.items()},
               "energy_source": cube.attrs.get("energy_source"),
               "latency_source": cube.attrs.get("latency_source")}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=plain) + "\n")


def _find_up(relative: str) -> Path | None:
    """The first ``<folder>/relative`` from the working folder up to the root."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / relative).exists():
            return folder / relative
    return None


def demo_cube(print_fn=None) -> xr.Dataset:
    """The demo's cube, for notebooks and scripts, without measuring it twice.

    Looks for ``dynasplit-demo/`` (where ``make demo`` leaves it) in the working
    folder and the folders above it, then in the temporary folder. A finished
    demo there (it holds ``demo.json``) is opened; an unfinished one is resumed.
    With none, the demo runs in ``$TMPDIR/dynasplit-demo`` (about 4 minutes on
    2 cores), or in a fresh temporary folder where that one holds a journal of
    other settings. ``print_fn`` receives the demo's report (default: nothing).
    """
    import tempfile

    from toolkit.cube import open_cube

    print_fn = print_fn or (lambda *_: None)
    folder = _find_up("dynasplit-demo") or Path(tempfile.gettempdir()) / "dynasplit-demo"
    if (folder / SUMMARY).is_file() and (folder / "demo.nc").is_file():
        return open_cube(folder / "demo.nc")
    try:
        return run_demo(folder, print_fn=print_fn).cube
    except ToolkitError:  # a journal left there by another demo (settings, version)
        return run_demo(tempfile.mkdtemp(prefix="dynasplit-demo-"), print_fn=print_fn).cube
