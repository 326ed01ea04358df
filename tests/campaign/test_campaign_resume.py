"""Campaigns survive kill -9: rerunning the same command continues, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from commands import measure_command  # tests/ is on sys.path (conftest)

from toolkit.cube import configurations, open_cube


def _measure(out, *extra):
    return measure_command(out, *extra)


def _runs_in_journal(journal):
    if not journal.exists():
        return 0
    return sum(1 for line in journal.read_text().splitlines() if '"type":"run"' in line)


@dataclass
class Resumed:
    """A campaign killed with -9 mid-way, then the same command run again."""

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
    deadline = time.time() + 240
    while _runs_in_journal(journal) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-campaign
    proc.wait()
    proc.stderr.close()
    done_before = _runs_in_journal(journal)
    rerun = subprocess.run(_measure(out), capture_output=True, text=True, env=env, timeout=600,
                           stdin=subprocess.DEVNULL)
    return Resumed(out, journal, done_before, rerun)


def test_kill_9_then_rerun_completes_without_loss_or_duplicates(resumed: Resumed):
    out, journal, done_before, rerun = (resumed.out, resumed.journal, resumed.done_before,
                                        resumed.rerun)
    assert 4 <= done_before < 20  # (3 splits x 2 freqs x 2 accels - 2 invalid) x 2 runs
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"({20 - done_before} now, {done_before} before)" in rerun.stdout

    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    keys = [e["key"] for e in lines if e.get("type") == "run"]
    assert len(keys) == len(set(keys)) == 20
    cube = open_cube(out)
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
    second = subprocess.run(_measure(out, "--samples", "31"), capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert second.returncode == 2
    assert "belongs to a different campaign" in second.stderr
    assert out.read_bytes() == before
