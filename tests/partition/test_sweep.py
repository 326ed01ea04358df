"""Study tables (predicted sweeps, crossovers, hybrid trade-offs) and their plots."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from toolkit import plots
from toolkit.partition import (
    STRATEGIES,
    CostModel,
    crossovers,
    device_table,
    estimate_cost,
    hybrid_table,
    partition,
    predict_table,
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
