"""Real execution of partition plans on device worker processes over TCP."""

from __future__ import annotations

import os
import signal
import socket
import threading

import numpy as np
import pytest

from toolkit.energy.model import PowerModel
from toolkit.energy.model_meter import PowerModelMeter
from toolkit.errors import ToolkitError
from toolkit.hardware.profile import load_profile
from toolkit.partition import STRATEGIES, Link, vgg_stack

pytestmark = pytest.mark.slow


def _expected_bytes(plan, device: int) -> tuple[int, int]:
    sent = sum(t.nbytes for s in plan.stages for t in s.outgoing(device))
    received = sum(t.nbytes for s in plan.stages for t in s.incoming(device))
    return sent, received


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_two_devices_compute_the_model_and_move_the_planned_bytes(cluster, models, strategy):
    model, x, reference = models("digits-cnn")
    run = cluster.run(model, strategy, 2, inputs=x, warmup=1)
    assert run.samples == len(x) and run.n_devices == 2
    assert np.max(np.abs(run.outputs - reference)) <= 1e-4
    assert run.max_abs_error <= 1e-4
    plan = cluster.plan(model, strategy, 2)
    assert run.sync_points == plan.sync_points
    for d, predicted in zip(run.devices, run.predicted.devices, strict=True):
        sent, received = _expected_bytes(plan, d.device)
        assert d.sent_bytes == sent == predicted.sent_bytes
        assert d.received_bytes == received == predicted.received_bytes
        assert d.frame_bytes > d.sent_bytes or sent == 0  # frame headers on the wire
        assert d.macs == predicted.macs
        assert d.compute_ms > 0 or d.macs == 0
        assert d.latency_ms > 0


def test_four_devices_on_a_vgg_stack(cluster):
    x = np.random.default_rng(7).standard_normal((2, 32, 32, 3)).astype(np.float32)
    run = cluster.run("vgg-stack", "spatial", 4, inputs=x, fuse="none", warmup=1)
    reference = np.asarray(vgg_stack(32)(x, training=False))  # reproducible weights
    assert np.max(np.abs(run.outputs - reference)) <= 1e-4
    assert len(run.devices) == 4 and all(d.sent_bytes > 0 for d in run.devices)
    assert [d.sent_bytes for d in run.devices] == [d.sent_bytes for d in run.predicted.devices]


def test_energy_follows_the_power_model_of_the_measured_times(cluster, models):
    model, x, _ = models("digits-cnn")
    run = cluster.run(model, "output-channel", 2, inputs=x, cpu_freq=1200, warmup=1)
    profile = load_profile("raspberry-pi-4")
    at = profile.frequencies_mhz.index(1200)
    busy, wait = profile.power.busy_w[at], profile.power.wait_w[at]
    latency = float(np.mean(run.latency_ms))
    for d in run.devices:
        compute = d.compute_ms + d.encode_ms
        moved = d.frame_bytes + d.received_bytes
        assert d.energy_source == d.energy_split_source == "model:raspberry-pi-4"
        # the split: compute, bytes on the wire and received, idle until the request ends
        assert d.compute_energy_j == pytest.approx(busy * compute / 1e3, rel=1e-9)
        assert d.comm_energy_j == pytest.approx(profile.power.network_j_per_byte * moved,
                                                rel=1e-9)
        assert d.received_bytes > 0 and d.comm_energy_j > 0
        # idle is counted per sample and never negative: a sample whose measured compute
        # outlasts its request (timers on a loaded host) adds none, so the mean times give
        # a lower bound; being powered all request long, the upper one
        idle_from_means = wait * (latency - compute) / 1e3
        assert idle_from_means * (1 - 1e-6) <= d.idle_energy_j <= wait * latency / 1e3
        assert d.compute_energy_j + d.comm_energy_j + d.idle_energy_j == d.energy_j
    assert float(np.mean(run.energy_j)) == pytest.approx(sum(d.energy_j for d in run.devices))
    assert run.cpu_freq == 1200 and run.cloud_energy_j.sum() == 0
    row = run.cube_row()
    assert row["strategy"] == "output-channel" and row["devices"] == 2
    assert row["max_device_energy_j"] == max(d.energy_j for d in run.devices)
    parts = [row[k] for k in ("compute_energy_j", "comm_energy_j", "idle_energy_j")]
    assert sum(parts) == pytest.approx(row["energy_j"], rel=1e-12)
    assert parts[1] == pytest.approx(sum(d.comm_energy_j for d in run.devices))


