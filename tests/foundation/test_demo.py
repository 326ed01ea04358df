"""`dynasplit demo` end to end on the embedded default (the README's `make demo`)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from toolkit.cube import VARIABLES, open_cube


def test_demo_writes_cube_plot_and_table(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "toolkit", "demo", "--out", str(out),
                             "--samples", "20"], capture_output=True, text=True, timeout=900,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "57/57 runs measured" in result.stdout
    assert "Pareto-optimal configurations" in result.stdout
    cube = open_cube(out / "demo.nc")
    assert dict(cube.sizes) == {"model": 1, "split": 10, "cpu_freq": 3, "edge_accel": 2,
                                "cloud_accel": 1, "repeat": 1}
    assert cube.attrs["energy_source"] == "model:raspberry-pi-4+model:cloud-gpu-server"
    assert cube.attrs["samples_per_run"] == 20
    for var, (units, _) in VARIABLES.items():
        assert cube[var].attrs["units"] == units
    # 10 splits x 3 freqs x 2 accels, minus the int8 head at split 0
    assert int(np.isfinite(cube.latency_ms).sum()) == 57
    assert float(cube.accuracy.max()) >= 0.95
    png = (out / "demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert (out / "accuracy.csv").read_text().startswith("split,layer,edge_accel,codec,accuracy")
