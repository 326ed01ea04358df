"""Campaigns survive kill -9: rerunning the same command continues, nothing lost or doubled,
and a different campaign is refused on the same journal.

The campaign runs on a pool of two local testbeds (``--testbeds 2``): killed once both
are measuring, its one journal still resumes exactly the missing runs, and every record
names its testbed. A single testbed resumes through the same journal, work queue and
per-testbed loop (``Campaign._serve``, once instead of twice), so it is not killed a
second time here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from toolkit.cube import configurations, open_cube

POOL = {"local-1", "local-2"}


def _measure(out, *extra):
    return [sys.executable, "-m", "toolkit", "measure", "--testbeds", "2",
            "--model", "digits-cnn", "--splits", "0,3,9", "--cpu-freqs", "600,1800",
            "--edge-accels", "none,int8", "--runs", "2", "--samples", "60", "--order", "shuffle",
            "--seed", "7", "-o", str(out), *extra]


def _runs(journal):
    if not journal.exists():
        return []
    return [json.loads(x) for x in journal.read_text().splitlines() if '"type":"run"' in x]


@dataclass
class Resumed:
    """A pool campaign killed with -9 once both testbeds were measuring, then the same
    command run again."""

    out: Path
    journal: Path
    done_before: int
    rerun: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> Resumed:
    """The kill -9 and the rerun, once for the module: the refusal below reuses its journal."""
    tmp_path = tmp_path_factory.mktemp("resume")
    out = tmp_path / "cube.nc"
    journal = tmp_path / "cube.nc.journal"
    env = dict(os.environ, DYNASPLIT_LOG="WARNING")
    proc = subprocess.Popen(_measure(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 300

    def both_measuring():
        runs = _runs(journal)
        return len(runs) >= 4 and {r["testbed"] for r in runs} == POOL

    while not both_measuring() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and both testbeds' workers, mid-campaign
    proc.wait()
    proc.stderr.close()
    done_before = len(_runs(journal))
    rerun = subprocess.run(_measure(out), capture_output=True, text=True, env=env, timeout=600,
                           stdin=subprocess.DEVNULL)
    return Resumed(out, journal, done_before, rerun)


def test_kill_9_mid_pool_campaign_then_resume_measures_exactly_the_missing_runs(
        resumed: Resumed):
    out, journal, done_before, rerun = (resumed.out, resumed.journal, resumed.done_before,
                                        resumed.rerun)
    assert 4 <= done_before < 20  # (3 splits x 2 freqs x 2 accels - 2 invalid) x 2 runs
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"({20 - done_before} now, {done_before} before)" in rerun.stdout
    assert "runs per testbed: local-1 " in rerun.stdout

    runs = _runs(journal)
    keys = [e["key"] for e in runs]
    assert len(keys) == len(set(keys)) == 20
    assert {e["testbed"] for e in runs} == POOL  # every record names its testbed
    cube = open_cube(out)
    assert cube.attrs["testbed"] == "local-1,local-2"
    assert sum(json.loads(cube.attrs["testbed_runs"]).values()) == 20
    assert len(configurations(cube)) == 10
    counts = np.isfinite(cube.latency_ms).sum("repeat")
    assert int(counts.sum()) == 20 and int(counts.max()) == 2

    env = dict(os.environ, DYNASPLIT_LOG="WARNING")
    again = subprocess.run(_measure(out), capture_output=True, text=True, env=env, timeout=300,
                           stdin=subprocess.DEVNULL)
    assert again.returncode == 0 and "(0 now, 20 before)" in again.stdout


def test_a_different_campaign_is_refused_on_the_same_journal(resumed: Resumed, tmp_path: Path):
    """The finished campaign's cube and journal, and the same command with one value changed."""
    assert resumed.rerun.returncode == 0, resumed.rerun.stderr[-2000:]
    out = tmp_path / resumed.out.name
    shutil.copy(resumed.out, out)
    shutil.copy(resumed.journal, tmp_path / resumed.journal.name)
    before = out.read_bytes()
    second = subprocess.run(_measure(out, "--samples", "61"), capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert second.returncode == 2
    assert "belongs to a different campaign" in second.stderr
    assert out.read_bytes() == before
