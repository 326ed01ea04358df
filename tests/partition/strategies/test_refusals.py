"""Unsupported models, layers and options are refused with a message that helps."""

from __future__ import annotations

import keras
import pytest
from refusals import assert_refused

from toolkit.errors import ToolkitError
from toolkit.partition import STRATEGIES, partition

L = keras.layers


def _double(x):
    return 2 * x


def _seq(*layers, shape=(8, 8, 3), name="m"):
    return keras.Sequential([keras.Input(shape), *layers], name=name)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_unsupported_layer_names_layer_type_strategy_and_choices(strategy):
    model = _seq(L.Conv2D(4, 3), L.UpSampling2D(name="up"), L.Flatten(), L.Dense(3))
    with pytest.raises(ToolkitError) as err:
        partition(model, 2, strategy)
    text = str(err.value)
    for part in ("'up'", "UpSampling2D", repr(strategy), "supported layer types",
                 "Conv2D", "DepthwiseConv2D", "MaxPooling2D", "Dense"):
        assert part in text


@pytest.mark.parametrize("strategy", ["output-channel", "input-channel"])
def test_channel_strategies_refuse_a_residual_add_by_name(strategy):
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(3, 3, padding="same")(inputs)
    x = L.Add(name="skip")([x, inputs])
    with pytest.raises(ToolkitError, match=rf"{strategy} cannot partition residual Add 'skip'"):
        partition(keras.Model(inputs, x), 2, strategy)


def test_branches_may_join_only_in_an_add():
    inputs = keras.Input((8, 8, 3))
    a = L.Conv2D(3, 3, padding="same", name="a")(inputs)
    b = L.Conv2D(3, 3, padding="same", name="b")(inputs)  # reads the input, not a
    c = L.Conv2D(3, 3, padding="same", name="c")(L.Concatenate(name="cat")([a, b]))
    with pytest.raises(ToolkitError, match=r"'cat' of type Concatenate.*only join in an Add"):
        partition(keras.Model(inputs, c), 2, "layer-wise")


def test_spatial_needs_a_spatial_start():
    mlp = _seq(L.Flatten(name="flat"), L.Dense(5), shape=(8, 8, 1))
    with pytest.raises(ToolkitError, match="'spatial' cannot split layer 'flat' of type Flatten"):
        partition(mlp, 2, "spatial")
    for strategy in ("layer-wise", "output-channel", "input-channel"):
        assert partition(mlp, 2, strategy).n_devices == 2


@pytest.mark.parametrize(("layer", "why"), [
    (L.Conv2D(6, 3, groups=3, name="g"), "groups=3"),
    (L.Conv2D(4, 3, activation=_double, name="g"), "activation .* is not one of"),
    (L.BatchNormalization(axis=1, name="g"), "axis=1"),
])
def test_unsupported_layer_settings(layer, why):
    with pytest.raises(ToolkitError, match=f"layer 'g' of type .*{why}"):
        partition(_seq(layer, shape=(8, 8, 6)), 2, "input-channel")


def test_bad_arguments():
    model = _seq(L.Conv2D(4, 3), L.Flatten(), L.Dense(2))
    cases = [
        (lambda: partition(model, 0, "spatial"), "number of devices >= 1"),
        (lambda: partition(model, 2, "diagonal"), "valid: layer-wise, spatial, output-channel"),
        (lambda: partition(model, 2, "spatial", fuse="some"), "fuse must be 'all', 'none'"),
        (lambda: partition(model, 2, "layer-wise", fuse=2), "takes no option fuse"),
        (lambda: partition(model, 9, "layer-wise"), "at most one device per op"),
        (lambda: partition(model, 2, "layer-wise", layer_costs={"x": 1.0}),
         "missing: conv2d.*unknown: x"),
        (lambda: partition(model, 2, "spatial", input_shape=(9, 9, 3)), "does not match"),
    ]
    for call, message in cases:
        with pytest.raises(ToolkitError, match=message):
            call()


def test_open_input_shape_needs_input_shape():
    model = keras.Sequential([L.Conv2D(4, 3), L.Flatten(), L.Dense(2)])
    with pytest.raises(ToolkitError, match="no fixed input shape; give input_shape"):
        partition(model, 2, "output-channel")
    assert partition(model, 2, "output-channel", input_shape=(8, 8, 3)).output_shape == (2,)


def test_a_model_is_taken_by_name_and_what_is_no_model_is_named():
    """``partition("vgg-stack", 2, "spatial")`` loads the model as the command line
    does; None or a number was an AttributeError."""
    assert partition("vgg-stack", 2, "layer-wise").strategy == "layer-wise"
    for bad in (None, 3):
        with pytest.raises(ToolkitError, match=r"partition needs a Keras model, a Chain, a "
                                               r"Network or a model.s name .*got"):
            partition(bad, 2, "spatial")
    with pytest.raises(ToolkitError, match="unknown model 'nope'; valid: vgg-stack"):
        partition("nope", 2, "spatial")


def test_what_takes_a_plan_names_anything_else():
    from toolkit.partition import estimate_cost, estimate_stream, execute_plan

    plan = partition("digits-cnn", 2, "spatial")
    calls = {"estimate_cost": lambda p: estimate_cost(p),
             "estimate_stream": lambda p: estimate_stream(p, 2, 1.0),
             "execute_plan": lambda p: execute_plan(p, [0.0])}
    for name, call in calls.items():
        assert_refused(call, (None, "digits-cnn", plan.stages),
                       rf"{name} needs a PartitionPlan, e\.g\. from partition\(model, n_devices, "
                       r"strategy\)")
    with pytest.raises(ToolkitError, match=r"^execute_plan needs its input as numbers of shape "
                                           r"\(8, 8, 1\) \(or a batch of them\), got str$"):
        execute_plan(plan, "digits")
