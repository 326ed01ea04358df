"""The local emulated testbed: real workers, cgroup throttling, modelled energy."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from toolkit.devices.controllers.base import switch_time_ms
from toolkit.devices.testbeds.local import LocalTestbed
from toolkit.devices.testbeds.splinter_fit import fit_splinter_link
from toolkit.errors import ConfigError, ToolkitError
from toolkit.paths import SPLINTER_DIR

CONFIG = {"model": "digits-cnn", "split": 3, "cpu_freq": 1800, "edge_accel": "int8",
          "cloud_accel": "none"}


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    tb = LocalTestbed(log_dir=tmp_path_factory.mktemp("logs")).start()
    yield tb
    tb.close()


def test_run_returns_a_labelled_record(testbed):
    rec = testbed.run(CONFIG, samples=50)
    assert rec.samples == 50
    assert rec.energy_source == "model:raspberry-pi-4+model:cloud-gpu-server"
    assert rec.label_source == "labels"
    assert rec.accuracy >= 0.9
    assert rec.latency_ms == pytest.approx(rec.edge_ms + rec.transfer_ms + rec.cloud_ms)
    assert rec.energy_j == pytest.approx(rec.edge_energy_j + rec.cloud_energy_j)
    assert rec.tensor_kb == pytest.approx(4 * 4 * 32 * 4 / 1024)
    row = rec.cube_row()
    assert {k: row[k] for k in CONFIG} == CONFIG


def test_modelled_edge_energy_follows_the_profile(testbed):
    rec = testbed.run({**CONFIG, "split": 9, "cpu_freq": 600}, samples=40)
    r = rec.result
    busy = (r.timings["edge_ms"] + r.timings["encode_ms"]) / 1e3
    wait = r.timings["latency_ms"] / 1e3 - busy
    # raspberry-pi-4 profile at 600 MHz: 2.95 W busy, 2.70 W waiting, int8 adds nothing
    expected = float(np.mean(2.95 * busy + 2.70 * wait))
    assert rec.edge_energy_j == pytest.approx(expected, rel=1e-9)
    assert rec.cloud_energy_j == 0.0


def test_padded_edge_takes_the_profiles_device_time(testbed):
    assert testbed.edge_timing == "pad" and testbed.throttled
    assert "model:raspberry-pi-4" in testbed.latency_source
    slow = testbed.run({**CONFIG, "split": 9, "cpu_freq": 600}, samples=10)
    fast = testbed.run({**CONFIG, "split": 9, "cpu_freq": 1800}, samples=10)
    for rec in (slow, fast):
        target = testbed.run_blocking(testbed.edge_target_ms(rec.config))
        # the head really ran, then waited: never shorter than the device's time
        assert np.all(rec.result.timings["edge_ms"] >= target)
        assert np.all(rec.result.extra["pad_ms"] >= 0)
    # the Pi model: the whole digits CNN at 600 MHz takes ~3x as long as at 1800
    sm = testbed.split_model("digits-cnn")
    from toolkit.hardware.edge_timing import head_cost
    cost = head_cost(sm, 9)
    timing = testbed.edge_profile.timing
    assert timing.time_ms(cost, 600, "int8") / timing.time_ms(cost, 1800, "int8") > 2.5


def test_emulated_tpu_runs_the_int8_head_with_modelled_timing(testbed):
    rec = testbed.run({**CONFIG, "edge_accel": "tpu-max"}, samples=20)
    int8 = testbed.run(CONFIG, samples=20)
    # the same int8 flatbuffer ran: same predictions, real accuracy
    assert np.array_equal(rec.result.predictions, int8.result.predictions)
    target = testbed.run_blocking(testbed.edge_target_ms(rec.config))
    assert target > 0 and np.all(rec.result.timings["edge_ms"] >= target)
    # the TPU's extra power (profile: 1.9 W for tpu-max) is charged
    assert rec.edge_energy_j > 0


def test_cloud_time_is_the_modelled_servers_and_the_tail_really_runs(testbed):
    assert testbed.cloud_timing == "model"
    assert "model:cloud-gpu-server (cloud:" in testbed.latency_source
    rec = testbed.run({**CONFIG, "split": 0, "edge_accel": "none"}, samples=20)
    target = testbed.run_blocking(testbed.cloud_target_ms(rec.config))
    # the profile's fit to DynaSplit's server CPU: 0.5 ms + the tail's counts
    assert 0.5 < target < 5
    t = rec.result.timings
    assert np.allclose(t["cloud_ms"], target) and np.all(t["decode_ms"] == 0)
    assert np.all(rec.result.extra["cloud_host_ms"] > 0)  # the tail ran on the host
    assert rec.accuracy >= 0.9
    assert rec.latency_ms == pytest.approx(rec.edge_ms + rec.transfer_ms + rec.cloud_ms)
    # the link is still emulated: never below the profile's round trip
    assert np.all(t["transfer_ms"] >= 2.25 * 0.99)
    # cloud energy: the profile's 800 W over the modelled time only
    assert rec.cloud_energy_j == pytest.approx(800 * target / 1e3, rel=1e-6)
    host = LocalTestbed(cloud_timing="host")
    assert host.cloud_timing == "host" and "cloud-gpu-server" not in host.latency_source
    with pytest.raises(ConfigError, match="unknown cloud timing 'gpu'; valid: model, host"):
        LocalTestbed(cloud_timing="gpu")


def test_profile_switching_waits_the_profiles_reconfiguration_time(testbed):
    """An online phase pays for hardware changes: with ``switching="profile"`` each change
    waits its time from the profile (one after another) and is reported; by default (a
    campaign's steady state) they take no time. (This testbed's cloud has no GPU to
    switch; test_policy.py checks the cloud's steps.)"""
    costs = {**testbed.edge_profile.reconfiguration, **testbed.cloud_profile.reconfiguration}
    testbed.run(CONFIG, samples=1)                               # TPU off, 1800 MHz
    instant = testbed.run({**CONFIG, "edge_accel": "tpu-std"}, samples=1)
    assert switch_time_ms(instant.knob_changes) < costs["tpu_power_on_ms"] / 10
    testbed.switching = "profile"
    try:
        def switch(change: dict) -> dict[str, float]:
            t0 = time.perf_counter()
            rec = testbed.run({**CONFIG, **change}, samples=1)
            took = (time.perf_counter() - t0) * 1e3
            assert took >= switch_time_ms(rec.knob_changes)     # really waited
            return {c.knob: c.duration_ms for c in rec.knob_changes if c.changed}

        # an event loop's timer may fire up to its clock's resolution early: 1 ms of slack
        mode = switch({"edge_accel": "tpu-max", "cpu_freq": 600})     # from tpu-std
        assert mode["cpu_freq"] > costs["cpu_freq_ms"] - 1
        assert costs["tpu_mode_switch_ms"] - 1 < mode["tpu_mode"] \
            < costs["tpu_mode_switch_ms"] + 200
        assert "tpu_power" not in mode
        assert switch({"edge_accel": "tpu-max", "cpu_freq": 600}) == {}   # nothing changes
        off = switch({"edge_accel": "int8", "cpu_freq": 1800})
        both = costs["tpu_power_off_ms"] + costs["cpu_freq_ms"]
        assert both - 1 < sum(off.values()) < both + 200                  # one after the other
        assert set(off) == {"cpu_freq", "tpu_power"}
    finally:
        testbed.switching = "instant"
    with pytest.raises(ConfigError, match="unknown switching 'slow'; valid: instant, profile"):
        LocalTestbed(switching="slow")


def test_link_comes_from_the_profile():
    tb = LocalTestbed()
    assert (tb.link.mbps, tb.link.rtt_ms) == (575.0, 2.25)
    fit = fit_splinter_link(SPLINTER_DIR / "simulation_pool_vgg16.csv")
    assert fit["rtt_ms"] == pytest.approx(2.25, abs=0.01)
    assert fit["mbps"] == pytest.approx(575.0, rel=0.01)
    assert "DynaSplit" in tb.edge_profile.link["source"]


def test_quota_timing_sets_the_calibrated_cgroup_quota(tmp_path):
    tb = LocalTestbed(edge_timing="quota", log_dir=tmp_path).start()
    try:
        if tb._quota is None:
            pytest.skip("cgroups are not writable on this machine")
        quota = tb._quota
        assert tb.edge_pid in quota.pids()
        tb.apply({**CONFIG, "cpu_freq": 1800})
        changes = tb.apply({**CONFIG, "cpu_freq": 600})
        assert changes[0].knob == "cpu_freq" and changes[0].changed and changes[0].verified
        files = ("cpu.cfs_quota_us", "cpu.cfs_period_us") if quota.version == 1 else (
            "cpu.max",)
        values = [int(x) for f in files for x in (quota.path / f).read_text().split()]
        # device int8 throughput at 600 MHz / the host's, from the cached calibration
        assert values[0] / values[1] == pytest.approx(tb.quota_cores(600, "int8"), rel=0.05)
        assert tb.quota_cores(600, "int8") < tb.quota_cores(1800, "int8") < 1
        assert not tb.apply({**CONFIG, "cpu_freq": 600})[0].changed
        assert tb.latency_source.startswith("model:raspberry-pi-4 (Edge TPU timing only")
    finally:
        tb.close()


def test_unknown_edge_timing_is_refused():
    with pytest.raises(ConfigError, match="unknown edge timing 'fast'; valid: pad, quota"):
        LocalTestbed(edge_timing="fast")


@pytest.mark.parametrize(("options", "message"), [
    ({"model": "vgg-16"}, "unknown model 'vgg-16'; valid: digits-cnn"),
    ({"model": None}, "unknown model None"),
    ({"model": "vgg16", "input_size": 0}, "input_size must be an integer >= 1, got 0"),
    ({"input_size": 64}, "digits-cnn has a fixed input"),
    ({"data": "/no/such/folder"}, "data folder /no/such/folder does not exist"),
    ({"cloud_profile": "raspberry-pi-4"}, r"profile 'raspberry-pi-4' has role 'edge'; here a "
                                          r"profile with role 'cloud' is needed \(shipped: "
                                          r"cloud-gpu-server\)"),
    ({"edge_profile": "cloud-gpu-server"}, "has role 'cloud'; here a profile with role 'edge'"),
])
def test_what_a_worker_would_fail_on_is_named_before_any_starts(options, message):
    """The constructor checks the model, its input size and the data folder: before,
    each was found by a worker process failing to start, seconds later."""
    with pytest.raises(ToolkitError, match=message):
        LocalTestbed(**options)


@pytest.mark.parametrize(("change", "message"), [
    ({"cpu_freq": 700}, "frequency 700 MHz is not in profile 'raspberry-pi-4'; valid: 600, 800"),
    ({"split": 10}, r"split 10 is out of range .* valid splits are 0\.\.9"),
    ({"edge_accel": "tpu"}, "unknown edge accelerator 'tpu'; valid: none, int8, tpu-std"),
    ({"cloud_accel": "gpu", "split": 2}, "not available on testbed 'local'; valid: none"),
    ({"split": 0, "edge_accel": "int8"}, "edge_accel must be 'none' at split 0"),
    ({"model": "nope"}, "unknown model 'nope'"),
])
def test_invalid_configurations_are_refused_with_the_valid_choices(testbed, change, message):
    with pytest.raises(Exception, match=message):
        testbed.run({**CONFIG, **change}, samples=1)


def test_profiles_are_validated_with_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[profile]\nname = "x"\nrole = "edge"\n[cpu]\nfrequencies_mhz = [600]\n'
                   'cores = 4\n[accelerators]\navailable = ["none"]\n[power]\n'
                   'busy_w = [1.0, 2.0]\nwait_w = [1.0]\nnetwork_j_per_byte = 0.0\n')
    with pytest.raises(ConfigError, match=r"bad.toml: key 'power.busy_w' should have 1 values"):
        LocalTestbed(bad)
    unreadable = tmp_path / "broken.toml"
    unreadable.write_text("[profile\n")
    with pytest.raises(ConfigError, match="cannot read device profile"):
        LocalTestbed(unreadable)
    with pytest.raises(ConfigError, match="shipped profiles: cloud-gpu-server, jetson-nano, "
                                          "raspberry-pi-3b, raspberry-pi-4"):
        LocalTestbed(Path("no-such-profile"))
