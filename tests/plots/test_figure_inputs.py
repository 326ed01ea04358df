"""What every figure of the online, optimizer and partition topics (and one run's
breakdown) says when it is given something else than its table or object."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from toolkit.errors import ToolkitError
from toolkit.plots import (
    hypervolume_history,
    partition_crossover,
    partition_energy,
    partition_hybrid,
    partition_hybrid_curve,
    partition_predicted_vs_measured,
    run_breakdown,
    simulation_summary,
    tail_tradeoff,
)

#: figure -> (what it names, the columns a table must have; None: it takes an object)
FIGURES = {
    hypervolume_history: ("a table (OptimizationResult.history)", "evaluations, hypervolume"),
    tail_tradeoff: ("a table (one row per run of the tail rule", "target, energy_j_mean, qos_met"),
    partition_energy: ("a table (predict_table rows",
                       "strategy, model, max_device_energy_j, devices"),
    partition_crossover: ("a table (predict_table rows over several link rates)",
                          "strategy, link_mbps, max_device_energy_j, devices, model"),
    partition_predicted_vs_measured: ("a table (device_table rows)",
                                      "predicted_energy_j, measured_energy_j, strategy, model"),
    partition_hybrid: ("a table (hybrid_table rows)",
                       "split, layer, codec, accuracy, edge_energy_j, energy_j"),
    partition_hybrid_curve: ("a table (hybrid_curve rows)",
                             "objective, accuracy, codec, layer, front"),
    simulation_summary: ("a Simulation (toolkit.simulate.simulate)", None),
    run_breakdown: ("a RunRecord (a testbed's run)", None),
}


@pytest.mark.parametrize("figure", FIGURES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("value", [None, 3, "table.csv", {"a": 1}])
def test_a_figure_names_what_it_needs(figure, value):
    wanted, _ = FIGURES[figure]
    with pytest.raises(ToolkitError, match=rf"^{figure.__name__} needs {re.escape(wanted)}.*, "
                                           rf"got {type(value).__name__}$"):
        figure(value)


@pytest.mark.parametrize("figure", [f for f, (_, columns) in FIGURES.items() if columns],
                         ids=lambda f: f.__name__)
def test_a_table_without_the_columns_is_named(figure):
    _, columns = FIGURES[figure]
    for table in (pd.DataFrame({"x": [1.0]}), [{"x": 1.0}]):
        with pytest.raises(ToolkitError, match=rf"^{figure.__name__}: the table has no column "
                                               rf"{columns}; it needs {columns} \("):
            figure(table)


def test_a_history_of_dicts_is_drawn_and_a_hybrid_curve_objective_is_checked():
    fig = hypervolume_history([{"evaluations": 1, "hypervolume": 0.2},
                               {"evaluations": 2, "hypervolume": 0.5}], reference=0.6)
    assert fig.axes[0].lines and "exhaustive front (0.6000)" in [
        t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    curve = pd.DataFrame({"objective": ["median"], "accuracy": [0.9], "codec": ["fp32"],
                          "layer": ["conv"], "front": [True]})
    with pytest.raises(ToolkitError, match=r"^partition_hybrid_curve: unknown objective "
                                           r"median; valid: total, max"):
        partition_hybrid_curve(curve)
    with pytest.raises(ToolkitError, match=r"the table has no column energy_j; it needs "
                                           r"energy_j \(hybrid_curve rows\)"):
        partition_hybrid_curve(curve.assign(objective="total"))
