"""A ViT-B/16 campaign on the local testbed (input 32, GELU as DynaSplit ran it)."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.cli import main
from toolkit.cube import configurations, open_cube


@pytest.mark.slow  # three processes build the 86 M-parameter model: about a minute
def test_vit_campaign_runs_on_the_local_testbed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DYNASPLIT_LOG", "WARNING")
    out = tmp_path / "vit.nc"
    status = main(["measure", "--testbed", "local", "--model", "vit-b16", "--gelu", "igelu",
                   "--input-size", "32", "--splits", "0,6", "--cpu-freqs", "1800",
                   "--edge-accels", "none,int8", "--samples", "2", "-o", str(out)])
    assert status == 0, capsys.readouterr()
    cube = open_cube(out)
    assert {(c["model"], c["split"], c["edge_accel"]) for c in configurations(cube)} == {
        ("vit-b16:igelu", 0, "none"), ("vit-b16:igelu", 6, "none"),
        ("vit-b16:igelu", 6, "int8")}
    assert cube.attrs["label_source"] == "fp32-model"
    runs = cube.sel(model="vit-b16:igelu", cpu_freq=1800, cloud_accel="none")
    # fp32 split inference is the fp32 model: full agreement; int8 head measured
    assert float(runs["accuracy"].sel(split=0, edge_accel="none").max()) == 1.0
    assert float(runs["accuracy"].sel(split=6, edge_accel="none").max()) == 1.0
    assert np.isfinite(runs["accuracy"].sel(split=6, edge_accel="int8")).any()
    # split 6 sends the 5x768 tokens after encoder block 0 (fp32), split 0 the image
    kb = runs["tensor_kb"].sel(edge_accel="none").max("repeat")
    assert float(kb.sel(split=6)) == 5 * 768 * 4 / 1024
    assert float(kb.sel(split=0)) == 32 * 32 * 3 * 4 / 1024
