"""A panel to explore a cube's trade-offs and what each selection rule picks.

Any two variables on the axes, a third as colour, the 2-D Pareto front of the
axes drawn as a step line (:func:`toolkit.plots.pareto_front_2d`), filters by
edge/cloud accelerator and CPU frequency, and a latency threshold: the stars
mark the configuration each selection rule of the online phase picks for a
request with that threshold, on the filtered cube
(:func:`toolkit.policy.compare_rules`: the rules on a policy made from the
front, as ``dynasplit export`` would make it, and ``dynasplit-exhaustive``,
DynaSplit's rule over every shown configuration).

Example (in a notebook cell)::

    from toolkit.widgets import TradeoffExplorer
    explorer = TradeoffExplorer(cube)
    explorer            # or: explorer.threshold.value = 500; explorer.picks()
"""

from __future__ import annotations

import html
import os

import ipywidgets as widgets
import numpy as np
import pandas as pd
import xarray as xr

from toolkit.config import coerce_value
from toolkit.errors import ToolkitError
from toolkit.widgets._display import Panel, error_html, show_figure, show_table

__all__ = ["TradeoffExplorer"]

#: variables offered on the axes, in menu order (those the cube has)
AXES: tuple[str, ...] = ("latency_ms", "energy_j", "accuracy", "edge_ms", "transfer_ms",
                         "cloud_ms", "edge_energy_j", "cloud_energy_j", "tensor_kb")


