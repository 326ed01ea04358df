"""The predicted stream: hand-computed pipelines and turns, one request = estimate_cost."""

from __future__ import annotations

import pytest

from toolkit.energy.model import PowerModel
from toolkit.errors import ToolkitError
from toolkit.hardware.profile import load_profile
from toolkit.partition import (
    STRATEGIES,
    CostModel,
    estimate_cost,
    estimate_stream,
    estimate_turns,
    partition,
    pipelines,
    stream_figures,
)

#: a link fast enough to matter little, slow enough to count: the times are exact either way
MODEL = CostModel(macs_per_s=1e9, link_mbps=1000.0, rtt_ms=0.2)
#: with the fixed costs of a measured run's prediction (per instruction, per tensor sent or
#: received), on unequal devices, so that they scale with each device's speed
OVERHEADS = CostModel(macs_per_s=1e9, link_mbps=1000.0, rtt_ms=0.2, step_overhead_ms=0.05,
                      transfer_overhead_ms=0.1,
                      device_profiles=("raspberry-pi-4", "jetson-nano", "raspberry-pi-4"))


def _two_stages(models):
    """A 2-device layer-wise plan and its four resource times, seconds: device 0's
    compute a, the transfer 0->1 c, device 1's compute b, the result's transfer 1->0 d."""
    model, _, _ = models("digits-cnn")
    plan = partition(model, 2, "layer-wise")
    cost = estimate_cost(plan, MODEL)
    a, b = (dev.compute_ms / 1e3 for dev in cost.devices)
    rate = MODEL.link_mbps * 1e6 / 8
    (t01,), (t10,) = (s.transfers for s in plan.stages)
    assert (t01.src, t01.dst, t10.src, t10.dst) == (0, 1, 1, 0)
    return plan, cost, a, t01.nbytes / rate, b, t10.nbytes / rate


