"""Hybrid partitioning: the head over the edge devices, a codec, the tail in the cloud."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolkit.errors import ToolkitError
from toolkit.hardware.profile import load_profile
from toolkit.models import load_model
from toolkit.models.data import eval_data
from toolkit.models.split import SplitModel
from toolkit.partition import (
    STRATEGIES,
    CloudModel,
    CostModel,
    default_hybrid_split,
    estimate_cost,
    estimate_hybrid_cost,
    execute_hybrid,
    hybrid_plan,
)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("name", "split"), [("digits-cnn", 3), ("vgg-stack", 7)])
def test_fp32_hybrid_computes_the_model(models, name, split, strategy):
    model, x, reference = models(name)
    sm = SplitModel(model)
    plan = hybrid_plan(model, 2, split, strategy, "fp32", split_model=sm)
    assert plan.strategy == f"hybrid-{strategy}" and plan.layer == sm.cut_points[split].layer
    assert plan.activation_shape == sm.cut_points[split].shape
    assert np.max(np.abs(execute_hybrid(plan, sm, x) - reference)) <= 1e-4


def test_splits_without_a_layer_on_each_side_are_refused(models):
    model, _, _ = models("digits-cnn")
    sm = SplitModel(model)
    for split in (0, sm.last_split):
        with pytest.raises(ToolkitError, match=r"valid splits: 1=conv1, 2=conv2"):
            hybrid_plan(model, 2, split, split_model=sm)
    with pytest.raises(ToolkitError, match="unknown codec 'zip'"):
        hybrid_plan(model, 2, 3, codec="zip", split_model=sm)
    assert sm.cut_points[default_hybrid_split(sm)].bytes == min(
        sm.cut_points[k].bytes for k in range(1, sm.last_split))


def test_predicted_costs_follow_the_documented_formulas(models):
    model, _, _ = models("vgg-stack")
    sm = SplitModel(model)
    cost_model = CostModel(link_mbps=20.0, rtt_ms=1.0)
    cloud = CloudModel(macs_per_s=4e10, link_mbps=10.0, rtt_ms=6.0)
    costs = {}
    for codec in ("fp32", "int8"):
        plan = hybrid_plan(model, 3, 4, "output-channel", codec, split_model=sm)
        head = estimate_cost(plan.head, cost_model)
        cost = estimate_hybrid_cost(plan, cost_model, cloud)
        costs[codec] = cost
        act = math.prod(sm.cut_points[4].shape) * (4 if codec == "fp32" else 1)
        rate = 10e6 / 8
        cloud_s = sm.cut_points[4].tail_macs / 4e10
        expected = head.latency_ms / 1e3 + act / rate + 6e-3 + cloud_s + 4 * 10 / rate
        assert cost.cloud_bytes == act
        assert cost.latency_ms == pytest.approx(expected * 1e3)
        assert cost.devices[0].sent_bytes == head.devices[0].sent_bytes + act
        assert cost.cloud_energy_j == pytest.approx(800.0 * cloud_s)  # cloud-gpu-server busy
        assert cost.energy_j == pytest.approx(cost.edge_energy_j + cost.cloud_energy_j)
        assert cost.energy_source == "model:raspberry-pi-4+model:cloud-gpu-server"
    # a lossy codec sends fewer bytes: less link time and less energy on the edge
    assert costs["int8"].cloud_bytes * 4 == costs["fp32"].cloud_bytes
    assert costs["int8"].latency_ms < costs["fp32"].latency_ms
    assert costs["int8"].edge_energy_j < costs["fp32"].edge_energy_j


def test_int8_codec_keeps_the_trained_digits_accuracy():
    model = load_model("digits-cnn")
    data = eval_data(model)
    sm = SplitModel(model)
    plan = hybrid_plan(model, 2, 3, "spatial", "int8", split_model=sm)
    predictions = np.argmax(execute_hybrid(plan, sm, data.x_eval), axis=-1)
    assert data.label_source == "labels"
    assert np.mean(predictions == data.y_eval) >= 0.9


@pytest.mark.slow
def test_hybrid_runs_on_device_workers_and_a_cloud_worker(cluster):
    run = cluster.run("digits-cnn", "hybrid-spatial", 2, split=3, codec="int8", samples=40,
                      warmup=1)
    assert run.label_source == "labels" and run.accuracy >= 0.9
    assert run.split == 3 and run.codec == "int8" and run.strategy == "hybrid-spatial"
    assert run.cloud_bytes == run.predicted.cloud_bytes == 4 * 4 * 32  # int8 pool1 output
    for d, predicted in zip(run.devices, run.predicted.devices, strict=True):
        assert d.sent_bytes == predicted.sent_bytes
        assert d.received_bytes == predicted.received_bytes
    assert (run.cloud_ms > 0).all()
    busy = load_profile("cloud-gpu-server").power.busy_w[0]
    np.testing.assert_allclose(run.cloud_energy_j, busy * run.cloud_ms / 1e3)
    np.testing.assert_allclose(run.energy_j, run.edge_energy_j + run.cloud_energy_j)
    split = run.energy_split  # the cloud's energy is compute energy
    assert split.total_j == pytest.approx(float(np.mean(run.energy_j)), rel=1e-12)
    assert split.compute_j == pytest.approx(sum(d.compute_energy_j for d in run.devices)
                                            + float(np.mean(run.cloud_energy_j)))
    first = run.devices[0]  # sent the activation to the cloud, received the output
    assert first.comm_energy_j == pytest.approx(
        load_profile("raspberry-pi-4").power.network_j_per_byte
        * (first.frame_bytes + first.received_bytes), rel=1e-9)
    assert run.energy_source == "model:raspberry-pi-4+model:cloud-gpu-server"
    assert 0 < run.max_abs_error < 0.05  # int8 rounding of the activation, not a wrong plan
    exact = cluster.run("digits-cnn", "hybrid-input-channel", 2, split=5, codec="fp32",
                        samples=2, warmup=0)
    assert exact.max_abs_error <= 1e-4
