"""Figures of a measurement cube: energy vs latency, the latency breakdown, the
Pareto front in 2-D and pairwise, energy per split, and one run's breakdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import xarray as xr

from toolkit.config import OBJECTIVES, VARIABLES
from toolkit.cube import as_cube, has_objective_data
from toolkit.errors import ToolkitError, choices, is_number, short_repr
from toolkit.plots.common import (
    as_means,
    axis_label,
    check_values,
    energy_label,
    figure_data,
    figure_object,
    front_mask,
    source_of,
)

__all__ = [
    "energy_latency",
    "energy_vs_split",
    "latency_breakdown",
    "pareto_front_2d",
    "pareto_pairs",
    "run_breakdown",
]


def energy_latency(cube: xr.Dataset | str, log_energy: bool = True) -> plt.Figure:
    """Energy vs latency per configuration: colour = split, marker = edge accelerator.

    ``cube`` may also be a cube file's path.
    """
    cube = as_cube(cube, ("latency_ms", "energy_j"), "energy_latency")
    df = as_means(cube)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    sns.scatterplot(data=df, x="latency_ms", y="energy_j", hue="split", style="edge_accel",
                    palette="viridis", s=70, ax=ax, legend="full")
    if log_energy:
        ax.set_yscale("log")
    ax.set_xlabel("end-to-end latency per sample [ms]")
    ax.set_ylabel(energy_label(cube))
    ax.set_title(f"{', '.join(map(str, cube.model.values))}: energy vs latency")
    ax.legend(loc="best", fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


def latency_breakdown(cube: xr.Dataset | str, cpu_freq: int | None = None,
                      edge_accel: str = "none") -> plt.Figure:
    """Stacked bars per split: edge compute, transfer, cloud compute [ms].

    ``cube`` may also be a cube file's path.
    """
    cube = as_cube(cube, ("edge_ms", "transfer_ms", "cloud_ms"), "latency_breakdown")
    check_values(cube, "latency_breakdown", {"cpu_freq": cpu_freq, "edge_accel": edge_accel})
    df = as_means(cube)
    df = df[df["edge_accel"].isin([edge_accel, "none"]) & ((df["split"] == 0)
                                                            | (df["edge_accel"] == edge_accel))]
    if cpu_freq is None:
        cpu_freq = int(df["cpu_freq"].max())
    df = df[df["cpu_freq"] == cpu_freq].sort_values("split")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bottom = None
    for column, label in (("edge_ms", "edge compute"), ("transfer_ms", "transfer"),
                          ("cloud_ms", "cloud compute")):
        ax.bar(df["split"].astype(str), df[column], bottom=bottom, label=label)
        bottom = df[column].values if bottom is None else bottom + df[column].values
    ax.set_xlabel("split (0 = all cloud)")
    ax.set_ylabel("latency per sample [ms]")
    ax.set_title(f"latency breakdown at {cpu_freq} MHz, edge accelerator {edge_accel}")
    ax.legend()
    fig.tight_layout()
    return fig


def pareto_front_2d(data: xr.Dataset | pd.DataFrame | str, x: str = "latency_ms",
                    y: str = "energy_j", *, hue: str | None = "accuracy", log_y: bool = False,
                    marks: dict[str, tuple[float, float]] | None = None,
                    energy_source: str | None = None, title: str | None = None) -> plt.Figure:
    """Every configuration as a point, the 2-D Pareto front of ``x``/``y`` as a step line.

    Args:
        data: a cube or its file's path (means over repeats are plotted), or a
            per-configuration table.
        x, y: objective columns (senses from :data:`toolkit.config.OBJECTIVES`;
            other columns are minimised).
        hue: column that colours the points (the third objective), or None.
        log_y: logarithmic y axis.
        marks: label -> (x, y) points to annotate (e.g. what a selection rule picks).
        energy_source: overrides the data's ``energy_source`` in axis labels.
        title: the axes title (default: ``y vs x``).
    """
    data = figure_data(data, "pareto_front_2d", (x, y))
    df = as_means(data).dropna(subset=[x, y])
    if hue is not None and hue not in df and hue not in VARIABLES:  # no data: no hue
        raise ToolkitError(f"pareto_front_2d: no column {hue!r} to colour the points by; valid: "
                           f"{choices(df.columns)} or None")
    if marks is not None and not isinstance(marks, Mapping):
        raise ToolkitError(f"pareto_front_2d: marks should map a label to an (x, y) point, got "
                           f"{type(marks).__name__}")
    for label, point in (marks or {}).items():
        if (isinstance(point, str) or not isinstance(point, Sequence) or len(point) != 2
                or not all(is_number(v) for v in point)):
            raise ToolkitError(f"pareto_front_2d: mark {label!r} should be an (x, y) pair of "
                               f"numbers, got {short_repr(point)}")
    source = source_of(data, energy_source)
    front = df[front_mask(df, [x, y])].sort_values(x)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if hue is not None and hue in df and df[hue].notna().any():
        points = ax.scatter(df[x], df[y], c=df[hue], cmap="viridis", s=28, alpha=0.75)
        fig.colorbar(points, ax=ax, label=axis_label(hue, source))
    else:
        ax.scatter(df[x], df[y], s=28, alpha=0.75, color="tab:blue")
    ax.step(front[x], front[y], where="post", color="tab:red", lw=1.5,
            label=f"Pareto front ({len(front)} configurations)")
    ax.scatter(front[x], front[y], s=70, facecolors="none", edgecolors="tab:red", lw=1.5)
    for i, (label, (mx, my)) in enumerate((marks or {}).items()):
        ax.scatter([mx], [my], marker="*", s=max(380 - 110 * i, 90), color=f"C{(i + 1) % 10}",
                   edgecolors="black", zorder=5, label=label)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(axis_label(x, source))
    ax.set_ylabel(axis_label(y, source))
    ax.set_title(title or f"{y} vs {x}")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def pareto_pairs(data: xr.Dataset | pd.DataFrame | str,
                 objectives: tuple[str, str, str] = ("latency_ms", "energy_j", "accuracy"),
                 *, log_energy: bool = True, energy_source: str | None = None) -> plt.Figure:
    """The 3-objective Pareto front seen pairwise: one panel per pair of objectives.

    Grey points are all configurations, red ones the configurations that are
    non-dominated in all the objectives. An objective the data lacks (a cube
    without accuracy, or with a constant one: DynaSplit's ViT pool) is left
    out, so a two-objective cube gives one latency x energy panel.
    """
    data = figure_data(data, "pareto_pairs")
    means = as_means(data)
    valid = choices(c for c in means.columns if c in OBJECTIVES)
    if isinstance(objectives, str) or not isinstance(objectives, Sequence):
        raise ToolkitError(f"pareto_pairs: objectives should be a tuple of names (of {valid}), "
                           f"got {short_repr(objectives)}")
    unknown = [o for o in objectives if o not in means and o not in OBJECTIVES]  # else left out
    if unknown:
        raise ToolkitError(f"pareto_pairs: unknown objective(s) {choices(unknown)}; valid: {valid}")
    objectives = tuple(o for o in objectives if o in means and means[o].notna().any()
                       and (not isinstance(data, xr.Dataset) or has_objective_data(data, o)))
    if len(objectives) < 2:
        raise ToolkitError("pareto_pairs needs at least two objectives with data; "
                           f"this data has {', '.join(objectives) or 'none'}")
    df = means.dropna(subset=list(objectives))
    source = source_of(data, energy_source)
    on_front = front_mask(df, list(objectives))
    pairs = [(a, b) for i, a in enumerate(objectives) for b in objectives[i + 1:]]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4.8), squeeze=False)
    axes = axes[0]
    for ax, (a, b) in zip(axes, pairs, strict=True):
        ax.scatter(df.loc[~on_front, a], df.loc[~on_front, b], s=18, color="0.7",
                   label="dominated")
        ax.scatter(df.loc[on_front, a], df.loc[on_front, b], s=40, color="tab:red",
                   label=f"{len(objectives)}-objective front ({int(on_front.sum())})")
        ax.set_xlabel(axis_label(a, source))
        ax.set_ylabel(axis_label(b, source))
        if log_energy and a == "energy_j":
            ax.set_xscale("log")
        if log_energy and b == "energy_j":
            ax.set_yscale("log")
    axes[0].legend(loc="best", fontsize="small")
    names = {"latency_ms": "latency", "energy_j": "energy", "accuracy": "accuracy"}
    shown = [names.get(o, o) for o in objectives]
    fig.suptitle(f"Pareto front of {', '.join(shown[:-1])} and {shown[-1]}"
                 + (", pairwise" if len(pairs) > 1 else ""))
    fig.tight_layout()
    return fig


def energy_vs_split(cube: xr.Dataset | str, by: str = "cpu_freq", *, variable: str = "energy_j",
                    cpu_freq: int | None = None, edge_accel: str = "none",
                    cloud_accel: str | None = None, log_y: bool = True) -> plt.Figure:
    """A variable per split, one line per CPU frequency or per edge accelerator.

    Args:
        cube: the cube (means over repeats), or its file's path.
        by: ``cpu_freq`` (one line per frequency at ``edge_accel``) or
            ``edge_accel`` (one line per accelerator at ``cpu_freq``, default the
            highest). Split 0 (all in the cloud) has no edge accelerator and
            appears in every line.
        variable: the cube variable on the y axis (default ``energy_j``).
        cloud_accel: the cloud accelerator (default: the cube's first).
        log_y: logarithmic y axis.
    """
    if by not in ("cpu_freq", "edge_accel"):
        raise ToolkitError(f"energy_vs_split: unknown by={by!r}; valid: cpu_freq, edge_accel")
    cube = as_cube(cube, (), "energy_vs_split")
    df = as_means(cube)
    if variable not in df:
        raise ToolkitError(f"energy_vs_split: the cube has no variable {variable!r}; valid: "
                           f"{choices(c for c in df.columns if c in cube.data_vars)}")
    check_values(cube, "energy_vs_split", {"cloud_accel": cloud_accel, **(
        {"edge_accel": edge_accel} if by == "cpu_freq" else {"cpu_freq": cpu_freq})})
    what = str(cube[variable].attrs.get("long_name", variable))
    cloud_accel = cloud_accel or str(df["cloud_accel"].iloc[0])
    df = df[df["cloud_accel"].isin([cloud_accel]) | (df["split"] == df["split"].max())]
    if by == "cpu_freq":
        base = df[(df["edge_accel"] == edge_accel) & (df["split"] > 0)]
        cloud = df[df["split"] == 0].assign(edge_accel=edge_accel)
        title = f"{what} per split and CPU frequency (edge accelerator {edge_accel})"
    else:
        cpu_freq = int(df["cpu_freq"].max()) if cpu_freq is None else int(cpu_freq)
        df = df[df["cpu_freq"] == cpu_freq]
        base = df[df["split"] > 0]
        cloud = pd.concat([df[df["split"] == 0].assign(edge_accel=a)
                           for a in base["edge_accel"].unique()] or [df.iloc[:0]])
        title = f"{what} per split and edge accelerator at {cpu_freq} MHz"
    plot = pd.concat([cloud, base]).sort_values(["split", by])
    fig, ax = plt.subplots(figsize=(9, 5))
    sns.lineplot(data=plot, x="split", y=variable, hue=by, marker="o",
                 palette="viridis" if by == "cpu_freq" else "tab10", ax=ax)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("split (0 = all in the cloud)")
    units = cube[variable].attrs.get("units", "")
    source = str(cube.attrs.get("energy_source", "unknown"))
    ax.set_ylabel(axis_label(variable, source) if "energy" in variable
                  else f"{variable} [{units}]")
    ax.set_title(title)
    ax.legend(title="CPU frequency [MHz]" if by == "cpu_freq" else "edge accelerator",
              fontsize="small")
    fig.tight_layout()
    return fig


def run_breakdown(record, title: str | None = None) -> plt.Figure:
    """One run's latency as a horizontal stacked bar: edge, transfer, cloud [ms].

    Args:
        record: a :class:`~toolkit.devices.testbeds.testbed.RunRecord` (or any object with
            ``edge_ms``, ``transfer_ms``, ``cloud_ms`` and ``config``).
        title: the axes title (default: the configuration).
    """
    record = figure_object(record, "run_breakdown",
                           ("edge_ms", "transfer_ms", "cloud_ms", "config"),
                           "a RunRecord (a testbed's run)")
    parts = (("edge compute", record.edge_ms, "tab:green"),
             ("transfer", record.transfer_ms, "tab:orange"),
             ("cloud compute", record.cloud_ms, "tab:blue"))
    fig, ax = plt.subplots(figsize=(8, 2.4))
    left = 0.0
    for label, value, color in parts:
        ax.barh([0], [value], left=left, color=color, label=f"{label} {value:.2f} ms")
        left += value
    ax.set_yticks([])
    ax.set_xlabel("latency per sample [ms]")
    c = record.config
    ax.set_title(title or f"split {c.split}, {c.cpu_freq} MHz, edge {c.edge_accel}, "
                 f"cloud {c.cloud_accel}", fontsize="medium")
    fig.legend(loc="lower center", ncol=3, fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig

