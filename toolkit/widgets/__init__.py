"""ipywidgets control panels for JupyterLab: every step of the workflow by panel.

Panels are thin: each callback calls the toolkit's public API, and every panel's
state lives in its widgets' ``.value`` (so tests and scripts drive a panel by
setting values and calling ``.click()`` on its buttons). Display a panel by
leaving it as the last expression of a cell; ``panel.widget`` is the
``ipywidgets`` box.

- :class:`SplitInferencePanel`: one configuration on a testbed → latency
  breakdown, energy (with its source), accuracy.
- :class:`TradeoffExplorer`: a cube's configurations, any two objectives, the
  Pareto front, filters and what each selection rule picks at a latency threshold.
- :class:`OptimizerPanel`: algorithm, budget, seed → live hypervolume → the front.
- :class:`PolicyExporter`: rule and target → replay preview → ``policy.json`` and
  ``scheduler.py``.
- :func:`close_at_exit`: stop a testbed's workers when the kernel exits.
"""

from __future__ import annotations

from toolkit.lazy import lazy_exports

#: public name -> module that defines it (imported on first use)
_EXPORTS = {
    "SplitInferencePanel": "toolkit.widgets.split_inference",
    "TradeoffExplorer": "toolkit.widgets.tradeoff",
    "OptimizerPanel": "toolkit.widgets.optimizer",
    "PolicyExporter": "toolkit.widgets.policy",
    "close_at_exit": "toolkit.widgets.lifetime",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
