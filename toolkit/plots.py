"""seaborn figures of cubes, fronts and replays, with labelled axes and units.

Every function returns a matplotlib ``Figure`` (usable outside notebooks; save
it with ``fig.savefig``) and never calls ``plt.show``. Energy axes say whether
the figures were measured or modelled (the cube's ``energy_source``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import xarray as xr

from toolkit.errors import ToolkitError

__all__ = [
    "OBJECTIVE_LABELS",
    "config_means",
    "energy_kind",
    "energy_label",
    "energy_latency",
    "energy_vs_split",
    "hypervolume_history",
    "latency_breakdown",
    "pareto_front_2d",
    "pareto_pairs",
    "partition_crossover",
    "partition_energy",
    "partition_hybrid",
    "partition_predicted_vs_measured",
    "run_breakdown",
    "simulation_summary",
    "tail_tradeoff",
]


def energy_label(cube: xr.Dataset, what: str = "energy per sample") -> str:
    """Axis label for energy that says where the figures come from (two lines)."""
    source = str(cube.attrs.get("energy_source", "unknown"))
    return f"{what} [J]\n({energy_kind(source)}: {source})"


def _means(cube: xr.Dataset) -> pd.DataFrame:
    from toolkit.cube import config_dims, to_dataframe

    return to_dataframe(cube).groupby(config_dims(cube), as_index=False).mean(numeric_only=True)


def energy_latency(cube: xr.Dataset, log_energy: bool = True) -> plt.Figure:
    """Energy vs latency per configuration: colour = split, marker = edge accelerator."""
    df = _means(cube)
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


def latency_breakdown(cube: xr.Dataset, cpu_freq: int | None = None,
                      edge_accel: str = "none") -> plt.Figure:
    """Stacked bars per split: edge compute, transfer, cloud compute [ms]."""
    df = _means(cube)
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


# -- trade-offs, fronts and optimisation (issue 7) -------------------------------------

#: axis label (with units) of each objective
OBJECTIVE_LABELS: dict[str, str] = {
    "latency_ms": "end-to-end latency per sample [ms]",
    "energy_j": "energy per sample [J]",
    "accuracy": "top-1 accuracy [1]",
}


def energy_kind(source: str) -> str:
    """``modelled`` for power-model figures (``model:<profile>``), else ``measured``."""
    return "modelled" if source.startswith("model:") or "+model:" in source else "measured"


def _source_of(data: xr.Dataset | pd.DataFrame, energy_source: str | None) -> str:
    if energy_source:
        return energy_source
    return str(data.attrs.get("energy_source", "unknown"))


def _axis_label(name: str, source: str) -> str:
    if name == "energy_j" or name.endswith("_energy_j"):
        return energy_label(xr.Dataset(attrs={"energy_source": source}),
                            name.removesuffix("_j").replace("_", " ") + " per sample")
    return OBJECTIVE_LABELS.get(name, name)


def config_means(data: xr.Dataset | pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: means over repeats (a DataFrame is passed through).

    ``attrs["energy_source"]`` carries the cube's energy source.
    """
    if isinstance(data, pd.DataFrame):
        return data
    df = _means(data)
    df.attrs["energy_source"] = str(data.attrs.get("energy_source", "unknown"))
    return df


def _front_mask(df: pd.DataFrame, objectives: list[str]) -> pd.Series:
    from toolkit.config import OBJECTIVES
    from toolkit.pareto import pareto_mask

    senses = [OBJECTIVES.get(o, "min") for o in objectives]
    if df.empty:
        return pd.Series([], dtype=bool, index=df.index)
    return pd.Series(pareto_mask(df[objectives].to_numpy(float), senses), index=df.index)


def pareto_front_2d(data: xr.Dataset | pd.DataFrame, x: str = "latency_ms",
                    y: str = "energy_j", *, hue: str | None = "accuracy", log_y: bool = False,
                    marks: dict[str, tuple[float, float]] | None = None,
                    energy_source: str | None = None, title: str | None = None) -> plt.Figure:
    """Every configuration as a point, the 2-D Pareto front of ``x``/``y`` as a step line.

    Args:
        data: a cube (means over repeats are plotted) or a per-configuration table.
        x, y: objective columns (senses from :data:`toolkit.config.OBJECTIVES`;
            other columns are minimised).
        hue: column that colours the points (the third objective), or None.
        log_y: logarithmic y axis.
        marks: label -> (x, y) points to annotate (e.g. what a selection rule picks).
        energy_source: overrides the data's ``energy_source`` in axis labels.
        title: the axes title (default: ``y vs x``).
    """
    df = config_means(data).dropna(subset=[x, y])
    source = _source_of(data, energy_source)
    front = df[_front_mask(df, [x, y])].sort_values(x)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if hue is not None and hue in df and df[hue].notna().any():
        points = ax.scatter(df[x], df[y], c=df[hue], cmap="viridis", s=28, alpha=0.75)
        fig.colorbar(points, ax=ax, label=_axis_label(hue, source))
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
    ax.set_xlabel(_axis_label(x, source))
    ax.set_ylabel(_axis_label(y, source))
    ax.set_title(title or f"{y} vs {x}")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def pareto_pairs(data: xr.Dataset | pd.DataFrame,
                 objectives: tuple[str, str, str] = ("latency_ms", "energy_j", "accuracy"),
                 *, log_energy: bool = True, energy_source: str | None = None) -> plt.Figure:
    """The 3-objective Pareto front seen pairwise: one panel per pair of objectives.

    Grey points are all configurations, red ones the configurations that are
    non-dominated in all the objectives. An objective the data lacks (a cube
    without accuracy, or with a constant one: DynaSplit's ViT pool) is left
    out, so a two-objective cube gives one latency x energy panel.
    """
    from toolkit.cube import has_objective_data

    means = config_means(data)
    objectives = tuple(o for o in objectives if o in means and means[o].notna().any()
                       and (not isinstance(data, xr.Dataset) or has_objective_data(data, o)))
    if len(objectives) < 2:
        raise ToolkitError("pareto_pairs needs at least two objectives with data; "
                           f"this data has {', '.join(objectives) or 'none'}")
    df = means.dropna(subset=list(objectives))
    source = _source_of(data, energy_source)
    on_front = _front_mask(df, list(objectives))
    pairs = [(a, b) for i, a in enumerate(objectives) for b in objectives[i + 1:]]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4.8), squeeze=False)
    axes = axes[0]
    for ax, (a, b) in zip(axes, pairs, strict=True):
        ax.scatter(df.loc[~on_front, a], df.loc[~on_front, b], s=18, color="0.7",
                   label="dominated")
        ax.scatter(df.loc[on_front, a], df.loc[on_front, b], s=40, color="tab:red",
                   label=f"{len(objectives)}-objective front ({int(on_front.sum())})")
        ax.set_xlabel(_axis_label(a, source))
        ax.set_ylabel(_axis_label(b, source))
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


