"""A panel for the online phase: rule, target → replay preview → policy and scheduler files.

The policy is :meth:`toolkit.policy.Policy.from_front` of a front and its cube
(what ``dynasplit export`` makes), the preview is a trace replay
(:func:`toolkit.simulate.simulate`, drawn with
:func:`toolkit.plots.simulation_summary`), and the export writes
:meth:`Policy.save <toolkit.policy.Policy.save>` and
:func:`toolkit.scheduler.export_script` into a folder.

Example (in a notebook cell)::

    from toolkit.widgets import PolicyExporter
    exporter = PolicyExporter(result, cube, folder="my-policy")   # result: optimize(...)
    exporter            # or: exporter.rule.value = "tail"; exporter.export_button.click()
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import xarray as xr

from toolkit.config import CONFIG_KEYS
from toolkit.errors import ToolkitError
from toolkit.policy import DEFAULT_RULE, Policy, front_configs
from toolkit.rules import RULES
from toolkit.widgets._display import Panel, error_html, show_figure, show_table

__all__ = ["PolicyExporter"]

#: requests of the trace generated when none is given
DEFAULT_REQUESTS = 200


class PolicyExporter(Panel):
    """Pick a selection rule, preview it by trace replay, export the policy and scheduler.

    Args:
        front: the front: an :class:`~toolkit.optimize.OptimizationResult`, a
            ``FRONT.json`` path, or a list of configurations.
        cube: the cube the front was made from (its runs give the latency
            distributions and the replay's draws), or its file's path.
        trace: the QoS trace (``read_trace``) or an array of thresholds [ms];
            default: a Weibull trace of 200 requests over the front's mean
            latency range (:func:`toolkit.trace.generate_trace`, seed 0).
        folder: where :meth:`export` writes ``policy.json`` and ``scheduler.py``.
        seed: the replay's seed.

    Attributes:
        rule, target, accuracy_floor, reconfiguration, switching, seed, folder:
            the controls; ``export_button`` exports.
        policy: the :class:`~toolkit.policy.Policy` the controls describe.
        simulation: the last replay (:class:`~toolkit.simulate.Simulation`).
        exported: the paths of the last export (empty before).
        status, plot, table: the outputs; ``widget``: the whole panel.
    """

    def __init__(self, front: Any, cube: xr.Dataset | str | os.PathLike, *,
                 trace: pd.DataFrame | Sequence[float] | np.ndarray | None = None,
                 folder: str | os.PathLike = "dynasplit-policy", seed: int = 0) -> None:
        from toolkit.cube import as_cube

        self.configs = front_configs(front)
        self.cube = as_cube(cube, ("latency_ms", "energy_j"), "the policy exporter")
        self.trace = self._trace(trace)
        self.policy: Policy | None = None
        self.simulation: Any = None
        self.exported: list[Path] = []
        style = {"description_width": "120px"}

        self.rule = widgets.ToggleButtons(options=list(RULES), value=DEFAULT_RULE["name"],
                                          description="rule", style=style)
        self.target = widgets.FloatSlider(value=DEFAULT_RULE["target"], min=0.5, max=0.999,
                                          step=0.001, readout_format=".3f",
                                          description="tail target τ",
                                          continuous_update=False, style=style)
        self.accuracy_floor = widgets.FloatText(value=0.0, description="accuracy floor",
                                                style=style)
        self.reconfiguration = widgets.Checkbox(value=bool(DEFAULT_RULE["reconfiguration"]),
                                                description="reconfiguration-aware",
                                                indent=False)
        self.switching = widgets.Checkbox(value=False, indent=False,
                                          description="replay charges hardware switches")
        self.seed = widgets.IntText(value=seed, description="replay seed", style=style)
        self.folder = widgets.Text(value=str(folder), description="export folder",
                                   style=style, layout=widgets.Layout(width="560px"))
        self.export_button = widgets.Button(description="Export", icon="download",
                                            button_style="primary",
                                            tooltip="write policy.json and scheduler.py")
        self.status = widgets.HTML()
        self.plot = widgets.Output()
        self.table = widgets.HTML()
        for control in (self.rule, self.target, self.accuracy_floor, self.reconfiguration,
                        self.switching, self.seed):
            control.observe(lambda _: self.preview(), names="value")
        self.export_button.on_click(lambda _: self.export())
        thresholds = self.trace["Latency"]
        self.widget = widgets.VBox([
            widgets.HTML(f"<b>Policy</b> from a front of {len(self.configs)} configurations; "
                         f"replay of {len(self.trace)} requests with thresholds "
                         f"{thresholds.min():.4g}–{thresholds.max():.4g} ms; energy "
                         f"<code>{html.escape(str(cube.attrs.get('energy_source', '?')))}"
                         "</code>"),
            self.rule, self.target, self.accuracy_floor, self.reconfiguration, self.switching,
            self.seed, widgets.HBox([self.folder, self.export_button]), self.status,
            self.plot, self.table,
        ])
        self.preview()

    def _trace(self, trace: Any) -> pd.DataFrame:
        if trace is None:
            from toolkit.cube import config_means
            from toolkit.trace import generate_trace

            keys = list(CONFIG_KEYS)
            means = config_means(self.cube).merge(pd.DataFrame(self.configs)[keys], on=keys)
            low, high = float(means["latency_ms"].min()), float(means["latency_ms"].max())
            high = high if high > low else low * 2 + 1.0
            model = str(self.configs[0].get("model", "model"))
            return generate_trace(model, low, high, DEFAULT_REQUESTS, seed=0)
        if isinstance(trace, pd.DataFrame):
            return trace
        values = np.asarray(trace, dtype=float)
        return pd.DataFrame({"Index": np.arange(len(values)), "Network": "trace",
                             "Latency": values})

    def rule_options(self) -> dict[str, Any]:
        """The rule parameters the controls describe (those of :func:`make_policy`)."""
        floor = float(self.accuracy_floor.value)
        return {"rule": self.rule.value, "target": float(self.target.value),
                "accuracy_floor": floor if floor > 0 else None,
                "reconfiguration": bool(self.reconfiguration.value)}

    def preview(self) -> Any:
        """Build the policy and replay the trace (every control change calls this).

        Returns:
            The :class:`~toolkit.simulate.Simulation`, or None when the controls
            give no valid policy (the reason is shown in :attr:`status`).
        """
        from toolkit.plots import simulation_summary
        from toolkit.simulate import simulate

        self.target.disabled = self.rule.value != "tail"
        try:
            self.policy = Policy.from_front(self.configs, self.cube, **self.rule_options())
            self.simulation = simulate(self.cube, self.policy, self.trace,
                                       seed=int(self.seed.value),
                                       switching=bool(self.switching.value), progress=False)
        except ToolkitError as exc:
            self.policy = self.simulation = None
            self.status.value = error_html(exc)
            self.plot.outputs = ()
            self.table.value = ""
            return None
        table = self.simulation.table()
        policy_row = table.loc["policy"]
        self.status.value = (
            f"rule <b>{html.escape(self.policy.rule['name'])}</b>: {len(self.policy)} "
            f"candidates; on the replay the policy meets {policy_row['qos_met']:.1%} of the "
            f"thresholds at {policy_row['energy_j_mean']:.4g} J per request "
            f"({policy_row['energy_saving_vs_cloud']:.1%} less than cloud-only)")
        show_figure(self.plot, simulation_summary(self.simulation))
        show_table(self.table, table.reset_index())
        return self.simulation

    def export(self) -> list[Path]:
        """Write ``policy.json`` and ``scheduler.py`` into :attr:`folder` (the button).

        Returns:
            The two paths, or an empty list when the policy is invalid (see
            :attr:`status`).
        """
        from toolkit.scheduler import export_script

        if self.policy is None:
            self.status.value = error_html(ToolkitError(
                "nothing to export: the current controls give no valid policy"))
            return []
        folder = Path(self.folder.value).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            policy_path = self.policy.save(folder / "policy.json")
            script = export_script(folder / "scheduler.py", policy_path)
        except OSError as exc:
            self.status.value = error_html(ToolkitError(f"cannot write to {folder}: {exc}"))
            return []
        self.exported = [policy_path, script]
        self.status.value += (f"<br>exported <code>{html.escape(str(policy_path))}</code> and "
                              f"<code>{html.escape(str(script))}</code>: run "
                              f"<code>python {html.escape(str(script))} --dry-run</code>")
        return self.exported
