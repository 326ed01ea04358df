"""Study tables (predicted sweeps, crossovers, hybrid trade-offs) and their plots."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from refusals import assert_refused

from toolkit import plots
from toolkit.errors import ToolkitError
from toolkit.partition import (
    STRATEGIES,
    CostModel,
    crossovers,
    device_table,
    estimate_cost,
    hybrid_table,
    partition,
    predict_table,
    ranking_agreement,
)


def test_predict_table_matches_the_cost_model(models):
    model, _, _ = models("vgg-stack")
    df = predict_table(model, [2, 4], [10.0, 1000.0], model_name="vgg", progress=False,
                       cost_model=CostModel(rtt_ms=0.5))
    assert len(df) == len(STRATEGIES) * 2 * 2 and set(df["model"]) == {"vgg"}
    assert df.attrs["energy_source"] == "model:raspberry-pi-4" and df.attrs["predicted"]
    row = df[(df["strategy"] == "input-channel") & (df["devices"] == 4)
             & (df["link_mbps"] == 10.0)].iloc[0]
    cost = estimate_cost(partition(model, 4, "input-channel"),
                         CostModel(link_mbps=10.0, rtt_ms=0.5))
    assert row["max_device_energy_j"] == pytest.approx(max(d.energy_j for d in cost.devices))
    assert row["energy_j"] == pytest.approx(cost.energy_j)
    assert row["latency_ms"] == pytest.approx(cost.latency_ms)
    # a slower link never makes a plan cheaper
    slow = df[df["link_mbps"] == 10.0].set_index(["strategy", "devices"])["energy_j"]
    fast = df[df["link_mbps"] == 1000.0].set_index(["strategy", "devices"])["energy_j"]
    assert (slow >= fast).all()


def test_predict_table_keeps_every_setting_of_the_cost_model(models):
    """Fixed costs, idle accounting and unequal devices reach the prediction: only the
    link rate is swept."""
    model, _, _ = models("digits-cnn")
    boards = ("raspberry-pi-4", "raspberry-pi-3b")
    cm = CostModel(rtt_ms=0.5, step_overhead_ms=0.3, transfer_overhead_ms=0.2, idle="busy",
                   device_profiles=boards)
    df = predict_table(model, [2], [10.0], progress=False, cost_model=cm)
    for strategy in STRATEGIES:
        plan = partition(model, 2, strategy, speeds=cm.speeds(2))
        cost = estimate_cost(plan, CostModel(link_mbps=10.0, rtt_ms=0.5, step_overhead_ms=0.3,
                                             transfer_overhead_ms=0.2, idle="busy",
                                             device_profiles=boards))
        row = df[df["strategy"] == strategy].iloc[0]
        assert row["latency_ms"] == pytest.approx(cost.latency_ms)
        assert row["energy_j"] == pytest.approx(cost.energy_j)
    plain = predict_table(model, [2], [10.0], progress=False, cost_model=CostModel(rtt_ms=0.5))
    assert (df["latency_ms"].to_numpy() > plain["latency_ms"].to_numpy()).all()
    with pytest.raises(ToolkitError, match="2 device profiles"):
        predict_table(model, [4], [10.0], progress=False, cost_model=cm)


def _figures(rows: list[tuple[float, str, float]]) -> pd.DataFrame:
    """A tidy table of (link rate, strategy, max device energy) rows of one model on 2 devices."""
    return pd.DataFrame([{"model": "m", "devices": 2, "link_mbps": rate, "strategy": strategy,
                          "max_device_energy_j": energy} for rate, strategy, energy in rows])


def test_ranking_agreement_counts_winners_and_pairs():
    predicted = _figures([(10.0, "a", 1.0), (10.0, "b", 2.0), (10.0, "c", 3.0),
                          (1000.0, "a", 1.0), (1000.0, "b", 2.0), (50.0, "a", 1.0)])
    # two repeats of a at 10 Mbit/s: their mean (2.5) counts
    measured = _figures([(10.0, "a", 2.0), (10.0, "a", 3.0), (10.0, "b", 1.0), (10.0, "c", 4.0),
                         (1000.0, "a", 5.0), (1000.0, "b", 6.0), (1000.0, "d", 0.1),
                         (50.0, "a", 1.0)])
    df = ranking_agreement(predicted, measured)
    # 50 Mbit/s: one strategy only; d at 1000 Mbit/s: not predicted, left out
    assert df["link_mbps"].tolist() == [10.0, 1000.0]
    assert df[["predicted", "measured", "winner_agrees"]].values.tolist() == [
        ["a", "b", False], ["a", "a", True]]
    # 10 Mbit/s: (a,b) reversed, (a,c) and (b,c) kept; 1000 Mbit/s: (a,b) kept
    assert df["pairs_same"].tolist() == [2, 1] and df["pairs"].tolist() == [3, 1]
    assert df.attrs["winner"] == 0.5 and df.attrs["pairs"] == 0.75
    # a prediction equal to the measurement agrees everywhere
    same = ranking_agreement(measured, measured)
    assert same.attrs["winner"] == 1.0 and same.attrs["pairs"] == 1.0
    with pytest.raises(ToolkitError, match="the measured table has no column link_mbps"):
        ranking_agreement(predicted, measured.drop(columns="link_mbps"))


def test_crossovers_find_where_the_winner_changes():
    rates = np.array([1.0, 4.0, 16.0, 64.0])
    df = pd.DataFrame({
        "model": "m", "devices": 2, "link_mbps": np.tile(rates, 2),
        "strategy": ["a"] * 4 + ["b"] * 4,
        "max_device_energy_j": [1.0, 2.0, 3.0, 4.0, 2.0, 2.5, 2.0, 1.0],
    })
    marks = crossovers(df)
    assert marks[["below", "above", "from", "to"]].values.tolist() == [["a", "b", 4.0, 16.0]]
    assert marks["at"].iloc[0] == pytest.approx(8.0)
    assert crossovers(df[df["strategy"] == "a"]).empty


def test_hybrid_table_and_plots(models):
    model, _, _ = models("digits-cnn")
    hybrid = hybrid_table(model, 2, splits=[3, 5], codecs=("fp32", "int8"),
                          accuracy_samples=20, progress=False)
    assert hybrid[["split", "codec"]].values.tolist() == [[3, "fp32"], [3, "int8"],
                                                          [5, "fp32"], [5, "int8"]]
    assert (hybrid["energy_j"] > hybrid["edge_energy_j"]).all()
    int8 = hybrid[hybrid["codec"] == "int8"]["cloud_kb"].to_numpy()
    assert (int8 * 4 == hybrid[hybrid["codec"] == "fp32"]["cloud_kb"].to_numpy()).all()
    assert hybrid.attrs["energy_source"] == "model:raspberry-pi-4+model:cloud-gpu-server"

    fig = plots.partition_hybrid(hybrid, baseline=0.01)
    assert "modelled" in fig._suptitle.get_text()
    assert fig.axes[0].get_ylabel().startswith("energy per request [J]")
    plt.close(fig)

    pred = predict_table(model, [2], [1.0, 10.0, 100.0, 1000.0], progress=False)
    for fig in (plots.partition_energy(pred, col="devices", row="link_mbps", title="t"),
                plots.partition_crossover(pred, row=None, marks=crossovers(pred))):
        assert "energy modelled: model:raspberry-pi-4" in fig._suptitle.get_text()
        assert any("[J]" in ax.get_ylabel() for ax in fig.axes)
        plt.close(fig)


def test_device_table_puts_predictions_beside_measurements():
    run = {"model": "m", "strategy": "spatial", "devices": 2, "codec": "fp32",
           "per_device": [{"device": i, "energy_j": 0.2 + i, "latency_ms": 3.0, "compute_ms": 1.0,
                           "send_ms": 0.5, "recv_ms": 0.5, "sent_bytes": 100.0,
                           "energy_source": "model:raspberry-pi-4"} for i in range(2)],
           "predicted": {"per_device": [{"energy_j": 0.1, "latency_ms": 1.0}] * 2}}
    df = device_table([run], extra={"link_mbps": 10.0})
    assert df["measured_energy_j"].tolist() == [0.2, 1.2]
    assert df["predicted_energy_j"].tolist() == [0.1, 0.1]
    assert set(df["link_mbps"]) == {10.0}
    fig = plots.partition_predicted_vs_measured(df)
    assert "measured" in fig.axes[0].get_ylabel()
    plt.close(fig)


def test_tables_and_runs_of_the_wrong_kind_are_named():
    from toolkit.partition import hybrid_curve

    values = (None, 3.5)
    assert_refused(crossovers, values, r"crossovers needs a table \(predict_table rows\)")
    assert_refused(hybrid_curve, values, r"hybrid_curve needs a table \(hybrid_candidates rows "
                                         r"or HybridChoice.candidates\)")
    assert_refused(lambda v: ranking_agreement(v, pd.DataFrame()), values,
                   r"ranking_agreement: the predicted table should be a DataFrame \(e\.g\. "
                   r"predict_table rows\)")
    assert_refused(device_table, values, r"device_table needs a list of runs \(PartitionRun "
                                         r"objects or their as_dict\(\)\)")
    assert_refused(lambda v: predict_table(v, [2], [10.0]), values,
                   r"predict_table needs a Keras model or a model's name \(e\.g\. 'vgg-stack', "
                   r"'digits-cnn'\)")
    with pytest.raises(ToolkitError, match=r"^crossovers: the table has no column strategy, "
                                           r"link_mbps, max_device_energy_j; it needs"):
        crossovers(pd.DataFrame({"model": ["m"]}))
    with pytest.raises(ToolkitError, match=r"^run 1 of device_table's runs is no partition run "
                                           r"\(a PartitionRun or its as_dict\(\)\), got 'run'$"):
        device_table([{"per_device": []}, "run"])
    assert predict_table("vgg-stack", 2, 10.0, progress=False)["strategy"].nunique() > 1


def test_device_counts_link_rates_and_samples_out_of_range_are_named():
    from toolkit.partition import MAX_DEVICES, choose_hybrid, hybrid_table

    for count, message in ((0, "needs a number of devices >= 1, got 0"),
                           ("2", "needs a number of devices >= 1, got '2'"),
                           (MAX_DEVICES + 1, f"spreads over at most {MAX_DEVICES} devices")):
        with pytest.raises(ToolkitError, match=rf"^a plan {message}"):
            predict_table("digits-cnn", [count], [10.0], progress=False)
        with pytest.raises(ToolkitError, match=rf"^a plan {message}"):
            choose_hybrid("digits-cnn", count)
        with pytest.raises(ToolkitError, match=rf"^a plan {message}"):
            hybrid_table("digits-cnn", count)
        with pytest.raises(ToolkitError, match=rf"strategy 'spatial' {message}"):
            partition("digits-cnn", count, "spatial")
    for rates in ([None], ["fast"]):
        with pytest.raises(ToolkitError, match=r"^predict_table's link rates must be numbers of "
                                               r"Mbit/s > 0, got (None|'fast')$"):
            predict_table("digits-cnn", [2], rates, progress=False)
    with pytest.raises(ToolkitError, match="at least one device count and one link rate"):
        predict_table("digits-cnn", [2], [], progress=False)
    for samples in (0, -1, 2.5, "all"):
        with pytest.raises(ToolkitError, match=r"accuracy.samples must be an integer >= 1"):
            choose_hybrid("digits-cnn", 2, accuracy_samples=samples)
        with pytest.raises(ToolkitError, match=r"accuracy.samples must be an integer >= 1"):
            hybrid_table("digits-cnn", 2, accuracy_samples=samples)
