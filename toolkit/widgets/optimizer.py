"""A panel for the offline phase: algorithm, budget and seed → live hypervolume → the front.

The search is :func:`toolkit.optimize.optimize` over the cube's configuration
space with a :class:`~toolkit.optimize.CubeEvaluator`. The panel only displays
what the optimizer reports to its ``callback`` after each generation (a
:class:`~toolkit.optimize.Generation`): the hypervolume as it grows, with the
optimizer's own normalisation; the exhaustive front (every configuration of the
cube evaluated) is the dashed reference line.

Example (in a notebook cell)::

    from toolkit.widgets import OptimizerPanel
    panel = OptimizerPanel(cube)
    panel            # then press "Optimize", or: panel.budget.value = 0.1; panel.run()
"""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets as widgets
import xarray as xr

from toolkit.errors import ToolkitError
from toolkit.optimize import (
    ALGORITHMS,
    ConfigSpace,
    CubeEvaluator,
    Generation,
    OptimizationResult,
    front_quality,
    optimize,
    resolve_budget,
    save_front,
)
from toolkit.widgets._display import Panel, error_html, show_figure, show_table

__all__ = ["OptimizerPanel"]


class OptimizerPanel(Panel):
    """Run the budgeted optimizer on a cube and show its progress and front.

    Args:
        cube: a measurement cube (:func:`toolkit.open_cube`, ``read_pool``...), or
            its file's path.
        model: the model to optimise; needed when the cube holds several.
        algorithm, budget, seed: first values of the controls (``budget`` is a
            fraction of the valid configurations).

    Attributes:
        algorithm, budget, seed: the controls; ``run_button`` runs.
        progress: distinct evaluations so far out of the budget; ``status``.
        plot: the hypervolume history (live while running).
        table: the front as a table; ``result``: the last
            :class:`~toolkit.optimize.OptimizationResult` (None before a run).
        live: (evaluations, hypervolume) after each generation of the last run.
        widget: the whole panel.
    """

    def __init__(self, cube: xr.Dataset | str | os.PathLike, model: str | None = None, *,
                 algorithm: str = "nsga2", budget: float = 0.2, seed: int = 0) -> None:
        from toolkit.cube import as_cube

        cube = as_cube(cube, ("latency_ms",), "the optimizer panel")
        self.space = ConfigSpace.from_cube(cube, model)
        self.evaluator = CubeEvaluator(cube, self.space.model)
        self.energy_source = self.evaluator.energy_source or "unknown"
        self.result: OptimizationResult | None = None
        self.live: list[tuple[int, float]] = []
        self._exhaustive: OptimizationResult | None = None
        style = {"description_width": "90px"}

        self.algorithm = widgets.ToggleButtons(options=list(ALGORITHMS), value=algorithm,
                                               description="algorithm", style=style)
        self.budget = widgets.FloatSlider(value=budget, min=0.02, max=1.0, step=0.02,
                                          readout_format=".0%", description="budget",
                                          continuous_update=False, style=style,
                                          layout=widgets.Layout(width="480px"))
        self.budget_info = widgets.HTML()
        self.seed = widgets.IntText(value=seed, description="seed", style=style)
        self.exhaustive = widgets.Checkbox(value=True, description="compare with the "
                                           "exhaustive front", indent=False)
        self.run_button = widgets.Button(description="Optimize", icon="play",
                                         button_style="primary")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="evaluations",
                                            style=style)
        self.status = widgets.HTML("not run yet")
        self.plot = widgets.Output()
        self.table = widgets.HTML()

        self.budget.observe(lambda _: self._budget_changed(), names="value")
        self.run_button.on_click(lambda _: self.run())
        self._budget_changed()
        self.widget = widgets.VBox([
            widgets.HTML(f"<b>Offline optimisation</b> of <code>{html.escape(self.space.model)}"
                         f"</code>: {self.space.size} valid configurations; objectives "
                         f"{', '.join(self.evaluator.objectives)}; energy "
                         f"<code>{html.escape(self.energy_source)}</code>"),
            self.algorithm, widgets.HBox([self.budget, self.budget_info]), self.seed,
            self.exhaustive, widgets.HBox([self.run_button, self.progress, self.status]),
            self.plot, self.table,
        ])

    def _budget_changed(self) -> None:
        n = resolve_budget(float(self.budget.value), self.space.size)
        self.budget_info.value = f"= {n} of {self.space.size} configurations"
        self.progress.max = n

    @property
    def exhaustive_hypervolume(self) -> float:
        """Hypervolume of the exhaustive front (every configuration evaluated; cached)."""
        return self.exhaustive_result.hypervolume

    @property
    def exhaustive_result(self) -> OptimizationResult:
        """The exhaustive search of the space (every configuration evaluated; cached)."""
        if self._exhaustive is None:
            self._exhaustive = optimize(self.space, self.evaluator, 1.0, surrogate=False,
                                        progress=False)
        return self._exhaustive

    def _on_generation(self, gen: Generation) -> None:
        self.live.append((gen.evaluations, gen.hypervolume))
        self.progress.value = min(gen.evaluations, self.progress.max)
        self.status.value = (f"generation {gen.generation}: {gen.evaluations} evaluations, "
                             f"hypervolume {gen.hypervolume:.4f}, front {gen.front_size}")
        self._draw([{"evaluations": n, "hypervolume": hv} for n, hv in self.live],
                   title="hypervolume so far (running)")

    def _draw(self, history: list[dict[str, Any]], title: str) -> None:
        from toolkit.plots import hypervolume_history

        reference = self.exhaustive_hypervolume if self.exhaustive.value else None
        show_figure(self.plot, hypervolume_history(history, reference=reference, title=title))

    def run(self) -> OptimizationResult | None:
        """Optimise with the controls' values (what the button does).

        Returns:
            The result, or None when the controls are invalid (the error is shown
            in :attr:`status`).
        """
        self.run_button.disabled = True
        self.progress.bar_style = "info"
        self.progress.value = 0
        self.live = []
        try:
            result = optimize(self.space, self.evaluator, float(self.budget.value),
                              algorithm=self.algorithm.value, seed=int(self.seed.value),
                              progress=False, callback=self._on_generation)
        except Exception as exc:
            self.progress.bar_style = "danger"
            self.status.value = error_html(exc)
            if not isinstance(exc, ToolkitError):
                raise
            return None
        finally:
            self.run_button.disabled = False
        self.result = result
        self.progress.bar_style = "success"
        self._draw(result.history, title=f"{result.algorithm}, seed {result.seed}: "
                   "hypervolume of the front found so far")
        extra = ""
        if self.exhaustive.value:
            quality = front_quality(result, self.exhaustive_result)
            found = round(quality.front_share * len(self.exhaustive_result.front))
            extra = (f"; against the exhaustive front: hypervolume {quality.hv_ratio:.1%} "
                     f"(front-normalised), {found} of its "
                     f"{len(self.exhaustive_result.front)} configurations found")
        self.status.value = (f"done: {result.evaluations} evaluations, front of "
                             f"{len(result.front)}, hypervolume {result.hypervolume:.4f}{extra}")
        front = result.to_dataframe()
        front = front[front["on_front"]].drop(columns=["on_front"]).sort_values("latency_ms")
        show_table(self.table, front)
        return result

    def save(self, path: str) -> str:
        """Write the last result as ``FRONT.json``; returns the path written.

        Raises:
            ToolkitError: nothing has been optimised yet.
        """
        if self.result is None:
            raise ToolkitError("nothing to save yet: run the optimizer first")
        return str(save_front(self.result, path))