def test_busy_accounting_and_metered_devices_split_the_measured_energy(cluster, models):
    model, x, _ = models("digits-cnn")
    profile = load_profile("raspberry-pi-4")
    busy = cluster.run(model, "spatial", 2, inputs=x, warmup=1, idle="busy")
    assert busy.idle == "busy" and busy.as_dict()["idle_accounting"] == "busy"
    for d, predicted in zip(busy.devices, busy.predicted.devices, strict=True):
        assert d.idle_energy_j == predicted.idle_energy_j == 0
        assert d.energy_j == d.compute_energy_j + d.comm_energy_j > 0
        assert d.energy_j == pytest.approx(
            profile.power.busy_w[-1] * (d.compute_ms + d.encode_ms) / 1e3
            + profile.power.network_j_per_byte * (d.frame_bytes + d.received_bytes), rel=1e-9)

    power = PowerModel(profile)
    metered = cluster.run(model, "spatial", 2, inputs=x, warmup=1, idle="busy",
                          meters=lambda i, pid: PowerModelMeter(power, pid, period_s=0.01))
    latency = float(np.mean(metered.latency_ms))
    for d in metered.devices:
        # the meter's total, shared in the power model's request proportions (a meter
        # counts whatever the device drew, whatever the accounting)
        assert d.energy_split_source == "model:raspberry-pi-4 split by model:raspberry-pi-4"
        compute = power.busy_w(None) * (d.compute_ms + d.encode_ms) / 1e3
        comm = profile.power.network_j_per_byte * (d.frame_bytes + d.received_bytes)
        assert d.compute_energy_j / d.comm_energy_j == pytest.approx(compute / comm, rel=1e-9)
        assert d.idle_energy_j > 0 and latency > d.compute_ms
        assert d.compute_energy_j + d.comm_energy_j + d.idle_energy_j == d.energy_j > 0


def test_emulated_link_delays_every_transfer(cluster, models):
    model, x, _ = models("digits-cnn")
    link = Link(mbps=2.0, rtt_ms=4.0)
    run = cluster.run(model, "layer-wise", 2, inputs=x, link=link, warmup=0)
    transfers = [t for s in cluster.plan(model, "layer-wise", 2).stages for t in s.transfers]
    assert len(transfers) == 2  # the activation to device 1, the result back
    floor_ms = sum(link.rtt_ms / 2 + t.nbytes * 8 / 2e6 * 1e3 for t in transfers)
    assert (run.latency_ms >= floor_ms).all()


def test_a_worker_killed_mid_run_gives_a_clear_error_then_recovers(cluster, models):
    model, x, reference = models("digits-cnn")
    cluster.run(model, "layer-wise", 3, inputs=x, warmup=0)  # devices 0..2 are up
    victim = cluster.pids[1]
    timer = threading.Timer(1.0, os.kill, (victim, signal.SIGKILL))
    timer.start()
    try:
        with pytest.raises(ToolkitError, match=rf"device 1 \(pid {victim}\) exited with "
                                               r"status -9 during (the run|configuration)"):
            cluster.run(model, "layer-wise", 3, samples=400, inputs="random",
                        link=Link(1.0, 10.0), warmup=0)
    finally:
        timer.cancel()
    run = cluster.run(model, "layer-wise", 3, inputs=x, warmup=0)  # the worker is restarted
    assert cluster.pids[1] != victim
    assert np.max(np.abs(run.outputs - reference)) <= 1e-4


def test_bad_arguments_are_refused_before_any_run(cluster, models):
    model, x, _ = models("digits-cnn")
    with pytest.raises(ToolkitError, match="needs 5 devices; this cluster has 4"):
        cluster.run(model, "spatial", 5, inputs=x)
    with pytest.raises(ToolkitError, match="unknown strategy 'diagonal'; valid: layer-wise"):
        cluster.run(model, "diagonal", 2, inputs=x)
    with pytest.raises(ToolkitError, match="frequency 1234 MHz is not in profile"):
        cluster.run(model, "spatial", 2, inputs=x, cpu_freq=1234)
    with pytest.raises(ToolkitError, match="needs a split"):
        cluster.run(model, "hybrid-spatial", 2, inputs=x)


def test_a_malformed_connection_is_closed_and_the_device_keeps_serving(cluster, models):
    model, x, reference = models("digits-cnn")
    cluster.run(model, "spatial", 2, inputs=x, warmup=0)
    host, port = cluster.addresses[1]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(64))
        assert sock.recv(1024) == b""  # bad magic: the worker closes this connection only
    run = cluster.run(model, "spatial", 2, inputs=x, warmup=0)
    assert np.max(np.abs(run.outputs - reference)) <= 1e-4


@pytest.mark.parametrize("strategy", ["layer-wise", "spatial"])
def test_a_residual_network_runs_on_the_workers(cluster, strategy):
    """mobilenetv2 (weights=None, seeded, 32x32 by default) by name: every worker builds the
    same network and the plan's residual adds run where the plan puts them."""
    from toolkit.partition import load_partition_model

    x = np.random.default_rng(5).standard_normal((2, 32, 32, 3)).astype(np.float32)
    run = cluster.run("mobilenetv2", strategy, 3, inputs=x, fuse="none", warmup=1)
    reference = np.asarray(load_partition_model("mobilenetv2")(x, training=False))
    assert np.max(np.abs(run.outputs - reference)) <= 1e-4
    assert [d.sent_bytes for d in run.devices] == [d.sent_bytes for d in run.predicted.devices]
    assert all(d.macs > 0 for d in run.devices)