@pytest.mark.parametrize("cost_model", [MODEL, OVERHEADS], ids=["plain", "overheads"])
@pytest.mark.parametrize("name", ["digits-cnn", "vgg-stack"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_request_is_estimate_cost(models, name, strategy, cost_model):
    model, _, _ = models(name)
    plan = partition(model, 3, strategy)
    cost = estimate_cost(plan, cost_model)
    for pipelined in (True, False):
        stream = estimate_stream(plan, 1, 5.0, cost_model, pipelined=pipelined)
        assert stream.finish_ms[0] == pytest.approx(cost.latency_ms, rel=1e-12)
        assert stream.busy_ms == pytest.approx([d.compute_ms for d in cost.devices])
        assert sum(stream.energy_j) == pytest.approx(cost.energy_j, rel=1e-12)


def test_pipeline_of_two_stages_by_hand(models):
    plan, cost, a, c, b, d = _two_stages(models)
    half_rtt = MODEL.rtt_ms / 2e3
    k = 50
    stream = estimate_stream(plan, k, 0.0, MODEL)
    assert stream.pipelined
    # a flow shop of identical requests: the first takes every step, the others
    # follow one bottleneck step apart (the one-way delay is no resource's)
    bottleneck = max(a, c, b, d)
    for r, finish in enumerate(stream.finish_ms):
        assert finish / 1e3 == pytest.approx(a + c + b + d + 2 * half_rtt + r * bottleneck,
                                             rel=1e-9)
    figures = stream.as_dict()
    assert figures["throughput_rps"] == pytest.approx(
        k / (a + c + b + d + 2 * half_rtt + (k - 1) * bottleneck), rel=1e-9)
    assert figures["throughput_rps"] > 0.9 / bottleneck  # -> 1 / max(a, b, ...) for many requests
    # the same requests in turn: one request's latency apart
    turns = estimate_stream(plan, k, 0.0, MODEL, pipelined=False)
    latency = cost.latency_ms / 1e3
    assert turns.finish_ms == pytest.approx([(r + 1) * latency * 1e3 for r in range(k)])
    assert turns.as_dict()["throughput_rps"] == pytest.approx(1 / latency, rel=1e-9)
    assert stream.as_dict()["throughput_rps"] > 1.5 * turns.as_dict()["throughput_rps"]


def test_energy_is_the_stream_accounting(models):
    plan, cost, *_ = _two_stages(models)
    k, interval = 4, 10.0
    stream = estimate_stream(plan, k, interval, MODEL)
    power = PowerModel(load_profile("raspberry-pi-4"))
    duration = (k - 1) * interval / 1e3 + cost.latency_ms / 1e3  # arrivals far apart
    assert stream.end_ms / 1e3 == pytest.approx(duration)
    for dev, energy in zip(cost.devices, stream.energy_j, strict=True):
        busy = k * dev.compute_ms / 1e3
        assert energy == pytest.approx(
            power.busy_w(None) * busy + power.wait_w(None) * (duration - busy)
            + power.profile.power.network_j_per_byte * k * (dev.sent_bytes + dev.received_bytes))
    figures = stream.as_dict()
    assert figures["energy_per_request_j"] == pytest.approx(sum(stream.energy_j) / k)
    assert figures["energy_per_request_j"] > cost.energy_j  # the gaps between requests cost
    assert figures["p50_ms"] == pytest.approx(cost.latency_ms) == figures["p99_ms"]
    assert figures["energy_source"] == "model:raspberry-pi-4" and figures["predicted"]


def test_slow_arrivals_do_not_queue_and_fast_ones_do(models):
    plan, cost, *_ = _two_stages(models)
    slow = estimate_stream(plan, 6, 2 * cost.latency_ms, MODEL, pipelined=False)
    assert slow.latency_ms == pytest.approx([cost.latency_ms] * 6)
    fast = estimate_stream(plan, 6, 0.0, MODEL, pipelined=False)
    assert list(fast.latency_ms) == sorted(fast.latency_ms)  # each waits for those before
    assert fast.as_dict()["p99_ms"] > fast.as_dict()["p50_ms"] > cost.latency_ms


@pytest.mark.parametrize("interval", [0.0, 0.3, 3.0])
def test_turns_from_one_request_cost_match_the_schedule(models, interval):
    model, _, _ = models("digits-cnn")
    for strategy in ("spatial", "output-channel", "layer-wise"):
        plan = partition(model, 3, strategy)
        turns = estimate_turns(estimate_cost(plan, MODEL), 7, interval, MODEL)
        schedule = estimate_stream(plan, 7, interval, MODEL, pipelined=False)
        assert turns.finish_ms == pytest.approx(schedule.finish_ms, rel=1e-9)
        assert turns.energy_j == pytest.approx(schedule.energy_j, rel=1e-9)
        assert turns.busy_ms == pytest.approx(schedule.busy_ms, rel=1e-9)


def test_hybrid_turns_charge_the_cloud_per_request(models):
    from toolkit.partition import CloudModel, estimate_hybrid_cost, hybrid_plan

    model, _, _ = models("digits-cnn")
    cost = estimate_hybrid_cost(hybrid_plan(model, 2, 2, "spatial"), MODEL, CloudModel())
    turns = estimate_turns(cost, 3, 0.0, MODEL)
    assert turns.finish_ms == pytest.approx([cost.latency_ms * r for r in (1, 2, 3)])
    assert cost.cloud_energy_j > 0
    assert turns.cloud_energy_j == pytest.approx(3 * cost.cloud_energy_j)
    assert turns.as_dict()["energy_per_request_j"] == pytest.approx(cost.energy_j)


def test_only_layer_wise_pipelines():
    assert pipelines("layer-wise")
    assert not any(pipelines(s) for s in STRATEGIES if s != "layer-wise")


@pytest.mark.parametrize("requests, interval", [(0, 1.0), (1.5, 1.0), (True, 1.0), (2, -1.0),
                                                (2, float("nan")), (2, "1")])
def test_bad_streams_are_refused(models, requests, interval):
    model, _, _ = models("digits-cnn")
    with pytest.raises(ToolkitError, match=r"requests|interval_ms"):
        estimate_stream(partition(model, 2, "spatial"), requests, interval)


def test_stream_figures_by_hand():
    figures = stream_figures([0.0, 10.0, 20.0], [5.0, 17.0, 40.0], 0.3, 10.0)
    assert figures["throughput_rps"] == pytest.approx(3 / 0.040)
    assert figures["p50_ms"] == 7.0 and figures["mean_ms"] == pytest.approx(32 / 3)
    assert figures["p99_ms"] == pytest.approx(7.0 + 0.98 * 13.0)
    assert figures["energy_per_request_j"] == pytest.approx(0.1)
