"""Figures of multi-device partitioning: per-device energy by strategy, the
crossover between strategies, predicted vs measured, hybrid plans and their
energy–accuracy curve.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from toolkit.errors import ToolkitError, choices
from toolkit.fileio import check_table
from toolkit.plots.common import energy_kind, source_of

__all__ = [
    "partition_crossover",
    "partition_energy",
    "partition_hybrid",
    "partition_hybrid_curve",
    "partition_predicted_vs_measured",
]


_PARTITION_ENERGY = {"max_device_energy_j": "most loaded device",
                     "mean_device_energy_j": "mean per device",
                     "edge_energy_j": "edge devices", "energy_j": "edge + cloud",
                     "measured_energy_j": "measured, per device",
                     "predicted_energy_j": "predicted, per device"}


def _energy_axis(name: str) -> str:
    """A short energy axis label; :func:`_energy_note` says where the figures come from."""
    return f"energy per request [J]: {_PARTITION_ENERGY.get(name, name)}"


def _energy_note(df: pd.DataFrame, energy_source: str | None) -> str:
    source = source_of(df, energy_source)
    return f"energy {energy_kind(source)}: {source}"


def _facet_title(grid, title: str | None, df: pd.DataFrame, energy_source: str | None) -> None:
    note = _energy_note(df, energy_source)
    grid.figure.suptitle(f"{title}\n({note})" if title else f"({note})",
                         y=1.07 if title else 1.03)


def partition_energy(df: pd.DataFrame, y: str = "max_device_energy_j", *, x: str = "model",
                     col: str | None = "devices", row: str | None = None, log: bool = True,
                     energy_source: str | None = None, title: str | None = None) -> plt.Figure:
    """Per-device energy of each partitioning strategy, as grouped bars.

    Args:
        df: one row per run or prediction with ``strategy``, ``x`` and ``y``
            columns (e.g. :func:`toolkit.partition.predict_table` or a partition
            cube's :func:`~toolkit.cube.to_dataframe`); several rows per bar are
            averaged (error bars: their spread).
        y: the energy column.
        x: the column along the x axis.
        col, row: columns to facet by (e.g. ``devices``, ``link_mbps``).
        log: logarithmic energy axis.
        energy_source: where the energies come from (default ``df.attrs``).
        title: the figure title.
    """
    df = check_table(df, "partition_energy", ("strategy", x, y, *(c for c in (col, row) if c)),
                      "predict_table rows or a partition cube's to_dataframe")
    grid = sns.catplot(data=df, kind="bar", x=x, y=y, hue="strategy", col=col, row=row,
                       height=3.4, aspect=1.25, errorbar=("pi", 100), sharey=True)
    if log:
        grid.set(yscale="log")
    grid.set_axis_labels(x, _energy_axis(y))
    grid.set_titles(**({"template": "{row_var} {row_name} | {col_var} {col_name}"}
                       if row and col else {}))
    _facet_title(grid, title, df, energy_source)
    return grid.figure


def partition_crossover(df: pd.DataFrame, y: str = "max_device_energy_j", *,
                        x: str = "link_mbps", col: str | None = "devices",
                        row: str | None = "model", marks: pd.DataFrame | None = None,
                        energy_source: str | None = None, title: str | None = None
                        ) -> plt.Figure:
    """Energy of each strategy along a swept link rate, with the crossovers marked.

    Args:
        df: e.g. :func:`toolkit.partition.predict_table` over many link rates.
        y: the energy column.
        x: the swept column (log axis).
        col, row: columns to facet by.
        marks: :func:`toolkit.partition.crossovers` of ``df``: a dashed line at
            each ``at``, labelled with the strategy that wins above it.
        energy_source: where the energies come from (default ``df.attrs``).
        title: the figure title.
    """
    df = check_table(df, "partition_crossover", ("strategy", x, y, *(c for c in (col, row) if c)),
                      "predict_table rows over several link rates")
    grid = sns.relplot(data=df, kind="line", x=x, y=y, hue="strategy", col=col, row=row,
                       height=3.2, aspect=1.3, facet_kws={"sharey": False})
    grid.set(xscale="log", yscale="log")
    grid.set_axis_labels("link rate [Mbit/s]" if x == "link_mbps" else x,
                         _energy_axis(y))
    facets = [c for c in (row, col) if c]
    if marks is not None and not marks.empty:
        for key, ax in grid.axes_dict.items():
            values = key if isinstance(key, tuple) else (key,)
            here = marks
            for column, value in zip(facets, values, strict=True):
                here = here[here[column] == value]
            for _, m in here.iterrows():
                ax.axvline(m["at"], color="grey", linestyle="--", linewidth=1)
                ax.annotate(f"{m['above']} →", (m["at"], 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -12), textcoords="offset points", fontsize="x-small")
    _facet_title(grid, title or "crossovers along the link rate", df, energy_source)
    return grid.figure


def partition_predicted_vs_measured(df: pd.DataFrame, what: str = "energy_j", *,
                                    hue: str = "strategy", style: str | None = "model",
                                    energy_source: str | None = None) -> plt.Figure:
    """Each device's measured figure against its prediction, with the line y = x.

    Args:
        df: :func:`toolkit.partition.device_table` rows (``predicted_<what>`` and
            ``measured_<what>`` columns).
        what: ``energy_j`` or ``latency_ms``.
        hue, style: columns for colour and marker.
        energy_source: where the measured energies come from (default ``df.attrs``).
    """
    xcol, ycol = f"predicted_{what}", f"measured_{what}"
    df = check_table(df, "partition_predicted_vs_measured",
                      (xcol, ycol, *(c for c in (hue, style) if c)), "device_table rows")
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    sns.scatterplot(data=df, x=xcol, y=ycol, hue=hue, style=style, s=55, ax=ax)
    low = float(min(df[xcol].min(), df[ycol].min()))
    high = float(max(df[xcol].max(), df[ycol].max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="y = x")
    ax.set(xscale="log", yscale="log")
    if what == "energy_j":
        ax.set_xlabel("predicted device energy per request [J] (cost model)")
        ax.set_ylabel("measured device energy per request [J]")
        ax.set_title(f"per device: measured vs predicted\n({_energy_note(df, energy_source)})",
                     fontsize="medium")
    else:
        ax.set_xlabel(f"predicted {what.replace('_', ' ')}")
        ax.set_ylabel(f"measured {what.replace('_', ' ')}")
        ax.set_title("per device: measured vs predicted", fontsize="medium")
    ax.legend(fontsize="x-small", loc="upper left")
    fig.tight_layout()
    return fig


def partition_hybrid(df: pd.DataFrame, *, energy: tuple[str, ...] = ("edge_energy_j",
                                                                      "energy_j"),
                     baseline: float | None = None, energy_source: str | None = None,
                     title: str | None = None) -> plt.Figure:
    """Hybrid edge/cloud partitioning: energy per cut point and codec, and accuracy.

    Args:
        df: :func:`toolkit.partition.hybrid_table` rows.
        energy: energy columns, one panel each (edge devices only, edge + cloud).
        baseline: a reference energy drawn as a horizontal line in the first
            panel (e.g. the best all-on-edge strategy's edge energy).
        energy_source: where the energies come from (default ``df.attrs``).
        title: the figure title.
    """
    df = check_table(df, "partition_hybrid", ("split", "layer", "codec", "accuracy", *energy),
                      "hybrid_table rows")
    fig, axes = plt.subplots(1, len(energy) + 1, figsize=(5 * (len(energy) + 1), 4.2))
    ticks = df.drop_duplicates("split")[["split", "layer"]]
    for ax, column in zip(axes, (*energy, "accuracy"), strict=True):
        sns.lineplot(data=df, x="split", y=column, hue="codec", marker="o", ax=ax)
        ax.set_xticks(ticks["split"], [f"{s} {layer}" for s, layer in ticks.values],
                      fontsize="x-small", rotation=90)
        ax.set_xlabel("cut point (split, last edge layer)")
        if column == "accuracy":
            source = df.attrs.get("label_source", "labels")
            ax.set_ylabel(f"top-1 accuracy [1] ({source})")
        else:
            ax.set_ylabel(_energy_axis(column))
    if baseline is not None:
        axes[0].axhline(baseline, color="grey", linestyle="--", linewidth=1,
                        label="best all-edge strategy")
        axes[0].legend(fontsize="x-small")
    fig.suptitle(f"{title or 'hybrid partitioning: head over the edge devices, tail in the cloud'}"
                 f"\n({_energy_note(df, energy_source)})")
    fig.tight_layout()
    return fig



def partition_hybrid_curve(df: pd.DataFrame, *, chosen: pd.DataFrame | None = None,
                           energy_source: str | None = None, title: str | None = None
                           ) -> plt.Figure:
    """The energy–accuracy curve of hybrid plans (cut × codec), its front and the choice.

    Args:
        df: :func:`toolkit.partition.hybrid_curve` rows, one curve per
            ``objective`` (several curves concatenated: one panel each); the
            energy axis is the objective's column (``energy_j`` for ``total``,
            ``max_device_energy_j`` for ``max``; logarithmic).
        chosen: rows of the chosen plans (e.g. the candidates' ``chosen`` row of
            :func:`toolkit.partition.choose_hybrid` for each objective, with an
            ``objective`` column), marked with a star.
        energy_source: where the energies come from (default ``df.attrs``).
        title: the figure title.
    """
    from toolkit.partition import HYBRID_OBJECTIVES

    df = check_table(df, "partition_hybrid_curve",
                      ("objective", "accuracy", "codec", "layer", "front"), "hybrid_curve rows")
    unknown = sorted(set(map(str, df["objective"])) - set(HYBRID_OBJECTIVES))
    if unknown:
        raise ToolkitError(f"partition_hybrid_curve: unknown objective {choices(unknown)}; "
                           f"valid: {choices(HYBRID_OBJECTIVES)}")
    needs = sorted({HYBRID_OBJECTIVES[o] for o in df["objective"]})
    df = check_table(df, "partition_hybrid_curve", needs, "hybrid_curve rows")
    objectives = list(dict.fromkeys(df["objective"]))
    fig, axes = plt.subplots(1, len(objectives), figsize=(5.6 * len(objectives), 4.4),
                             squeeze=False)
    for ax, objective in zip(axes[0], objectives, strict=True):
        column = HYBRID_OBJECTIVES[objective]
        part = df[df["objective"] == objective]
        sns.scatterplot(data=part, x=column, y="accuracy", hue="codec", style="layer", s=55,
                        ax=ax, legend=ax is axes[0][-1])
        front = part[part["front"]].sort_values(column)
        ax.plot(front[column], front["accuracy"], color="grey", linestyle="--", linewidth=1,
                drawstyle="steps-post", label="front")
        if chosen is not None:
            here = chosen[chosen["objective"] == objective] if "objective" in chosen else chosen
            ax.scatter(here[column], here["accuracy"], marker="*", s=260, facecolor="none",
                       edgecolor="black", linewidth=1.2, label="chosen", zorder=5)
        ax.set_xscale("log")
        ax.set_xlabel(_energy_axis(column))
        ax.set_ylabel(f"top-1 accuracy [1] ({df.attrs.get('label_source', 'labels')})")
        ax.set_title(f"objective: {objective} energy", fontsize="medium")
    axes[0][-1].legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"{title or 'hybrid plans: energy against accuracy (cut x codec)'}"
                 f"\n({_energy_note(df, energy_source)})")
    fig.tight_layout()
    return fig
