"""Campaigns over a pool of local testbeds: their own workers, a failing testbed leaves
the pool, and the CLI's bad values (kill -9 and resume of a pool campaign, with records
naming their testbed: ``test_campaign_resume.py``)."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket

import pytest

from toolkit.campaign import Campaign, CampaignSpec, grid
from toolkit.cli import main
from toolkit.devices.testbeds.local import LocalTestbed
from toolkit.devices.testbeds.pool import TestbedPool
from toolkit.errors import ConfigError
from toolkit.hardware.profile import load_profile

POOL = {"local-1", "local-2"}


def _runs(journal):
    if not journal.exists():
        return []
    return [json.loads(x) for x in journal.read_text().splitlines() if '"type":"run"' in x]


class _AlwaysFailing(LocalTestbed):
    """A local testbed whose edge is pointed at a closed port: every split that needs
    the cloud fails with a real refused connection."""

    @property
    def cloud_address(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()


def test_a_testbed_that_keeps_failing_leaves_the_pool_and_the_others_finish(tmp_path, caplog):
    # quota timing, so that each testbed's own cgroup is checked below
    good = LocalTestbed(name="good", log_dir=tmp_path / "good", edge_timing="quota")
    broken = _AlwaysFailing(name="broken", log_dir=tmp_path / "broken", edge_timing="quota")
    pool = TestbedPool([good, broken])
    configs, _ = grid(["digits-cnn"], [1, 2, 3, 4, 5, 6, 7, 8], [1800], ["none"], ["none"],
                      n_splits={"digits-cnn": 10})
    campaign = Campaign(pool, CampaignSpec(configs, samples=20), tmp_path / "c.nc", retries=0,
                        drop_after=2, progress=False)
    try:
        pool.start()
        # two testbeds in one process: their own workers, ports, cgroups and logs
        assert good.edge_pid != broken.edge_pid
        assert good.cloud_address != (broken._cloud.host, broken._cloud.port)
        assert good._edge.port != broken._edge.port
        if good.throttled:
            assert good._quota.path != broken._quota.path
            assert good._quota.pids() == [good.edge_pid]
        assert (tmp_path / "good" / "edge.log").exists()
        assert (tmp_path / "broken" / "edge.log").exists()
        with caplog.at_level(logging.WARNING, logger="toolkit"):
            cube = campaign.run()
        assert broken._edge is None  # closed once it left the pool
    finally:
        pool.close()
    summary = campaign.summary
    assert summary.failures == []
    assert summary.done_now == 8 and int(cube.latency_ms.notnull().sum()) == 8
    assert list(summary.dropped) == ["broken"]
    assert "2 runs in a row failed there that another testbed measured" in (
        summary.dropped["broken"])
    assert summary.per_testbed == {"good": 8, "broken": 0}
    assert "taken out of the pool: broken" in str(summary)
    assert any("testbed broken is taken out of the pool" in r.getMessage()
               and "its work goes to good" in r.getMessage() for r in caplog.records)
    runs = _runs(tmp_path / "c.nc.journal")
    assert {r["testbed"] for r in runs} == {"good"}
    assert json.loads(cube.attrs["testbed_runs"]) == {"good": 8}


def test_a_run_failing_on_two_testbeds_is_recorded_once(tmp_path):
    """The configuration's fault (not a testbed's): failed on two testbeds, recorded as
    failed, and neither testbed leaves the pool for it."""
    pool = TestbedPool([_AlwaysFailing(name=f"b{i}", log_dir=tmp_path / f"b{i}")
                        for i in (1, 2)])
    configs, _ = grid(["digits-cnn"], [2, 9], [1800], ["none"], ["none"],
                      n_splits={"digits-cnn": 10})
    campaign = Campaign(pool, CampaignSpec(configs, samples=10), tmp_path / "c.nc", retries=0,
                        drop_after=1, progress=False)
    try:
        pool.start()
        campaign.run()
    finally:
        pool.close()
    (failure,) = campaign.summary.failures
    assert failure["config"]["split"] == 2 and sorted(failure["tried"]) == ["b1", "b2"]
    assert "edge cannot reach the cloud worker" in failure["reason"]
    assert campaign.summary.done_now == 1 and campaign.summary.dropped == {}


def test_testbeds_of_a_pool_must_be_interchangeable():
    with pytest.raises(ConfigError, match="distinct names; local appears more than once"):
        TestbedPool([LocalTestbed(), LocalTestbed()])
    pi5 = dataclasses.replace(load_profile("raspberry-pi-4"), name="raspberry-pi-5")
    with pytest.raises(ConfigError, match="edge profile 'raspberry-pi-4' but 'b' has"):
        TestbedPool([LocalTestbed(name="a"), LocalTestbed(pi5, name="b")])
    with pytest.raises(ConfigError, match="at least 1 testbed"):
        TestbedPool.local(0)


def test_what_is_no_testbed_or_spec_is_named():
    from toolkit.devices.testbeds.factory import open_pool

    for value in (None, LocalTestbed(), "local"):
        with pytest.raises(ConfigError, match=r"^a testbed pool needs a list of testbeds, got "
                                              rf"{type(value).__name__}$"):
            TestbedPool(value)
    with pytest.raises(ConfigError, match=r"^testbed 1 of the pool is no testbed \(LocalTestbed, "
                                          r"SshTestbed, open_testbed's\), got str$"):
        TestbedPool([LocalTestbed(), "local"])
    for value in (None, 3, {"local": 1}):
        with pytest.raises(ConfigError, match=r"^a pool needs testbed specs \('local', an "
                                              r"inventory's name or path, or a list of them\), "
                                              rf"got {type(value).__name__}$"):
            open_pool(value)


def test_an_option_no_testbed_takes_is_named_with_the_valid_ones():
    from toolkit.devices.testbeds.factory import open_pool, open_testbed

    with pytest.raises(ConfigError, match=r"^unknown option\(s\) 'modle' for the local testbed; "
                                          r"valid: edge_profile, cloud_profile, model, "):
        open_testbed("local", modle="digits-vgg")
    with pytest.raises(ConfigError, match=r"^unknown option\(s\) 'nosuch' for the local testbed"):
        open_pool("local", copies=2, nosuch=1)
    with pytest.raises(ConfigError, match=r"^unknown option\(s\) 'log_dir', 'throttle' for the "
                                          r"SSH testbed .*pi-coral-gpu.toml; valid: model, "):
        open_testbed("pi-coral-gpu", throttle=False, log_dir="logs")
    assert open_testbed("local", model="digits-vgg", throttle=False).throttle is False


@pytest.mark.parametrize(("args", "fragments"), [
    (["--testbeds", "0"], ["--testbeds '0' is not valid", "valid: a whole number from 1"]),
    (["--testbeds", "two"], ["--testbeds 'two' is not valid", "valid: a whole number from 1"]),
    (["--testbeds", "2", "--testbed", "pi-coral-gpu"],
     ["only be local emulated testbeds", "--testbed a.toml,b.toml"]),
    (["--runs", "many"], ["--runs 'many' is not valid", "from 1 (1, 2, ...) or auto"]),
    (["--runs", "auto", "--rel-ci", "5%"], ["--rel-ci '5%' is not valid",
                                            "a fraction between 0 and 1"]),
    (["--runs", "auto", "--rel-ci", "1.5"], ["--rel-ci '1.5' is not valid"]),
    (["--runs", "auto", "--max-runs", "1"], ["--max-runs '1' is not valid", "from 2"]),
    (["--runs", "3", "--max-runs", "5"], ["go with --runs auto"]),
])
def test_bad_pool_and_repeat_values_give_one_line_and_exit_2(args, fragments, capsys, tmp_path):
    out = tmp_path / "c.nc"
    assert main(["measure", "--model", "digits-cnn", "-o", str(out), *args]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    errors = [x for x in err if x.startswith("dynasplit: error:")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0]
    assert not out.exists() and not (tmp_path / "c.nc.journal").exists()
