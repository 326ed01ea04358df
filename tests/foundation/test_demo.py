"""`dynasplit demo` end to end on the embedded default (the README's `make demo`).

The demo must show the trade-off split inference is about: a front of several
configurations over several splits, DynaSplit's rule picking different splits
for different latency thresholds, and an accuracy that really differs.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from toolkit.cube import VARIABLES, config_means, open_cube, pareto_configs
from toolkit.demo import DEMO_EDGE_ACCELS, PERCENTILES, demo_cube, rule_picks


@pytest.fixture(scope="module")
def demo(demo_run):
    """The session's demo run (tests/conftest.py), shared with the notebooks."""
    return demo_run


def test_demo_writes_cube_plot_and_table(demo):
    out, stdout = demo
    # (split 0 without a head + 3 inner splits x int8/tpu-std) x 2 codecs, plus edge-only
    # x int8/tpu-std with fp32 only (it sends nothing), all x 3 freqs
    runs = ((1 + 3 * 2) * 2 + 2) * 3
    assert f"{runs}/{runs} runs measured" in stdout
    assert "Pareto-optimal configurations" in stdout
    cube = open_cube(out / "demo.nc")
    assert dict(cube.sizes) == {"model": 1, "split": 5, "cpu_freq": 3, "edge_accel": 3,
                                "cloud_accel": 1, "codec": 2, "repeat": 1}
    assert cube.attrs["samples_per_run"] == 60
    edge_only = cube.latency_ms.sel(split=int(cube.split.max()),
                                    edge_accel=list(DEMO_EDGE_ACCELS))
    assert edge_only.sel(codec="fp32").notnull().all() and edge_only.sel(codec="q1").isnull().all()
    assert cube.attrs["label_source"] == "labels"
    for var, (units, _) in VARIABLES.items():
        assert cube[var].attrs["units"] == units
    assert float(cube.accuracy.max()) >= 0.9
    png = (out / "demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert (out / "accuracy.csv").read_text().startswith("split,layer,edge_accel,codec,accuracy")
    summary = json.loads((out / "demo.json").read_text())
    front = pareto_configs(cube)
    assert [{k: str(v) for k, v in c.items()} for c in summary["front"]] == [
        {k: str(v) for k, v in c.items()} for c in front]
    assert set(summary["picks"]) == {f"p{p}" for p in PERCENTILES}
    assert summary["energy_source"] == cube.attrs["energy_source"]


def test_demo_cube_opens_a_finished_demo_and_resumes_an_unfinished_one(demo, tmp_path,
                                                                       monkeypatch):
    out, _ = demo
    work = tmp_path / "project"
    shutil.copytree(out, work / "dynasplit-demo", ignore=shutil.ignore_patterns("logs"))
    (work / "notebooks").mkdir()
    monkeypatch.chdir(work / "notebooks")  # found from a folder below, like a notebook's
    lines: list[str] = []
    cube = demo_cube(print_fn=lines.append)
    assert lines == []  # finished: opened, not rerun
    assert dict(cube.sizes) == dict(open_cube(out / "demo.nc").sizes)
    (work / "dynasplit-demo" / "demo.json").unlink()  # as if interrupted before the end
    resumed = demo_cube(print_fn=lines.append)
    assert any("48/48 runs measured (0 now, 48 before)" in line for line in lines), lines
    assert (work / "dynasplit-demo" / "demo.json").is_file()
    assert float(abs(resumed.latency_ms - cube.latency_ms).max()) == 0.0


def test_every_modelled_figure_says_so(demo):
    cube = open_cube(demo[0] / "demo.nc")
    assert cube.attrs["energy_source"] == "model:raspberry-pi-4+model:cloud-gpu-server"
    # the edge's time is padded to the Pi model, the TPU's is the model's
    assert cube.attrs["latency_source"].startswith("model:raspberry-pi-4")


def _front(cube):
    means = config_means(cube)
    front = pareto_configs(cube)
    keys = [k for k in front[0] if k in means.columns]
    return front, means.merge(pd.DataFrame(front)[keys], on=keys)


def test_the_front_shows_a_real_trade_off(demo):
    cube = open_cube(demo[0] / "demo.nc")
    front, on_front = _front(cube)
    assert len(on_front) == len(front)
    assert len(front) >= 5, on_front
    assert on_front.split.nunique() >= 2, on_front
    # accuracy on real labels differs by at least half a point on the front
    assert on_front.accuracy.max() - on_front.accuracy.min() >= 0.005, on_front


def test_the_front_holds_an_interior_split(demo):
    """Issue 14's criterion: >= 3 distinct splits on the front, one of them interior."""
    cube = open_cube(demo[0] / "demo.nc")
    last = int(cube.split.max())
    _, on_front = _front(cube)
    splits = set(on_front.split.astype(int))
    assert len(splits) >= 3, on_front
    assert any(0 < s < last for s in splits), on_front


def test_dynasplits_rule_picks_different_splits_for_different_thresholds(demo):
    cube = open_cube(demo[0] / "demo.nc")
    _, on_front = _front(cube)
    means = config_means(cube)
    thresholds = {p: float(np.percentile(means.latency_ms, p)) for p in PERCENTILES}
    picks = rule_picks(on_front, thresholds)
    assert len({int(row["split"]) for row in picks.values()}) >= 2, picks
    # a looser threshold never costs more energy
    energies = [picks[p]["energy_j"] for p in PERCENTILES]
    assert energies == sorted(energies, reverse=True)
