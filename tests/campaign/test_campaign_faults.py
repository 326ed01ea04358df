"""Campaign failures: retried with backoff after a restart, then recorded; the rest goes on."""

from __future__ import annotations

import os
import signal
import socket
import time

from toolkit.campaign import Campaign, CampaignSpec, grid
from toolkit.devices.testbeds.local import LocalTestbed
from toolkit.retry import Journal


def _configs(splits):
    configs, _ = grid(["digits-cnn"], splits, [1800], ["none"], ["none"],
                      n_splits={"digits-cnn": 10})
    return configs


def test_a_killed_cloud_worker_is_recovered_by_retry(tmp_path, alongside):
    tb = LocalTestbed(log_dir=tmp_path / "logs")
    spec = CampaignSpec(_configs([0, 1, 2, 3, 4, 5]), samples=40, runs=2)
    campaign = Campaign(tb, spec, tmp_path / "c.nc", backoff_s=0.1, progress=False)
    journal = tmp_path / "c.nc.journal"

    def kill_cloud_once():
        deadline = time.time() + 120
        while time.time() < deadline:
            if journal.exists() and journal.read_text().count('"type":"run"') >= 2:
                os.kill(tb._cloud.pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    try:
        with alongside(kill_cloud_once):
            cube = campaign.run()
    finally:
        tb.close()
    assert campaign.summary.failures == []
    assert campaign.summary.done_now == 12
    assert int(cube.latency_ms.notnull().sum()) == 12


class _UnreachableCloud(LocalTestbed):
    """A local testbed whose edge is pointed at a closed port (a real refused connection)."""

    @property
    def cloud_address(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()


def test_runs_that_keep_failing_are_recorded_and_the_campaign_goes_on(tmp_path):
    tb = _UnreachableCloud(log_dir=tmp_path / "logs")
    spec = CampaignSpec(_configs([2, 9]), samples=20)
    campaign = Campaign(tb, spec, tmp_path / "c.nc", retries=1, backoff_s=0.05, progress=False)
    try:
        cube = campaign.run()
    finally:
        tb.close()
    summary = campaign.summary
    assert summary.done_now == 1  # split 9 (edge only) needs no cloud
    assert len(summary.failures) == 1
    failure = summary.failures[0]
    assert failure["config"]["split"] == 2
    assert "edge cannot reach the cloud worker" in failure["reason"]
    assert "failed: " in str(summary)
    assert int(cube.latency_ms.notnull().sum()) == 1


def test_a_torn_last_journal_line_is_dropped(tmp_path):
    path = tmp_path / "j"
    path.write_text('{"schema":"dynasplit.journal/1","fingerprint":"x"}\n{"type":"run","ke')
    header, entries = Journal(path).read()
    assert header["fingerprint"] == "x" and entries == []
    assert path.read_text().endswith("}\n")
