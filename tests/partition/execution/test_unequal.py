"""Unequal devices measured for real: each worker throttled to its own profile."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from toolkit.devices.testbeds.calibration import host_calibration, report
from toolkit.hardware.profile import load_profile
from toolkit.partition import PartitionCluster, emulated_macs_per_s, vgg_stack

pytestmark = pytest.mark.slow

BOARDS = ("raspberry-pi-4", "raspberry-pi-3b")


@pytest.fixture(scope="module")
def unequal(tmp_path_factory):
    """Two device workers: a Raspberry Pi 4 and a (slower) Raspberry Pi 3B+."""
    with PartitionCluster(2, device_profiles=BOARDS, run_timeout=300,
                          log_dir=tmp_path_factory.mktemp("unequal")) as c:
        yield c


def _quota_cores(quota) -> float:
    files = ("cpu.cfs_quota_us", "cpu.cfs_period_us") if quota.version == 1 else ("cpu.max",)
    values = [int(x) for f in files for x in (quota.path / f).read_text().split()]
    return values[0] / values[1]


def test_the_slower_device_is_throttled_more_and_computes_longer(unequal):
    x = np.random.default_rng(3).standard_normal((3, 32, 32, 3)).astype(np.float32)
    # equal shares: both devices do the same work, so their times differ by speed only
    run = unequal.run(vgg_stack(32), "output-channel", 2, inputs=x, warmup=1,
                      equal_shares=True)
    if not run.throttled:
        pytest.skip("cgroups are not writable on this machine")
    assert run.max_abs_error <= 1e-4
    fast, slow = run.devices
    assert fast.macs == slow.macs
    # the local testbed's rule: device fp32 throughput / the host's, in host cores
    host = host_calibration()
    for d, board in zip(run.devices, BOARDS, strict=True):
        profile = load_profile(board)
        expected = report(profile, host).quota_cores(profile.max_freq, "none")
        assert d.profile == board and not d.capped
        assert d.quota_cores == pytest.approx(expected, rel=1e-9)
        assert _quota_cores(unequal._quotas[d.device]) == pytest.approx(expected, rel=0.05)
    ratio = fast.quota_cores / slow.quota_cores  # about 3.9: the Pi 3B+ is that much slower
    assert ratio > 2
    # measured in one run: the slower device's compute takes clearly longer (loose bound,
    # the machine is shared; per-step overheads are throttled too)
    assert slow.compute_ms > 1.5 * fast.compute_ms
    # each device's energy is its own profile's power model of its measured times
    latency = float(np.mean(run.latency_ms))
    for d, board in zip(run.devices, BOARDS, strict=True):
        profile = load_profile(board)
        power, at = profile.power, profile.frequencies_mhz.index(profile.max_freq)
        busy = d.compute_ms + d.encode_ms
        expected = (power.busy_w[at] * busy + power.wait_w[at] * (latency - busy)) / 1e3 \
            + power.network_j_per_byte * (d.frame_bytes + d.received_bytes)
        assert d.energy_source == f"model:{board}"
        assert d.energy_j == pytest.approx(expected, rel=1e-6)
    assert run.energy_source == "model:raspberry-pi-4+model:raspberry-pi-3b"
    # the prediction uses each device's profile too
    assert [d.profile for d in run.predicted.devices] == list(BOARDS)
    assert run.predicted.devices[1].compute_ms > 2 * run.predicted.devices[0].compute_ms


def test_shares_follow_speed_by_default(unequal):
    x = np.random.default_rng(4).standard_normal((2, 32, 32, 3)).astype(np.float32)
    model = vgg_stack(32)
    run = unequal.run(model, "output-channel", 2, inputs=x, warmup=0)
    assert run.max_abs_error <= 1e-4
    fast, slow = run.devices
    assert slow.macs < 0.5 * fast.macs  # the Pi 3B+ gets the smaller share
    assert [d.macs for d in run.devices] == [d.macs for d in run.predicted.devices]


def test_unthrottled_runs_say_so(tmp_path):
    with PartitionCluster(2, device_profiles=BOARDS, throttle=False, log_dir=tmp_path) as c:
        run = c.run("digits-cnn", "spatial", 2, samples=2, warmup=0)
    assert not run.throttled
    assert [d.quota_cores for d in run.devices] == [None, None]
    assert [d.energy_source for d in run.devices] == [f"model:{b}" for b in BOARDS]


def test_cli_measures_a_list_of_profiles(capsys):
    from toolkit import cli

    status = cli.main(["partition", "digits-cnn", "--devices", ",".join(BOARDS),
                       "--strategy", "output-channel", "--measure", "--samples", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    entry = report["strategies"]["output-channel"]
    assert entry["measured"]["max_abs_error"] <= 1e-4
    assert entry["options"]["speeds"][1] < 0.5  # shares by speed, as predicted
    # predicted at the throughput the workers are throttled to, not the assumed 1 GMAC/s
    assert report["cost_model"]["macs_per_s"] == pytest.approx(
        emulated_macs_per_s("raspberry-pi-4"))
    for device, board in zip(entry["per_device"], BOARDS, strict=True):
        measured = device["measured"]
        assert device["profile"] == measured["profile"] == board
        assert measured["energy_source"] == f"model:{board}"
        assert (measured["quota_cores"] is not None) == entry["measured"]["throttled"]


def test_a_device_faster_than_one_host_core_is_capped(tmp_path):
    # no timing model: emulated_cores × f / f_max host cores, here 2 at the top frequency
    fast = dataclasses.replace(load_profile("raspberry-pi-4"), name="fast-board", timing=None,
                               emulated_cores=2)
    cluster = PartitionCluster(2, device_profiles=[fast, "raspberry-pi-3b"], log_dir=tmp_path)
    assert cluster.quota_cores(0, fast.max_freq) == (1.0, True)  # one worker thread's worth
    half = fast.frequencies_mhz[0]
    assert cluster.quota_cores(0, half) == (pytest.approx(2 * half / fast.max_freq), False)
    cores, capped = cluster.quota_cores(1, 1400)
    assert 0 < cores < 0.2 and not capped