def energy_vs_split(cube: xr.Dataset, by: str = "cpu_freq", *, variable: str = "energy_j",
                    cpu_freq: int | None = None, edge_accel: str = "none",
                    cloud_accel: str | None = None, log_y: bool = True) -> plt.Figure:
    """A variable per split, one line per CPU frequency or per edge accelerator.

    Args:
        cube: the cube (means over repeats).
        by: ``cpu_freq`` (one line per frequency at ``edge_accel``) or
            ``edge_accel`` (one line per accelerator at ``cpu_freq``, default the
            highest). Split 0 (all in the cloud) has no edge accelerator and
            appears in every line.
        variable: the cube variable on the y axis (default ``energy_j``).
        cloud_accel: the cloud accelerator (default: the cube's first).
        log_y: logarithmic y axis.
    """
    from toolkit.errors import ToolkitError, choices

    if by not in ("cpu_freq", "edge_accel"):
        raise ToolkitError(f"energy_vs_split: unknown by={by!r}; valid: cpu_freq, edge_accel")
    df = config_means(cube)
    if variable not in df:
        raise ToolkitError(f"energy_vs_split: the cube has no variable {variable!r}; valid: "
                           f"{choices(c for c in df.columns if c in cube.data_vars)}")
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
    ax.set_ylabel(_axis_label(variable, source) if "energy" in variable
                  else f"{variable} [{units}]")
    ax.set_title(title)
    ax.legend(title="CPU frequency [MHz]" if by == "cpu_freq" else "edge accelerator",
              fontsize="small")
    fig.tight_layout()
    return fig


def hypervolume_history(history: list[dict] | pd.DataFrame, *,
                        reference: float | None = None,
                        reference_label: str = "exhaustive front",
                        title: str = "hypervolume of the front found so far") -> plt.Figure:
    """Hypervolume (normalised) against distinct evaluations.

    Args:
        history: ``OptimizationResult.history`` (dicts with ``evaluations`` and
            ``hypervolume``) or a DataFrame with those columns; a ``run`` column
            draws one line per run.
        reference: a horizontal line, e.g. the exhaustive front's hypervolume.
        reference_label: its legend label.
        title: the axes title.
    """
    df = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if "run" in df:
        sns.lineplot(data=df, x="evaluations", y="hypervolume", hue="run", marker="o",
                     ax=ax)
    else:
        ax.plot(df["evaluations"], df["hypervolume"], marker="o", label="optimizer")
    if reference is not None:
        ax.axhline(reference, color="tab:red", ls="--", label=f"{reference_label} "
                   f"({reference:.4f})")
    ax.set_xlabel("distinct configurations evaluated")
    ax.set_ylabel("hypervolume (normalised objectives) [1]")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def run_breakdown(record, title: str | None = None) -> plt.Figure:
    """One run's latency as a horizontal stacked bar: edge, transfer, cloud [ms].

    Args:
        record: a :class:`~toolkit.devices.testbed.RunRecord` (or any object with
            ``edge_ms``, ``transfer_ms``, ``cloud_ms`` and ``config``).
        title: the axes title (default: the configuration).
    """
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


def simulation_summary(sim) -> plt.Figure:
    """A replay (:class:`toolkit.simulate.Simulation`): mean energy and threshold
    misses per strategy, side by side."""
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
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    curves = points[points["target"].notna()] if "target" in points else points
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


# --------------------------------------------------------------------------- partitioning


_PARTITION_ENERGY = {"max_device_energy_j": "most loaded device",
                     "mean_device_energy_j": "mean per device",
                     "edge_energy_j": "edge devices", "energy_j": "edge + cloud",
                     "measured_energy_j": "measured, per device",
                     "predicted_energy_j": "predicted, per device"}


def _energy_axis(name: str) -> str:
    """A short energy axis label; :func:`_energy_note` says where the figures come from."""
    return f"energy per request [J]: {_PARTITION_ENERGY.get(name, name)}"


def _energy_note(df: pd.DataFrame, energy_source: str | None) -> str:
    source = _source_of(df, energy_source)
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

