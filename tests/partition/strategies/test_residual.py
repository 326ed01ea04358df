"""Residual networks (ResNet50, MobileNetV2): layer-wise and spatial plans are exact,
the channel strategies refuse them naming the residual Add."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from toolkit.errors import ToolkitError
from toolkit.models.split import SplitModel
from toolkit.partition import (
    Network,
    estimate_cost,
    execute_plan,
    partition,
    randomize_weights,
    read_model,
)

TOLERANCE = 1e-4
APPS = {"resnet50": keras.applications.ResNet50, "mobilenetv2": keras.applications.MobileNetV2}


@pytest.fixture(scope="module")
def residual():
    """Both models at 32x32 (weights=None, then seeded random weights, logits out),
    each with a seeded batch and its Keras output."""
    cache = {}

    def get(name: str):
        if name not in cache:
            model = APPS[name](weights=None, input_shape=(32, 32, 3), classes=10,
                               classifier_activation=None)
            randomize_weights(model, seed=4)
            x = np.random.default_rng(1).standard_normal((2, 32, 32, 3)).astype(np.float32)
            cache[name] = (model, x, np.asarray(model(x, training=False)))
        return cache[name]

    return get


def _exact(got: np.ndarray, expected: np.ndarray) -> bool:
    """Within 1e-4 of the output's scale (ResNet50's random logits reach ~10^3, where one
    float32 step is already 1e-4; MobileNetV2's stay near 1, so there it is absolute)."""
    scale = max(1.0, float(np.max(np.abs(expected))))
    error = float(np.max(np.abs(got - expected)))
    return got.shape == expected.shape and error <= TOLERANCE * scale


@pytest.mark.parametrize("n_devices", [2, 3, 4])
@pytest.mark.parametrize(("strategy", "options"), [
    ("layer-wise", {}), ("spatial", {"fuse": "none"}), ("spatial", {"fuse": 3}),
], ids=str)
@pytest.mark.parametrize("name", list(APPS))
def test_residual_plans_match_keras(residual, name, strategy, options, n_devices):
    model, x, expected = residual(name)
    plan = partition(model, n_devices, strategy, **options)
    assert _exact(execute_plan(plan, x), expected)
    active = [d for d in range(n_devices) if plan.computes(d)]
    assert len(active) == n_devices, "every device computes part of the network"
    cost = estimate_cost(plan)
    assert cost.latency_ms > 0 and len(cost.devices) == n_devices
    assert sum(d.sent_bytes for d in cost.devices) > 0


@pytest.mark.parametrize("name", list(APPS))
def test_outputs_are_not_trivially_small(residual, name):
    _, _, expected = residual(name)
    assert np.std(expected) > 100 * TOLERANCE


@pytest.mark.parametrize("name", list(APPS))
def test_spatial_fused_whole_and_unequal_speeds_are_exact(residual, name):
    model, x, expected = residual(name)
    assert _exact(execute_plan(partition(model, 2, "spatial"), x), expected)
    for strategy, options in (("layer-wise", {}), ("spatial", {"fuse": 2})):
        plan = partition(model, 3, strategy, speeds=[1.0, 0.25, 0.8], **options)
        assert _exact(execute_plan(plan, x), expected)


def test_layer_wise_cuts_only_where_the_split_engine_cuts(residual):
    model, _, _ = residual("resnet50")
    net = read_model(model)
    assert isinstance(net, Network)
    engine = {c.layer for c in SplitModel(model).cut_points}
    ours = {net.nodes[p - 1].name for p, _ in net.cuts[1:]}
    assert ours == engine - {model.layers[0].name}
    plan = partition(model, 4, "layer-wise")
    ends = [last for _, last in plan.options["blocks"][:-1]]
    assert set(ends) <= engine
    for stage in plan.stages:  # one tensor per cut
        assert len(stage.transfers) <= 1


def _uneven_branches() -> keras.Model:
    """A block whose shortcut sees farther than its main branch (5x5 dilated vs 1x1),
    then a strided layer: a halo taken from one branch only would be wrong."""
    L = keras.layers
    inputs = keras.Input((13, 11, 3))
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="stem")(inputs)
    main = L.Conv2D(6, 1, name="main")(x)
    short = L.Conv2D(6, 5, padding="same", dilation_rate=2, name="shortcut")(x)
    x = L.ReLU(name="out")(L.Add(name="join")([main, short]))
    x = L.Conv2D(8, 3, strides=2, padding="same", name="down")(x)
    x = L.Add(name="join2")([x, L.DepthwiseConv2D(3, padding="same", name="dw")(x)])
    x = L.Dense(5, name="logits")(L.GlobalAveragePooling2D(name="gap")(x))
    return randomize_weights(keras.Model(inputs, x, name="uneven"), seed=7)


