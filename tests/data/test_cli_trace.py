"""``dynasplit trace generate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from toolkit.cli import main
from toolkit.trace import generate_trace, read_trace, write_trace

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_generate_writes_the_seeded_trace(tmp_path, capsys):
    out = tmp_path / "trace.csv"
    argv = ["trace", "generate", "--model", "vgg16", "--min", "90.6", "--max", "5026.8",
            "-n", "50", "--seed", "4", "-o", str(out)]
    assert main(argv) == 0
    assert "50 thresholds for vgg16, 90.6..5026.8 ms" in capsys.readouterr().out
    expected = generate_trace("vgg16", 90.6, 5026.8, 50, seed=4)
    assert (read_trace(out)["Latency"].to_numpy() == expected["Latency"].to_numpy()).all()
    assert main([*argv, "--shape", "2.5"]) == 0
    shaped = generate_trace("vgg16", 90.6, 5026.8, 50, seed=4, shape=2.5)
    assert (read_trace(out)["Latency"].to_numpy() == shaped["Latency"].to_numpy()).all()


def test_bad_range_fails_without_touching_the_output(tmp_path, capsys):
    out = write_trace(generate_trace("vgg16", 1.0, 2.0, 5, seed=0), tmp_path / "keep.csv")
    before = out.read_bytes()
    status = main(["trace", "generate", "--model", "vgg16", "--min", "500", "--max", "100",
                   "-n", "50", "--seed", "1", "-o", str(out)])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be greater than min" in err
    assert out.read_bytes() == before


def test_subprocess_exit_code_and_one_line_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "trace", "generate", "--model", "vgg16", "--min", "1",
         "--max", "10", "-n", "1", "--seed", "0", "-o", str(tmp_path / "t.csv")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "dynasplit: error: a trace needs n >= 2 requests, got 1"]
    assert not (tmp_path / "t.csv").exists()