class TradeoffExplorer(Panel):
    """Scatter any two objectives of a cube, with the front and the rules' picks.

    Args:
        cube: a measurement cube, or its file's path.
        model: the model to show; needed when the cube holds several.
        threshold: the latency threshold [ms] first shown (default: the median
            of the configurations' mean latencies).
        target: the ``tail`` rule's target probability first shown.

    Attributes:
        x, y, colour: variable menus; ``log_y``: logarithmic y axis.
        edge_accel, cloud_accel, cpu_freq: filters (multiple selection).
        threshold: the latency threshold slider [ms]; ``target``: the tail rule's τ.
        plot, table (the picks), summary: the outputs.
        widget: the whole panel.
    """

    def __init__(self, cube: xr.Dataset | str | os.PathLike, model: str | None = None, *,
                 threshold: float | None = None, target: float = 0.99) -> None:
        from toolkit.cube import as_cube, config_means, select_model

        cube = as_cube(cube, ("latency_ms", "energy_j"), "the trade-off explorer")
        self.model, _ = select_model(cube, model)
        self.cube = cube.sel(model=[self.model])
        self.means = config_means(self.cube)
        self.energy_source = str(cube.attrs.get("energy_source", "unknown"))
        self._picks: pd.DataFrame = pd.DataFrame()
        axes = [v for v in AXES if v in self.means and self.means[v].notna().any()]
        style = {"description_width": "100px"}
        latency = self.means["latency_ms"].dropna()
        low, high = float(latency.min()), float(latency.max())
        start = float(latency.median()) if threshold is None else float(threshold)

        self.x = widgets.Dropdown(options=axes, value="latency_ms", description="x axis",
                                  style=style)
        self.y = widgets.Dropdown(options=axes, value="energy_j" if "energy_j" in axes
                                  else axes[-1], description="y axis", style=style)
        self.colour = widgets.Dropdown(options=[*axes, "none"], value="accuracy"
                                       if "accuracy" in axes else "none",
                                       description="colour", style=style)
        self.log_y = widgets.Checkbox(value=True, description="log y axis", indent=False)
        self.edge_accel = self._filter("edge_accel", "edge accel.", style)
        self.cloud_accel = self._filter("cloud_accel", "cloud accel.", style)
        self.cpu_freq = self._filter("cpu_freq", "CPU [MHz]", style)
        self.threshold = widgets.FloatSlider(
            value=min(max(start, low), high), min=low, max=high, step=(high - low) / 500 or 1.0,
            description="threshold [ms]", continuous_update=False, readout_format=".4g",
            style=style, layout=widgets.Layout(width="600px"))
        self.target = widgets.FloatSlider(value=target, min=0.5, max=0.999, step=0.001,
                                          description="tail target τ", readout_format=".3f",
                                          continuous_update=False, style=style)
        self.summary = widgets.HTML()
        self.plot = widgets.Output()
        self.table = widgets.HTML()
        for control in (self.x, self.y, self.colour, self.log_y, self.edge_accel,
                        self.cloud_accel, self.cpu_freq, self.threshold, self.target):
            control.observe(lambda _: self.refresh(), names="value")
        self.widget = widgets.VBox([
            widgets.HTML(f"<b>Trade-offs</b> of <code>{html.escape(self.model)}</code>: "
                         f"{len(self.means)} configurations; energy "
                         f"<code>{html.escape(self.energy_source)}</code>"),
            widgets.HBox([widgets.VBox([self.x, self.y, self.colour, self.log_y]),
                          self.edge_accel, self.cloud_accel, self.cpu_freq]),
            self.threshold, self.target, self.summary, self.plot, self.table,
        ])
        self.widget.add_class("dynasplit-tradeoff")
        self.threshold.add_class("dynasplit-threshold")
        self.table.add_class("dynasplit-picks")
        self.summary.add_class("dynasplit-summary")
        self.refresh()

    def _filter(self, key: str, label: str, style: dict[str, str]) -> widgets.SelectMultiple:
        values = [coerce_value(key, v) for v in sorted(self.means[key].unique().tolist())]
        return widgets.SelectMultiple(options=values, value=tuple(values), description=label,
                                      rows=min(len(values), 7), style=style)

    # -- views ---------------------------------------------------------------------------

    def shown(self) -> pd.DataFrame:
        """The configurations the filters keep (means over repeats)."""
        m = self.means
        keep = (m["edge_accel"].isin(self.edge_accel.value)
                & m["cloud_accel"].isin(self.cloud_accel.value)
                & m["cpu_freq"].isin(self.cpu_freq.value))
        return m[keep]

    def shown_cube(self) -> xr.Dataset:
        """The cube restricted to the filters' values."""
        return self.cube.sel(edge_accel=list(self.edge_accel.value),
                             cloud_accel=list(self.cloud_accel.value),
                             cpu_freq=list(self.cpu_freq.value))

    def picks(self) -> pd.DataFrame:
        """What each rule picks at the current threshold (one row per rule)."""
        return self._picks

    def refresh(self) -> None:
        """Redraw the plot and recompute the picks (every control change calls this)."""
        from toolkit.plots import pareto_front_2d
        from toolkit.policy import compare_rules

        shown = self.shown().dropna(subset=["latency_ms", "energy_j"])
        if shown.empty:
            self._picks = pd.DataFrame()
            self.summary.value = ("<span style='color:#b00020'>no configuration matches the "
                                  "filters</span>")
            self.plot.outputs = ()
            self.table.value = ""
            return
        try:
            self._picks = compare_rules(self.shown_cube(), float(self.threshold.value),
                                        target=float(self.target.value))
        except ToolkitError as exc:
            self._picks = pd.DataFrame()
            status = error_html(exc)
        else:
            status = (f"{len(shown)} of {len(self.means)} configurations shown; at a latency "
                      f"threshold of {self.threshold.value:.4g} ms the rules pick:")
        x, y = self.x.value, self.y.value
        marks = {}
        for row in self._picks.to_dict("records"):
            if x in row and y in row and np.isfinite(row[x]) and np.isfinite(row[y]):
                marks[f"{row['rule']}: split {row['split']}, {row['cpu_freq']} MHz, "
                      f"{row['edge_accel']}/{row['cloud_accel']}"] = (row[x], row[y])
        fig = pareto_front_2d(shown, x, y, hue=None if self.colour.value == "none"
                              else self.colour.value, log_y=self.log_y.value, marks=marks,
                              energy_source=self.energy_source,
                              title=f"{self.model}: {y} vs {x}")
        if x == "latency_ms":
            fig.axes[0].axvline(self.threshold.value, color="0.3", ls=":",
                                label="latency threshold")
            fig.axes[0].legend(loc="best", fontsize="small")
        show_figure(self.plot, fig)
        if self._picks.empty:
            self.table.value = ""
        else:
            show_table(self.table, self._picks)
        # last: a summary naming the threshold means the plot and picks are its own
        self.summary.value = status