@pytest.mark.parametrize("n_devices", [2, 3, 4])
@pytest.mark.parametrize("fuse", ["all", "none", 2])
def test_spatial_halo_is_the_union_over_the_branches(fuse, n_devices):
    model = _uneven_branches()
    x = np.random.default_rng(3).standard_normal((2, 13, 11, 3)).astype(np.float32)
    expected = np.asarray(model(x))
    plan = partition(model, n_devices, "spatial", fuse=fuse)
    assert np.max(np.abs(execute_plan(plan, x) - expected)) <= TOLERANCE
    if fuse == "all":  # one exchange at the input: device 1 reads 1 (stem) + 4 (shortcut)
        own = plan.stages[0].transfers  # rows above its band, and more for the stride
        assert any(t.dst == 1 and t.region.stop - t.region.start > 13 // n_devices + 4
                   for t in own)


@pytest.mark.parametrize("strategy", ["output-channel", "input-channel"])
@pytest.mark.parametrize(("name", "add"), [("resnet50", "conv2_block1_add"),
                                           ("mobilenetv2", "block_2_add")])
def test_channel_strategies_refuse_the_residual_add_by_name(residual, strategy, name, add):
    model, _, _ = residual(name)
    with pytest.raises(ToolkitError, match=rf"{strategy} cannot partition residual Add '{add}'"):
        partition(model, 2, strategy)


def test_a_join_other_than_add_is_refused_by_name():
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(4, 1, name="b")(inputs)
    x = keras.layers.Concatenate(name="join")([a, b])
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ToolkitError, match="layer 'join' of type Concatenate"):
        partition(model, 2, "layer-wise")


def test_layer_wise_on_a_network_takes_layer_costs_and_caps_devices():
    model = _uneven_branches()
    x = np.random.default_rng(3).standard_normal((2, 13, 11, 3)).astype(np.float32)
    names = list(dict.fromkeys(node.name for node in read_model(model).nodes))
    assert "join" in names and "join2" in names  # the adds are layers with a cost too
    costs = {name: 0.0 for name in names}
    costs["logits"] = 10.0  # all the cost at the end: the last device takes only the head
    plan = partition(model, 2, "layer-wise", layer_costs=costs)
    assert plan.options["balance"] == "layer_costs"
    assert plan.options["blocks"][1][-1] == "logits"
    assert np.max(np.abs(execute_plan(plan, x) - np.asarray(model(x)))) <= TOLERANCE
    parts = len(read_model(model).cuts) - 1
    with pytest.raises(ToolkitError, match=f"at most one device per part.*{parts} parts"):
        partition(model, parts + 1, "layer-wise")
    with pytest.raises(ToolkitError, match=r"missing: .*join"):
        partition(model, 2, "layer-wise", layer_costs={n: 1.0 for n in names if n != "join"})


@pytest.mark.parametrize("head", ["layer-wise", "spatial"])
def test_hybrid_plan_partitions_a_residual_head(residual, head):
    """The head up to a cut point after residual blocks runs on the devices, the tail in the
    cloud (the split engine's tail model); fp32 on the wire is exact."""
    from toolkit.partition import execute_hybrid, hybrid_plan

    model, x, expected = residual("mobilenetv2")
    sm = SplitModel(model)
    split = next(c.split for c in sm.cut_points if c.layer == "block_5_add")
    plan = hybrid_plan(model, 3, split, head, "fp32", split_model=sm)
    assert plan.layer == "block_5_add"
    assert plan.head.output_shape == sm.cut_points[split].shape
    assert all(plan.head.computes(d) for d in range(3))
    assert np.max(np.abs(execute_hybrid(plan, sm, x) - expected)) <= TOLERANCE
    with pytest.raises(ToolkitError, match="output-channel cannot partition residual Add"):
        hybrid_plan(model, 3, split, "output-channel", "fp32", split_model=sm)
