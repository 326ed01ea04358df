"""Every strategy computes what the unpartitioned model computes (fp32, 1e-4)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from toolkit.partition import STRATEGIES, chain_from_model, execute_plan, partition

TOLERANCE = 1e-4
MODELS = ["vgg-stack", "vgg-stack-logits", "mobilenet-stack", "mobilenet-stack-logits",
          "digits-cnn", "digits-cnn-logits"]
CASES = [(s, {}) for s in STRATEGIES if s != "spatial"] + [
    ("spatial", {"fuse": "all"}), ("spatial", {"fuse": "none"}), ("spatial", {"fuse": 2}),
]


@pytest.mark.parametrize("n_devices", [2, 3, 4])
@pytest.mark.parametrize(("strategy", "options"), CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("name", MODELS)
def test_plan_matches_model(models, name, strategy, options, n_devices):
    model, x, expected = models(name)
    plan = partition(model, n_devices, strategy, **options)
    got = execute_plan(plan, x)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= TOLERANCE
    assert plan.n_devices == n_devices
    active = [d for d in range(n_devices) if plan.computes(d)]
    assert len(active) >= 2, "a multi-device plan must give work to several devices"


@pytest.mark.parametrize(("strategy", "options"), CASES, ids=lambda v: str(v))
def test_every_supported_layer_type(models, strategy, options):
    model, x, expected = models("coverage")
    for n in (1, 3):
        plan = partition(model, n, strategy, **options)
        assert np.max(np.abs(execute_plan(plan, x) - expected)) <= TOLERANCE


def test_single_sample_and_one_device(models):
    model, x, expected = models("mobilenet-stack-logits")
    for strategy in STRATEGIES:
        plan = partition(model, 1, strategy)
        assert plan.sync_points == 0
        assert np.max(np.abs(execute_plan(plan, x[0]) - expected[0])) <= TOLERANCE


def test_outputs_are_not_trivially_small(models):
    """The logits variants make a wrong bias or activation show far above the tolerance."""
    for name in ("vgg-stack-logits", "mobilenet-stack-logits", "digits-cnn-logits"):
        _, _, expected = models(name)
        assert np.std(expected) > 100 * TOLERANCE


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_layer_called_twice_in_the_chain_runs_at_both_places(strategy):
    """The core's walker yields one node per call, so a shared layer is two ops."""
    layers = keras.layers
    shared = layers.ReLU(name="shared")
    inputs = keras.Input((8, 8, 3))
    x = shared(layers.Conv2D(4, 3, name="c1")(inputs))
    x = layers.Flatten()(shared(layers.Conv2D(4, 3, name="c2")(x)))
    model = keras.Model(inputs, x)
    batch = np.random.default_rng(2).standard_normal((2, 8, 8, 3)).astype(np.float32)
    assert [op.name for op in chain_from_model(model).ops].count("shared") == 2
    plan = partition(model, 2, strategy)
    assert np.max(np.abs(execute_plan(plan, batch) - np.asarray(model(batch)))) <= TOLERANCE


SPEEDS = [1.0, 0.25, 0.8]  # e.g. a Pi 4, a Pi 3B+ and a Jetson Nano's CPU


@pytest.mark.parametrize(("strategy", "options"), CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("name", ["vgg-stack-logits", "mobilenet-stack-logits", "digits-cnn"])
def test_plans_balanced_by_speed_match_the_model(models, name, strategy, options):
    model, x, expected = models(name)
    plan = partition(model, len(SPEEDS), strategy, speeds=SPEEDS, **options)
    assert np.max(np.abs(execute_plan(plan, x) - expected)) <= TOLERANCE
    assert plan.options["speeds"] == SPEEDS


def test_faster_devices_take_larger_shares(models):
    from toolkit.partition import estimate_cost

    model, _, _ = models("vgg-stack")
    for strategy in ("spatial", "output-channel", "input-channel"):
        equal = [d.macs for d in estimate_cost(partition(model, 3, strategy)).devices]
        macs = [d.macs for d in estimate_cost(partition(model, 3, strategy,
                                                        speeds=SPEEDS)).devices]
        assert macs[1] < macs[2] < macs[0], (strategy, macs)  # the speeds' order
        assert macs != equal
    blocks = partition(model, 2, "layer-wise", speeds=[1.0, 0.2]).options["blocks"]
    assert blocks != partition(model, 2, "layer-wise").options["blocks"]


def test_split_shares_and_speeds_are_checked():
    from toolkit.errors import ToolkitError
    from toolkit.partition.model.plan import split_shares
    from toolkit.partition.strategies.layerwise import balance_blocks

    assert split_shares(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert split_shares(10, 3, [1, 0.3, 1.2]) == [(0, 4), (4, 5), (5, 10)]  # 4, 1.2, 4.8
    assert split_shares(2, 3, [1, 1, 0.2]) == [(0, 1), (1, 2), (2, 2)]
    # equal devices: both cuts give a largest block of 4, the first sends fewer bytes;
    # a second device at half speed would take 8 there, so it gets the short block
    assert balance_blocks([2, 2, 2], [0, 1, 8], 2) == [(0, 1), (1, 3)]
    assert balance_blocks([2, 2, 2], [0, 1, 8], 2, speeds=[1.0, 0.5]) == [(0, 2), (2, 3)]
    for bad in ([1.0, 2.0], [1.0, 0.0, 1.0], [1.0, float("nan"), 1.0]):
        with pytest.raises(ToolkitError, match="needs one speed > 0 per device"):
            partition(keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)]),
                      3, "output-channel", speeds=bad)
