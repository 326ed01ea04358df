"""``dynasplit cube import-splinter`` and ``dynasplit cube info``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from toolkit.cli import main
from toolkit.cube import configurations, cube_from_runs, open_cube, save_cube
from toolkit.splinter import read_pool

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_import_then_info(splinter_dir, tmp_path, capsys):
    pool = splinter_dir / "simulation_pool_vgg16.csv"
    out = tmp_path / "vgg16.nc"
    assert main(["cube", "import-splinter", str(pool), "-o", str(out), "--model", "vgg16"]) == 0
    assert "1082 runs of 747 configurations" in capsys.readouterr().out
    cube = open_cube(out)
    assert configurations(cube) == configurations(read_pool(pool))
    assert main(["cube", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "energy source: meter:splinter" in text
    assert "747 of 1218 valid configurations measured" in text  # fp32 heads never run
    assert "split=23" in text and "pareto front:" in text
    assert main(["cube", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["measured"] == 747 and info["dims"]["repeat"] == 123


def test_bad_input_keeps_the_existing_output(tmp_path, capsys):
    out = save_cube(cube_from_runs([{"model": "m", "split": 0, "cpu_freq": 600,
                                     "edge_accel": "none", "cloud_accel": "none",
                                     "latency_ms": 1.0}], {}), tmp_path / "keep.nc")
    before = out.read_bytes()
    bad = tmp_path / "trace.csv"
    bad.write_text("Index,Network,Latency\n0,vgg16,90.6\n")
    status = main(["cube", "import-splinter", str(bad), "-o", str(out), "--model", "vgg16"])
    assert status == 2
    err = capsys.readouterr().err
    assert "missing columns latency" in err and err.count("\n") == 1
    assert out.read_bytes() == before
    assert main(["cube", "info", str(bad)]) == 2
    assert "not a NetCDF-4 file" in capsys.readouterr().err


def test_subprocess_exit_code_and_one_line_error(tmp_path):
    bogus = tmp_path / "bogus.nc"
    bogus.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # an HDF5 signature and nothing else
    proc = subprocess.run([sys.executable, "-m", "toolkit", "cube", "info", str(bogus)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dynasplit: error: ") and "damaged or truncated" in lines[0]
    assert proc.stdout == ""
