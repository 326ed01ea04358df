"""Figures of the online phase: a trace replay per strategy, and the tail rule's
trade-off between thresholds met and energy.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import xarray as xr

from toolkit.fileio import check_table
from toolkit.plots.common import energy_label, figure_object

__all__ = ["simulation_summary", "tail_tradeoff"]


def simulation_summary(sim) -> plt.Figure:
    """A replay (:class:`toolkit.simulate.Simulation`): mean energy and threshold
    misses per strategy, side by side."""
    sim = figure_object(sim, "simulation_summary", ("table", "requests", "energy_source", "seed"),
                        "a Simulation (toolkit.simulate.simulate)")
    table = sim.table().reset_index()
    table["misses"] = 1.0 - table["qos_met"]
    order = list(table["strategy"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    sns.barplot(data=table, y="strategy", x="energy_j_mean", order=order, ax=left,
                color=sns.color_palette()[0])
    left.set_xlabel(energy_label(xr.Dataset(attrs={"energy_source": sim.energy_source}),
                                 "mean energy per request"))
    left.set_ylabel("strategy")
    sns.barplot(data=table, y="strategy", x="misses", order=order, ax=right,
                color=sns.color_palette()[3])
    right.set_xlabel("thresholds missed (fraction of requests)")
    right.set_ylabel("")
    for ax, column, fmt in ((left, "energy_j_mean", "{:.2f}"), (right, "misses", "{:.1%}")):
        for i, value in enumerate(table[column]):
            ax.text(value, i, " " + fmt.format(value), va="center", fontsize="small")
    n = int(sim.requests["request"].nunique())
    fig.suptitle(f"trace replay: {n} requests, seed {sim.seed}")
    fig.tight_layout()
    return fig


def tail_tradeoff(points: pd.DataFrame, energy_source: str = "unknown") -> plt.Figure:
    """The tail rule's trade-off: thresholds met vs energy as the target τ varies.

    Args:
        points: one row per run with ``target``, ``energy_j_mean`` and ``qos_met``
            (e.g. from ``benchmarks/online.py``), optionally ``confidence`` (one
            curve each) and ``label`` rows for reference strategies (no target).
        energy_source: where the energy figures come from.
    """
    points = check_table(points, "tail_tradeoff", ("target", "energy_j_mean", "qos_met"),
                          "one row per run of the tail rule, e.g. from benchmarks/online.py")
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    curves = points[points["target"].notna()]
    hue = "confidence" if "confidence" in curves and curves["confidence"].nunique() > 1 \
        else None
    sns.lineplot(data=curves, x="energy_j_mean", y="qos_met", hue=hue, marker="o",
                 sort=False, ax=ax, palette="viridis" if hue else None)
    for _, row in curves.iterrows():
        ax.annotate(f"τ={row['target']:g}", (row["energy_j_mean"], row["qos_met"]),
                    textcoords="offset points", xytext=(4, -10), fontsize="x-small")
    if "label" in points:
        for _, row in points[points["label"].notna()].iterrows():
            ax.scatter(row["energy_j_mean"], row["qos_met"], marker="x", color="black")
            ax.annotate(str(row["label"]), (row["energy_j_mean"], row["qos_met"]),
                        textcoords="offset points", xytext=(4, 4), fontsize="small")
    ax.set_xlabel(energy_label(xr.Dataset(attrs={"energy_source": energy_source}),
                               "mean energy per request"))
    ax.set_ylabel("thresholds met (fraction of requests)")
    ax.set_title("tail rule: buying thresholds met with energy")
    fig.tight_layout()
    return fig

