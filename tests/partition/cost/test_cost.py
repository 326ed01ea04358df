"""Per-device costs: conservation, overheads, and the documented prediction formulas."""

from __future__ import annotations

import math

import pytest

from toolkit.energy.model import PowerModel
from toolkit.errors import ToolkitError
from toolkit.hardware.profile import load_profile
from toolkit.partition import (
    STRATEGIES,
    CostModel,
    chain_from_model,
    estimate_cost,
    partition,
)
from toolkit.partition.strategies.layerwise import balance_blocks
from toolkit.partition.strategies.spatial import fusion_groups

MODELS = ["vgg-stack", "mobilenet-stack", "digits-cnn"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("n_devices", [2, 4])
def test_macs_weights_and_traffic(models, name, n_devices):
    model, _, _ = models(name)
    chain = chain_from_model(model)
    single = {s: estimate_cost(partition(model, 1, s)) for s in STRATEGIES}
    weights = single["layer-wise"].devices[0].weight_bytes
    for strategy in STRATEGIES:
        assert single[strategy].macs == chain.macs()
        cost = estimate_cost(partition(model, n_devices, strategy))
        assert cost.macs >= chain.macs()
        if strategy != "spatial":  # no work is repeated, no weight is held twice
            assert cost.macs == chain.macs()
            assert sum(d.weight_bytes for d in cost.devices) == weights
        assert sum(d.sent_bytes for d in cost.devices) == sum(
            d.received_bytes for d in cost.devices) > 0
        assert cost.sync_points >= 1
        assert all(d.energy_source == "model:raspberry-pi-4" for d in cost.devices)


@pytest.mark.parametrize("name", MODELS)
def test_spatial_halo_overhead(models, name):
    model, _, _ = models(name)
    chain = chain_from_model(model)
    fused = estimate_cost(partition(model, 3, "spatial", fuse="all"))
    assert fused.macs > chain.macs()  # halo rows recomputed inside the fusion group
    plan = partition(model, 3, "spatial", fuse="none")
    assert estimate_cost(plan).macs == chain.macs()  # nothing recomputed ...
    inner = [s for s in plan.stages[1:-1] if s.transfers]
    assert inner and all(t.src != 0 or t.dst != 0 for s in inner for t in s.transfers)
    assert plan.sync_points > fused.sync_points  # ... but halos exchanged between layers
    halo_rows = sum(t.shape[0] for s in inner for t in s.transfers)
    assert halo_rows > 0


def test_one_device_prediction_follows_the_formulas(models):
    model, _, _ = models("vgg-stack")
    macs = chain_from_model(model).macs()
    power = PowerModel(load_profile("raspberry-pi-4"))
    cm = CostModel(macs_per_s=2e9)
    cost = estimate_cost(partition(model, 1, "output-channel"), cm)
    device = cost.devices[0]
    assert device.sent_bytes == device.received_bytes == device.sync_points == 0
    assert math.isclose(cost.latency_ms, macs / 2e9 * 1e3)
    assert math.isclose(device.energy_j, power.busy_w(None) * macs / 2e9)
    # peak: at least the largest op's input and output held together
    computes = partition(model, 1, "layer-wise").computes(0)
    largest = max(4 * (math.prod(c.in_shape) + math.prod(c.out_shape)) for c in computes)
    assert device.peak_activation_bytes >= largest


def test_link_rate_and_energy(models):
    model, _, _ = models("mobilenet-stack")
    plan = partition(model, 4, "input-channel")
    slow = estimate_cost(plan, CostModel(link_mbps=10))
    fast = estimate_cost(plan, CostModel(link_mbps=1000))
    assert slow.latency_ms > fast.latency_ms
    assert [d.compute_ms for d in slow.devices] == [d.compute_ms for d in fast.devices]
    power = PowerModel(load_profile("raspberry-pi-4"))
    for d in slow.devices:
        busy_s, wait_s = d.compute_ms / 1e3, (slow.latency_ms - d.compute_ms) / 1e3
        expected = power.energy_j(busy_s, wait_s, bytes_sent=d.sent_bytes + d.received_bytes)
        assert math.isclose(d.energy_j, expected)
        assert d.latency_ms <= slow.latency_ms + 1e-9
    assert math.isclose(slow.energy_j, sum(d.energy_j for d in slow.devices))


def test_fixed_costs_per_instruction_and_transfer(models):
    model, _, _ = models("digits-cnn")
    plan = partition(model, 2, "layer-wise")  # one device after the other: the costs add up
    steps = sum(len(st) for stage in plan.stages for st in stage.steps)
    transfers = sum(len(stage.transfers) for stage in plan.stages)
    assert steps > 2 and transfers == 2
    bare = estimate_cost(plan, CostModel())
    cost = estimate_cost(plan, CostModel(step_overhead_ms=0.5, transfer_overhead_ms=2.0))
    # each transfer costs its sender and its receiver
    assert cost.latency_ms == pytest.approx(bare.latency_ms + 0.5 * steps + 2 * 2.0 * transfers)
    for d, b in zip(cost.devices, bare.devices, strict=True):
        own = sum(len(stage.steps[d.device]) for stage in plan.stages)
        assert d.compute_ms == pytest.approx(b.compute_ms + 0.5 * own)  # busy: the steps only
    # a slower device pays them slower, like its MACs
    boards = ("raspberry-pi-4", "raspberry-pi-3b")
    slow = estimate_cost(plan, CostModel(device_profiles=boards, step_overhead_ms=0.5))
    bare_slow = estimate_cost(plan, CostModel(device_profiles=boards))
    speed = CostModel(device_profiles=boards).speeds(2)[1]
    own = sum(len(stage.steps[1]) for stage in plan.stages)
    assert slow.devices[1].compute_ms == pytest.approx(
        bare_slow.devices[1].compute_ms + 0.5 * own / speed)
    with pytest.raises(ToolkitError, match="step_overhead_ms must be a number >= 0"):
        CostModel(step_overhead_ms=-1)


def test_cost_model_parameters_are_checked():
    with pytest.raises(ToolkitError, match="link_mbps must be a number > 0, got 0"):
        CostModel(link_mbps=0)
    for key, value in (("link_mbps", float("inf")), ("macs_per_s", True), ("rtt_ms", math.inf),
                       ("link_mbps", "100"), ("transfer_overhead_ms", float("nan"))):
        with pytest.raises(ToolkitError, match=rf"{key} must be a number (> 0|>= 0), got "):
            CostModel(**{key: value})
    with pytest.raises(ToolkitError, match="frequency 123 MHz is not in profile"):
        CostModel(freq_mhz=123).power_model()
    with pytest.raises(ToolkitError, match="device profile 'no-such-board' not found"):
        CostModel(profile="no-such-board").power_model()


def _reference_ms(name: str) -> float:
    from toolkit.hardware.edge_timing import REFERENCE_BLOCK

    profile = load_profile(name)
    return profile.timing.time_ms(REFERENCE_BLOCK, profile.max_freq, "int8")


def test_devices_of_one_profile_predict_what_equal_devices_do(models):
    model, _, _ = models("vgg-stack")
    plan = partition(model, 3, "output-channel")
    listed = estimate_cost(plan, CostModel(device_profiles=("raspberry-pi-4",) * 3))
    assert listed.devices == estimate_cost(plan).devices
    assert listed.energy_source == "model:raspberry-pi-4"


def test_unequal_devices_compute_at_their_profiles_speed_and_power(models):
    model, _, _ = models("vgg-stack")
    plan = partition(model, 2, "output-channel")  # equal filter shares: equal MACs
    boards = ("raspberry-pi-4", "raspberry-pi-3b")
    cost = estimate_cost(plan, CostModel(device_profiles=boards))
    pi4, pi3 = cost.devices
    assert (pi4.profile, pi3.profile) == boards
    assert pi4.macs == pi3.macs
    slower = _reference_ms("raspberry-pi-3b") / _reference_ms("raspberry-pi-4")
    assert slower > 3  # the sources' ratio, and the Pi 3B+'s lower top clock
    assert pi3.compute_ms == pytest.approx(pi4.compute_ms * slower)
    assert pi4.compute_ms == pytest.approx(pi4.macs / 1e9 * 1e3)  # the Pi 4 is the reference
    assert cost.latency_ms > estimate_cost(plan).latency_ms  # the request waits for the Pi 3B+
    pi3_power = PowerModel(load_profile("raspberry-pi-3b"))
    busy, wait = pi3.compute_ms / 1e3, (cost.latency_ms - pi3.compute_ms) / 1e3
    assert pi3.energy_j == pytest.approx(pi3_power.energy_j(
        busy, wait, bytes_sent=pi3.sent_bytes + pi3.received_bytes))
    assert pi3.energy_source == "model:raspberry-pi-3b"
    assert cost.energy_source == "model:raspberry-pi-4+model:raspberry-pi-3b"


def test_device_profiles_are_checked(models):
    with pytest.raises(ToolkitError, match="device profile 'no-such-board' not found"):
        CostModel(device_profiles=("raspberry-pi-4", "no-such-board"))
    with pytest.raises(ToolkitError, match=r"no \[timing\.int8\] table"):
        CostModel(device_profiles=("raspberry-pi-4", "cloud-gpu-server"))
    model, _, _ = models("vgg-stack")
    plan = partition(model, 3, "spatial")
    with pytest.raises(ToolkitError, match=r"2 device profiles \(.*\) for a plan over 3 devices"):
        estimate_cost(plan, CostModel(device_profiles=("raspberry-pi-4", "jetson-nano")))
    jetson_at_1800 = CostModel(freq_mhz=1800, device_profiles=("raspberry-pi-4", "jetson-nano"))
    with pytest.raises(ToolkitError, match="frequency 1800 MHz is not in profile 'jetson-nano'"):
        estimate_cost(partition(model, 2, "spatial"), jetson_at_1800)


def test_balance_blocks():
    assert balance_blocks([1, 1, 1, 1], [0, 5, 5, 5], 2) == [(0, 2), (2, 4)]
    assert balance_blocks([4, 1, 1, 1, 1], [0, 1, 1, 1, 1], 2) == [(0, 1), (1, 5)]
    # equal largest block either way: the cut sending fewer bytes wins
    assert balance_blocks([2, 0, 0, 2], [0, 10, 1, 10], 2) == [(0, 2), (2, 4)]
    assert balance_blocks([3, 1, 2], [0, 1, 1], 3) == [(0, 1), (1, 2), (2, 3)]


def test_layer_wise_balances_by_given_times(models):
    model, _, _ = models("digits-cnn")
    names = [layer.name for layer in model.layers if layer.name != "dropout"]
    times = {n: (10.0 if n == "fc1" else 1.0) for n in names}
    plan = partition(model, 2, "layer-wise", layer_costs=times)
    assert plan.options["blocks"] == [["conv1", "flatten"], ["fc1", "predictions"]]
    by_macs = partition(model, 2, "layer-wise")
    # zero-MAC pool1 goes with the first block: the cut after it sends 4x fewer bytes
    assert by_macs.options["blocks"] == [["conv1", "pool1"], ["conv3", "predictions"]]


def test_fusion_groups(models):
    model, _, _ = models("vgg-stack")
    ops = chain_from_model(model).ops[:10]  # conv1 .. pool3, all spatial
    windowed = sum(op.windowed for op in ops)
    assert fusion_groups(ops, "all") == [(0, len(ops))]
    assert len(fusion_groups(ops, "none")) == windowed
    assert len(fusion_groups(ops, 2)) == math.ceil(windowed / 2)


def _core_macs_per_layer(model) -> dict[str, int]:
    """Layer name -> MACs by the core's counter, nested models flattened."""
    import keras

    from toolkit.models.graph import Graph
    from toolkit.models.macs import graph_macs

    graph = Graph(model)
    out: dict[str, int] = {}
    for node, macs in zip(graph.nodes, graph_macs(graph), strict=True):
        if isinstance(node.operation, keras.Model):
            out.update(_core_macs_per_layer(node.operation))
        else:
            out[node.name] = macs
    return out


@pytest.mark.parametrize("name", [*MODELS, "coverage", "zoo:digits-cnn", "zoo:digits-vgg"])
def test_macs_per_layer_agree_with_the_core_counter(models, name):
    from toolkit.models import load_model
    from toolkit.models.macs import model_macs

    model = load_model(name[4:]) if name.startswith("zoo:") else models(name)[0]
    chain = chain_from_model(model)
    by_ops: dict[str, int] = {}
    for op, macs in zip(chain.ops, chain.op_macs(), strict=True):
        by_ops[op.name] = by_ops.get(op.name, 0) + macs
    core = _core_macs_per_layer(model)
    assert set(by_ops) <= set(core)
    assert {layer: by_ops.get(layer, 0) for layer in core} == core
    assert sum(core.values()) > 0
    assert chain.macs() == model_macs(model)
