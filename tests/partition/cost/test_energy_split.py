"""Where the predicted energy goes: compute, communication (sent and received) and idle."""

from __future__ import annotations

import pytest

from toolkit.energy.model import PowerModel
from toolkit.errors import ConfigError
from toolkit.hardware.profile import load_profile
from toolkit.models.split import SplitModel
from toolkit.partition import (
    STRATEGIES,
    CostModel,
    EnergySplit,
    estimate_cost,
    estimate_hybrid_cost,
    hybrid_plan,
    partition,
)

PI4 = PowerModel(load_profile("raspberry-pi-4"))
J_PER_BYTE = load_profile("raspberry-pi-4").power.network_j_per_byte
BOARDS = ("raspberry-pi-4", "raspberry-pi-4", "raspberry-pi-3b", "jetson-nano")


def _parts(d) -> tuple[float, float, float]:
    return d.compute_energy_j, d.comm_energy_j, d.idle_energy_j


@pytest.mark.parametrize("idle", ["request", "busy"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_parts_sum_to_each_devices_energy(models, strategy, idle):
    model, _, _ = models("digits-cnn")
    cm = CostModel(device_profiles=BOARDS, idle=idle)
    cost = estimate_cost(partition(model, 4, strategy, speeds=cm.speeds(4)), cm)
    for d in cost.devices:
        compute, comm, waiting = _parts(d)
        assert compute + comm + waiting == d.energy_j  # exactly: energy_j is their sum
        assert compute > 0 or d.macs == 0
        assert (waiting == 0) if idle == "busy" else (waiting > 0)
    total = cost.energy_split
    assert total.total_j == pytest.approx(cost.energy_j, rel=1e-12)
    assert total.comm_j == pytest.approx(J_PER_BYTE * sum(
        d.sent_bytes + d.received_bytes for d in cost.devices))


def test_each_part_follows_its_formula(models):
    model, _, _ = models("vgg-stack")
    cost = estimate_cost(partition(model, 2, "output-channel"), CostModel(link_mbps=20))
    for d in cost.devices:
        assert d.sent_bytes > 0 and d.received_bytes > 0  # both directions are counted
        assert d.comm_energy_j == J_PER_BYTE * (d.sent_bytes + d.received_bytes)
        assert d.compute_energy_j == pytest.approx(PI4.busy_w(None) * d.compute_ms / 1e3)
        assert d.idle_energy_j == pytest.approx(
            PI4.wait_w(None) * (cost.latency_ms - d.compute_ms) / 1e3)
        # request accounting: the energy before the split, plus the bytes received
        before = PI4.energy_j(d.compute_ms / 1e3, (cost.latency_ms - d.compute_ms) / 1e3,
                              bytes_sent=d.sent_bytes)
        assert d.energy_j == pytest.approx(before + J_PER_BYTE * d.received_bytes)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_busy_accounting_drops_the_idle_energy_only(models, strategy):
    model, _, _ = models("mobilenet-stack")
    plan = partition(model, 3, strategy)
    request = estimate_cost(plan, CostModel(link_mbps=50))
    busy = estimate_cost(plan, CostModel(link_mbps=50, idle="busy"))
    assert busy.latency_ms == request.latency_ms
    for r, b in zip(request.devices, busy.devices, strict=True):
        assert b.idle_energy_j == 0 < r.idle_energy_j
        assert (b.compute_energy_j, b.comm_energy_j) == (r.compute_energy_j, r.comm_energy_j)
        assert b.energy_j == pytest.approx(r.energy_j - r.idle_energy_j)
    assert busy.energy_j < request.energy_j


def test_unequal_devices_split_with_their_own_profile(models):
    model, _, _ = models("vgg-stack")
    boards = ("raspberry-pi-4", "raspberry-pi-3b")
    cost = estimate_cost(partition(model, 2, "output-channel"), CostModel(device_profiles=boards))
    pi3 = cost.devices[1]
    power = PowerModel(load_profile("raspberry-pi-3b"))
    assert pi3.compute_energy_j == pytest.approx(power.busy_w(None) * pi3.compute_ms / 1e3)
    assert pi3.comm_energy_j == pytest.approx(load_profile("raspberry-pi-3b").power
                                              .network_j_per_byte
                                              * (pi3.sent_bytes + pi3.received_bytes))


@pytest.mark.parametrize("idle", ["request", "busy"])
def test_hybrid_devices_and_cloud_split(models, idle):
    model, _, _ = models("vgg-stack")
    plan = hybrid_plan(model, 2, 4, "spatial", "fp32", split_model=SplitModel(model))
    cost = estimate_hybrid_cost(plan, CostModel(idle=idle))
    first = cost.devices[0]
    assert first.comm_energy_j == J_PER_BYTE * (first.sent_bytes + first.received_bytes)
    assert first.received_bytes >= plan.output_bytes and first.sent_bytes > plan.activation_bytes
    for d in cost.devices:
        compute, comm, waiting = _parts(d)
        assert compute + comm + waiting == d.energy_j
        assert (d.idle_energy_j == 0) == (idle == "busy")
        if idle == "request":  # powered until the result is back from the cloud
            assert d.idle_energy_j == pytest.approx(
                PI4.wait_w(None) * (cost.latency_ms - d.compute_ms) / 1e3)
    split = cost.energy_split
    assert split.total_j == pytest.approx(cost.energy_j, rel=1e-12)
    edge = EnergySplit.sum(d.energy_split for d in cost.devices)
    assert split.compute_j == pytest.approx(edge.compute_j + cost.cloud_energy_j)  # cloud: compute
    assert (split.comm_j, split.idle_j) == (edge.comm_j, edge.idle_j)


def test_idle_accounting_is_checked():
    with pytest.raises(ConfigError, match=r"unknown idle accounting 'idle'; valid: request, busy"):
        CostModel(idle="idle")


def test_the_split_keys_and_accountings_have_one_home():
    from toolkit import config
    from toolkit.partition import ENERGY_SPLIT_KEYS, IDLE_ACCOUNTINGS, PARTITION_VARIABLES

    assert IDLE_ACCOUNTINGS is config.IDLE_ACCOUNTINGS and IDLE_ACCOUNTINGS[0] == "request"
    assert all(PARTITION_VARIABLES[k][0] == "J" for k in ENERGY_SPLIT_KEYS)  # cube variables
