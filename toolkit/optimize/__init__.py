"""The offline phase: search the configuration space for the Pareto front.

``ConfigSpace`` says which configurations exist, an ``Evaluator`` gives their
objectives (a cube look-up, a function, dask workers), ``Optimizer`` (DEAP
NSGA-II / NSGA-III) spends a budget of distinct evaluations, and the
``OptimizationResult`` holds the front, every evaluation and the hypervolume
history; ``save_front`` / ``load_front`` read and write ``FRONT.json``.
"""

from toolkit.optimize.budget import parse_budget, resolve_budget
from toolkit.optimize.evaluate import CubeEvaluator, DaskEvaluator, Evaluator, FunctionEvaluator
from toolkit.optimize.initial import initial_population
from toolkit.optimize.live import CampaignEvaluator
from toolkit.optimize.objectives import OBJECTIVES, REFERENCE, Normalizer, resolve_objectives
from toolkit.optimize.optimizer import ALGORITHMS, INITIALS, Generation, Optimizer, optimize
from toolkit.optimize.quality import FrontQuality, front_quality
from toolkit.optimize.result import (
    FRONT_SCHEMA,
    Evaluation,
    OptimizationResult,
    front_cube,
    load_front,
    save_front,
)
from toolkit.optimize.space import (
    GENES,
    ConfigSpace,
    Constraint,
    FrequencySubset,
    PartitionSplits,
)
from toolkit.optimize.variation import crossover, mutate, repair

__all__ = [
    "ALGORITHMS",
    "FRONT_SCHEMA",
    "GENES",
    "INITIALS",
    "OBJECTIVES",
    "REFERENCE",
    "CampaignEvaluator",
    "ConfigSpace",
    "Constraint",
    "CubeEvaluator",
    "DaskEvaluator",
    "Evaluation",
    "Evaluator",
    "FrequencySubset",
    "FrontQuality",
    "FunctionEvaluator",
    "Generation",
    "Normalizer",
    "OptimizationResult",
    "Optimizer",
    "PartitionSplits",
    "crossover",
    "front_cube",
    "front_quality",
    "initial_population",
    "load_front",
    "mutate",
    "optimize",
    "parse_budget",
    "repair",
    "resolve_budget",
    "resolve_objectives",
    "save_front",
]
