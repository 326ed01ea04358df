"""seaborn figures of cubes, fronts, searches, replays and partitions, with units.

Every function returns a matplotlib ``Figure`` (usable outside notebooks; save
it with ``fig.savefig``) and never calls ``plt.show``. Energy axes say whether
the figures were measured or modelled (the cube's ``energy_source``). One
module per topic: :mod:`~toolkit.plots.cube` (a measurement cube and its
front), :mod:`~toolkit.plots.optimizer` (the offline search),
:mod:`~toolkit.plots.online` (replays and the tail rule) and
:mod:`~toolkit.plots.partition` (multi-device partitioning);
:mod:`~toolkit.plots.common` holds the labels they share.
"""

from toolkit.plots.common import OBJECTIVE_LABELS, energy_kind, energy_label
from toolkit.plots.cube import (
    energy_latency,
    energy_vs_split,
    latency_breakdown,
    pareto_front_2d,
    pareto_pairs,
    run_breakdown,
)
from toolkit.plots.online import simulation_summary, tail_tradeoff
from toolkit.plots.optimizer import hypervolume_history
from toolkit.plots.partition import (
    partition_crossover,
    partition_energy,
    partition_hybrid,
    partition_hybrid_curve,
    partition_predicted_vs_measured,
)

__all__ = [
    "OBJECTIVE_LABELS",
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
    "partition_hybrid_curve",
    "partition_predicted_vs_measured",
    "run_breakdown",
    "simulation_summary",
    "tail_tradeoff",
]
