"""What an emulated device is like to the cost model: its throughput and fixed costs,
measured on this host (no worker is started here)."""

from __future__ import annotations

import asyncio

import pytest

from toolkit.devices.testbeds.calibration import host_calibration
from toolkit.partition import (
    CostModel,
    emulated_cost_model,
    emulated_macs_per_s,
    estimate_cost,
    partition,
)
from toolkit.partition.execution.emulation import host_overheads


def test_host_overheads_are_measured_even_inside_a_running_event_loop():
    """A notebook runs an event loop: the transfer micro-benchmark must not need its own."""

    async def from_a_notebook_cell() -> tuple[float, float]:
        return host_overheads.__wrapped__(3)  # uncached: measure again, here

    step_s, transfer_s = asyncio.run(from_a_notebook_cell())
    # one eager framework call, and one small tensor framed, sent and decoded on loopback
    assert 1e-6 < step_s < 0.05
    assert 1e-6 < transfer_s < 0.05


def test_emulated_cost_model_scales_the_fixed_costs_with_the_quota(models):
    host = host_calibration()
    step_s, transfer_s = host_overheads()
    full = emulated_cost_model(CostModel(rtt_ms=0.1), "raspberry-pi-4", throttled=False)
    assert full.macs_per_s == pytest.approx(host.fp32_gmacs * 1e9)
    assert full.step_overhead_ms == pytest.approx(step_s * 1e3)
    assert full.transfer_overhead_ms == pytest.approx(transfer_s / 2 * 1e3)
    assert full.rtt_ms == 0.1  # everything else is the given model's

    pi = emulated_cost_model(CostModel(), "raspberry-pi-4")
    slowdown = host.fp32_gmacs * 1e9 / emulated_macs_per_s("raspberry-pi-4")
    assert slowdown >= 1.0
    assert pi.macs_per_s == pytest.approx(full.macs_per_s / slowdown)
    assert pi.step_overhead_ms == pytest.approx(full.step_overhead_ms * slowdown)
    assert pi.transfer_overhead_ms == pytest.approx(full.transfer_overhead_ms * slowdown)

    # the fixed costs reach the prediction: a plan of many instructions pays them
    model, _, _ = models("digits-cnn")
    plan = partition(model, 2, "output-channel")
    bare = estimate_cost(plan, CostModel(macs_per_s=pi.macs_per_s))
    assert estimate_cost(plan, pi).latency_ms > bare.latency_ms + pi.step_overhead_ms
