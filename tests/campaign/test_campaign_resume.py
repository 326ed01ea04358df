"""Campaigns survive kill -9: rerunning the same command continues, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from toolkit.cube import configurations, open_cube


def _measure(out, *extra):
    return [sys.executable, "-m", "toolkit", "measure", "--testbed", "local",
            "--model", "digits-cnn", "--splits", "0,3,9", "--cpu-freqs", "600,1800",
            "--edge-accels", "none,int8", "--runs", "2", "--samples", "30", "--order", "shuffle",
            "--seed", "7", "-o", str(out), *extra]


def _runs_in_journal(journal):
    if not journal.exists():
        return 0
    return sum(1 for line in journal.read_text().splitlines() if '"type":"run"' in line)


def test_kill_9_then_rerun_completes_without_loss_or_duplicates(tmp_path):
    out = tmp_path / "cube.nc"
    journal = tmp_path / "cube.nc.journal"
    env = dict(os.environ, DYNASPLIT_LOG="WARNING")
    proc = subprocess.Popen(_measure(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 240
    while _runs_in_journal(journal) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-campaign
    proc.wait()
    proc.stderr.close()
    done_before = _runs_in_journal(journal)
    assert 4 <= done_before < 20  # (3 splits x 2 freqs x 2 accels - 2 invalid) x 2 runs

    rerun = subprocess.run(_measure(out), capture_output=True, text=True, env=env, timeout=600,
                           stdin=subprocess.DEVNULL)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"({20 - done_before} now, {done_before} before)" in rerun.stdout

    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    keys = [e["key"] for e in lines if e.get("type") == "run"]
    assert len(keys) == len(set(keys)) == 20
    cube = open_cube(out)
    assert len(configurations(cube)) == 10
    counts = np.isfinite(cube.latency_ms).sum("repeat")
    assert int(counts.sum()) == 20 and int(counts.max()) == 2

    again = subprocess.run(_measure(out), capture_output=True, text=True, env=env, timeout=300,
                           stdin=subprocess.DEVNULL)
    assert again.returncode == 0 and "(0 now, 20 before)" in again.stdout


def test_a_different_campaign_is_refused_on_the_same_journal(tmp_path):
    out = tmp_path / "cube.nc"
    first = subprocess.run(_measure(out, "--runs", "1"), capture_output=True, text=True,
                           timeout=600, stdin=subprocess.DEVNULL)
    assert first.returncode == 0, first.stderr[-2000:]
    before = out.read_bytes()
    second = subprocess.run(_measure(out, "--samples", "31"), capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert second.returncode == 2
    assert "belongs to a different campaign" in second.stderr
    assert out.read_bytes() == before
