"""The local emulated testbed: real workers, cgroup throttling, modelled energy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit.devices.local import LocalTestbed
from toolkit.errors import ConfigError

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


def test_cpu_frequency_sets_the_cgroup_quota(testbed):
    if not testbed.throttled:
        pytest.skip("cgroups are not writable on this machine")
    quota = testbed._quota
    assert testbed.edge_pid in quota.pids()
    testbed.apply({**CONFIG, "cpu_freq": 1800})
    changes = testbed.apply({**CONFIG, "cpu_freq": 600})
    assert changes[0].knob == "cpu_freq" and changes[0].changed and changes[0].verified
    files = ("cpu.cfs_quota_us", "cpu.cfs_period_us") if quota.version == 1 else ("cpu.max",)
    values = [int(x) for f in files for x in (quota.path / f).read_text().split()]
    # one emulated core at 600/1800 MHz: a third of the period
    assert values[0] / values[1] == pytest.approx(1 / 3, rel=0.01)
    assert not testbed.apply({**CONFIG, "cpu_freq": 600})[0].changed


@pytest.mark.parametrize(("change", "message"), [
    ({"cpu_freq": 700}, "frequency 700 MHz is not in profile 'raspberry-pi-4'; valid: 600, 800"),
    ({"split": 10}, r"split 10 is out of range .* valid splits are 0\.\.9"),
    ({"edge_accel": "tpu-max"}, "not available on testbed 'local'; valid: none, int8"),
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
    with pytest.raises(ConfigError, match="shipped profiles: cloud-gpu-server, raspberry-pi-4"):
        LocalTestbed(Path("no-such-profile"))
