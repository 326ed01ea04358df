"""Choosing the hybrid plan by energy above an accuracy floor, and the energy–accuracy curve.

On the trained digits CNN (true labels of the scikit-learn digits evaluation
split) over three Raspberry Pi 4 devices, with the default cost and cloud models.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from toolkit import plots
from toolkit.config import CODECS
from toolkit.errors import ToolkitError
from toolkit.models import load_model
from toolkit.models.data import eval_data
from toolkit.models.split import SplitModel
from toolkit.partition import (
    HYBRID_OBJECTIVES,
    STRATEGIES,
    AccuracyFloorError,
    HybridAccuracy,
    choose_hybrid,
    execute_hybrid,
    hybrid_curve,
    hybrid_plan,
)

DEVICES = 3


@pytest.fixture(scope="module")
def digits():
    """The trained digits CNN, its split model and one accuracy cache for the module."""
    model = load_model("digits-cnn")
    sm = SplitModel(model, name="digits-cnn")
    return model, sm, HybridAccuracy(sm)


def choose(digits, **kwargs):
    model, sm, accuracy = digits
    return choose_hybrid(model, DEVICES, split_model=sm, accuracy=accuracy, **kwargs)


@pytest.mark.parametrize("objective", list(HYBRID_OBJECTIVES))
@pytest.mark.parametrize("floor", [None, 0.97])
def test_the_choice_has_the_least_energy_among_candidates_meeting_the_floor(
        digits, objective, floor):
    choice = choose(digits, objective=objective, min_accuracy=floor)
    df = choice.candidates
    # every cut with a layer on each side x every head that accepts it x every codec
    assert set(df["codec"]) == set(CODECS) and set(df["head_strategy"]) == set(STRATEGIES)
    assert df.attrs["label_source"] == "labels" and df.attrs["accuracy_samples"] == 360
    assert (df["energy_source"] == "model:raspberry-pi-4+model:cloud-gpu-server").all()
    column = {"total": "energy_j", "max": "max_device_energy_j"}[objective]
    meets = df if floor is None else df[df["accuracy"] >= floor]
    assert len(meets) < len(df) or floor is None  # the floor leaves some out
    best = meets[column].min()
    row = df[df["chosen"]].squeeze()
    assert df["chosen"].sum() == 1 and row[column] == best
    assert (choice.plan.split, choice.plan.head.strategy, choice.plan.codec) == (
        row["split"], row["head_strategy"], row["codec"])
    assert choice.accuracy == row["accuracy"] and (floor is None or choice.accuracy >= floor)
    cost = choice.cost
    energies = {"energy_j": cost.energy_j,
                "max_device_energy_j": max(d.energy_j for d in cost.devices)}
    assert energies[column] == pytest.approx(best, rel=1e-12)
    assert choice.as_dict() == {"objective": objective, "objective_column": column,
                                "min_accuracy": floor, "pinned": {}, "candidates": len(df),
                                "feasible_candidates": len(meets)}


def test_a_floor_excludes_the_cheaper_low_accuracy_codec(digits):
    free = choose(digits)
    assert free.plan.codec == "q1" and free.accuracy < 0.96  # binarised activation
    floored = choose(digits, min_accuracy=0.97)
    assert floored.plan.codec != "q1" and floored.accuracy >= 0.97
    assert floored.cost.energy_j > free.cost.energy_j


def test_total_and_max_objectives_pick_different_plans(digits):
    total, most = choose(digits, objective="total"), choose(digits, objective="max")
    assert (total.plan.split, total.plan.codec) != (most.plan.split, most.plan.codec)

    def device_max(choice):
        return max(d.energy_j for d in choice.cost.devices)

    # each is strictly better than the other on its own objective
    assert total.cost.energy_j < most.cost.energy_j
    assert device_max(most) < device_max(total)


def test_an_impossible_floor_names_the_best_accuracy(digits):
    best = choose(digits).candidates["accuracy"].max()
    with pytest.raises(AccuracyFloorError, match=rf"reaches accuracy 1 \(labels, 360 samples\): "
                                                 rf"the best reached is {best:.4f} \(split \d"):
        choose(digits, min_accuracy=1.0)


def test_pinned_choices_and_bad_arguments(digits):
    choice = choose(digits, split=3, strategy="output-channel", codec="int8")
    assert len(choice.candidates) == 1 and choice.pinned == {
        "split": 3, "strategy": "output-channel", "codec": "int8"}
    assert (choice.plan.split, choice.plan.head.strategy, choice.plan.codec) == (
        3, "output-channel", "int8")
    assert set(choose(digits, codec="q4").candidates["codec"]) == {"q4"}
    for kwargs, message in (({"objective": "mean"}, "unknown hybrid objective 'mean'"),
                            ({"min_accuracy": 1.5}, "min_accuracy must be a number in"),
                            ({"min_accuracy": True}, r"min_accuracy .*\[0, 1\], got True"),
                            ({"split": 9}, "valid splits: 1=conv1"),
                            ({"codec": "zip"}, "unknown codec 'zip'")):
        with pytest.raises(ToolkitError, match=message):
            choose(digits, **kwargs)


def test_a_model_is_given_as_a_keras_model_or_its_name(digits):
    from toolkit.partition import hybrid_candidates, hybrid_table

    _, _, accuracy = digits
    pinned = {"split": 3, "strategy": "output-channel", "codec": "int8"}
    by_name = choose_hybrid("digits-cnn", DEVICES, accuracy=accuracy, **pinned)
    assert by_name.candidates.drop(columns="model").equals(
        choose(digits, **pinned).candidates.drop(columns="model"))
    for call in (choose_hybrid, hybrid_candidates, hybrid_table):
        for value in (None, 3):
            with pytest.raises(ToolkitError, match=rf"^{call.__name__} needs a Keras model or a "
                                                   rf"model's name \(e.g. 'vgg-stack', "
                                                   rf"'digits-cnn'\), got {type(value).__name__}$"):
                call(value, DEVICES)
        with pytest.raises(ToolkitError, match="unknown model 'digits-cnm'; valid: vgg-stack"):
            call("digits-cnm", DEVICES)
    with pytest.raises(ToolkitError, match=r"^HybridAccuracy needs a SplitModel, e\.g\. "
                                           r"HybridAccuracy\(SplitModel\(load_model\("
                                           r"'digits-cnn'\)\)\), got str$"):
        HybridAccuracy("digits-cnn")


def test_packed_codecs_send_a_fraction_of_a_byte_per_value(digits):
    model, sm, _ = digits
    plan = hybrid_plan(model, 2, 3, "spatial", "q1", split_model=sm)
    assert plan.activation_bytes == math.ceil(math.prod(sm.cut_points[3].shape) / 8)


@pytest.mark.parametrize(("split", "codec"), [(2, "q1"), (3, "int8"), (5, "q2")])
def test_the_head_strategy_does_not_change_accuracy(digits, split, codec):
    """The cache's accuracy (unpartitioned head) is every exact head plan's."""
    model, sm, accuracy = digits
    data = eval_data(model)
    for strategy in STRATEGIES:
        try:
            plan = hybrid_plan(model, 2, split, strategy, codec, split_model=sm)
        except ToolkitError:  # layer-wise: fewer head layers than devices
            assert strategy == "layer-wise" and split < 2
            continue
        predictions = np.argmax(execute_hybrid(plan, sm, data.x_eval), axis=-1)
        assert np.mean(predictions == data.y_eval) == accuracy(split, codec)


def test_the_energy_accuracy_curve_is_a_trade_off(digits):
    choices_ = {o: choose(digits, objective=o) for o in HYBRID_OBJECTIVES}
    curves = []
    for objective, choice in choices_.items():
        candidates = choice.candidates
        curve = hybrid_curve(candidates, objective)
        column = HYBRID_OBJECTIVES[objective]
        assert len(curve) == len(candidates.drop_duplicates(["split", "codec"]))
        # per (cut, codec), the head strategy of least energy
        least = candidates.groupby(["split", "codec"])[column].min()
        assert np.allclose(curve.set_index(["split", "codec"])[column], least[
            list(curve.set_index(["split", "codec"]).index)])
        front = curve[curve["front"]].sort_values(column)
        # a real trade-off: several distinct points, more energy buys accuracy
        assert front[["accuracy", column]].drop_duplicates().shape[0] >= 2
        assert np.all(np.diff(front["accuracy"].to_numpy()) >= 0)
        assert front["accuracy"].iloc[-1] > front["accuracy"].iloc[0]
        for _, r in curve[~curve["front"]].iterrows():  # dominated: something is as good
            assert ((curve[column] <= r[column]) & (curve["accuracy"] >= r["accuracy"])).any()
        chosen = candidates[candidates["chosen"]].squeeze()
        assert chosen[column] == curve[column].min()
        curves.append(curve)
    both = pd.concat(curves, ignore_index=True)
    both.attrs = curves[0].attrs
    chosen = pd.concat([c.candidates[c.candidates["chosen"]].assign(objective=o)
                        for o, c in choices_.items()])
    fig = plots.partition_hybrid_curve(both, chosen=chosen)
    assert len(fig.axes) == 2
    assert "energy modelled: model:raspberry-pi-4+model:cloud-gpu-server" in (
        fig._suptitle.get_text())
    assert fig.axes[1].get_xlabel() == "energy per request [J]: most loaded device"
    assert fig.axes[0].get_ylabel() == "top-1 accuracy [1] (labels)"
    plt.close(fig)
