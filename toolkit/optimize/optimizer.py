"""The offline-phase optimizer: DEAP NSGA-II / NSGA-III under an evaluation budget.

The search runs on gene tuples of a :class:`~toolkit.optimize.space.ConfigSpace`
and counts *distinct evaluations*: every configuration is evaluated at most once
(a cache remembers results and unmeasured ones), and a configuration the
evaluator has no value for costs nothing and is never proposed again. An
initial design (:mod:`toolkit.optimize.initial`, or ``guided`` by the
surrogate) is followed by generations of ``lambda = max(4, mu // 4)`` children
(a (mu + lambda) scheme): breeding (:mod:`toolkit.optimize.variation`), the
front's neighbourhood (:mod:`toolkit.optimize.local`, and
:mod:`toolkit.optimize.complete` with ``complete_fill``), surrogate
pre-selection (:mod:`toolkit.optimize.surrogate`) and NSGA-II / NSGA-III
survival. The reported front is the non-dominated set of every evaluation.
docs/optimizer.md ("Algorithm") describes each step, the DEAP fitness classes
created at import and the reproducibility of a seed (the global ``random`` and
``numpy.random`` states DEAP uses are seeded for the run and restored after it).
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from deap import base, creator, tools

from toolkit.config import EXTRA_KEYS
from toolkit.errors import (
    ConfigError,
    ToolkitError,
    check_count,
    check_number,
    check_seed,
    choices,
)
from toolkit.optimize.budget import resolve_budget
from toolkit.optimize.complete import (
    front_lines,
    line_probability,
    non_domination_probability,
)
from toolkit.optimize.evaluate import Evaluator
from toolkit.optimize.initial import corner_genes, initial_population
from toolkit.optimize.local import front_neighbourhood
from toolkit.optimize.objectives import OBJECTIVES, Normalizer, resolve_objectives
from toolkit.optimize.result import Evaluation, OptimizationResult
from toolkit.optimize.space import GENES, ConfigSpace, Genes
from toolkit.optimize.surrogate import Surrogate, distance_to_front, pick_by_improvement
from toolkit.optimize.variation import crossover, mutate, repair
from toolkit.pareto import pareto_mask

__all__ = ["ALGORITHMS", "INITIALS", "MAX_POOL_FACTOR", "Generation", "Optimizer", "optimize"]

#: supported algorithms
ALGORITHMS: tuple[str, ...] = ("nsga2", "nsga3")

#: initial-population designs: ``guided`` (corners, then every inner split with the
#: rest of its configuration chosen by the surrogate) or ``latin`` (corners, then
#: every inner split with the other genes drawn Latin-hypercube style)
INITIALS: tuple[str, ...] = ("guided", "latin")

#: the most candidates bred per evaluated child (``pool_factor``): every generation
#: breeds ``pool_factor`` x its children before the surrogate screens them, so a
#: million would breed for hours
MAX_POOL_FACTOR = 1024

for _k in (1, 2, 3):
    if not hasattr(creator, f"DynaSplitFitness{_k}"):
        creator.create(f"DynaSplitFitness{_k}", base.Fitness, weights=(-1.0,) * _k)
    if not hasattr(creator, f"DynaSplitIndividual{_k}"):
        creator.create(f"DynaSplitIndividual{_k}", list,
                       fitness=getattr(creator, f"DynaSplitFitness{_k}"))


@contextlib.contextmanager
def _global_rng(seed: int | None) -> Iterator[None]:
    """Seed ``random`` and ``numpy.random`` for DEAP, restoring them afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(None if seed is None else seed % 2**32)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _reference_points(n_obj: int, size: int) -> np.ndarray:
    """Uniform reference points, as many as fit in ``size`` (at least one division)."""
    if n_obj == 1:
        return np.ones((1, 1))
    p = 1
    while math.comb(p + 1 + n_obj - 1, n_obj - 1) <= size:
        p += 1
    return tools.uniform_reference_points(n_obj, p)


class Optimizer:
    """Budgeted multi-objective search over a configuration space.

    Example:
        >>> space = ConfigSpace.from_cube(cube)                  # doctest: +SKIP
        >>> result = Optimizer(space, CubeEvaluator(cube), seed=0).run(0.2)  # doctest: +SKIP
    """

    def __init__(
        self,
        space: ConfigSpace,
        evaluator: Evaluator,
        *,
        objectives: str | Sequence[str] | None = None,
        algorithm: str = "nsga2",
        seed: int | None = 0,
        population_size: int | None = None,
        offspring_size: int | None = None,
        crossover_prob: float = 0.9,
        mutation_prob: float = 0.5,
        normalizer: Normalizer | None = None,
        surrogate: bool = True,
        pool_factor: int = 8,
        kappa: float = 0.5,
        local_share: float = 0.3,
        near: float = 0.0,
        complete_fill: bool = False,
        line_genes: Sequence[str] = ("cpu_freq",),
        initial: str = "guided",
        progress: bool = True,
        callback: Callable[[Generation], None] | None = None,
    ) -> None:
        """Configure a run.

        Args:
            space: the configuration space to search.
            evaluator: gives each configuration's objectives.
            objectives: subset of ``latency_ms, energy_j, accuracy``; default all
                the evaluator provides.
            algorithm: ``nsga2`` or ``nsga3``.
            seed: random seed (same seed, same result).
            population_size: ``mu``; default from the budget (see
                :meth:`population_size_for`).
            offspring_size: ``lambda``, children evaluated per generation;
                default ``max(4, mu // 4)``.
            crossover_prob: probability that a pair of parents is recombined.
            mutation_prob: probability that a child is mutated (children equal to
                a tried configuration are always moved to an untried neighbour).
            normalizer: objective ranges for the hypervolume; default the
                evaluator's (the cube's ranges) or else the evaluated ones.
            surrogate: pre-select children with the surrogate and add the
                front's neighbourhood to the candidates (docs/optimizer.md, "Algorithm").
            pool_factor: candidates bred per evaluated child when ``surrogate``
                (at most :data:`MAX_POOL_FACTOR`).
            kappa: optimism of the surrogate's pre-selection (spreads below the mean).
            local_share: the final share of the budget spent on Pareto local
                search: the surrogate then chooses among the front's
                neighbourhood only (0 turns the phase off).
            near: dominated points within this distance (normalised space) of a
                point dominating them are part of the front for the local search.
            complete_fill: in the final phase, when no candidate adds
                hypervolume even optimistically, fill the batch with the
                configurations on the front's lines most likely non-dominated
                (:mod:`toolkit.optimize.complete`) instead of those predicted
                nearest the front (off by default: docs/optimizer.md).
            line_genes: ordinal genes whose whole line (every other value) is
                one move away in the front's neighbourhood, not only the
                nearest value either way (:mod:`toolkit.optimize.local`); genes
                the space does not vary are ignored.
            initial: the initial design, ``guided`` or ``latin`` (see
                :data:`INITIALS`); ``guided`` falls back to ``latin`` without the
                surrogate.
            progress: show a tqdm bar (evaluations / budget and hypervolume).
            callback: called with a :class:`Generation` after the initial design
                and after each generation (what a panel or a log displays).

        Raises:
            ConfigError: unknown algorithm or objectives, a bad probability, size or seed.
        """
        if not isinstance(space, ConfigSpace):
            raise ConfigError("the optimizer searches a ConfigSpace (e.g. "
                              f"ConfigSpace.from_cube(cube)), got {type(space).__name__}")
        if not isinstance(evaluator, Evaluator):
            hint = " (wrap a cube: CubeEvaluator(cube))" if hasattr(evaluator, "data_vars") else ""
            raise ConfigError(f"the optimizer needs an Evaluator{hint}, got "
                              f"{type(evaluator).__name__}")
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {algorithm!r}; valid: {choices(ALGORITHMS)}")
        if initial not in INITIALS:
            raise ConfigError(f"unknown initial design {initial!r}; valid: {choices(INITIALS)}")
        for name, p in (("crossover_prob", crossover_prob), ("mutation_prob", mutation_prob),
                        ("local_share", local_share)):
            check_number(p, name, 0.0, 1.0)
        check_seed(seed)
        if population_size is not None:
            check_count(population_size, "population_size", 4)
        if offspring_size is not None:
            check_count(offspring_size, "offspring_size", 1)
        check_count(pool_factor, "pool_factor", 1, maximum=MAX_POOL_FACTOR)
        check_number(kappa, "kappa")
        check_number(near, "near", finite=False)  # inf: every dominated point is near
        if isinstance(line_genes, str) or not isinstance(line_genes, Iterable):
            raise ConfigError(f"line_genes must be a list of gene names, got {line_genes!r}")
        unknown = sorted(set(line_genes) - set(GENES) - set(EXTRA_KEYS), key=str)
        if unknown:
            raise ConfigError(f"unknown line_genes {unknown}; valid: "
                              f"{choices([*GENES, *EXTRA_KEYS])}")
        self.space = space
        self.evaluator = evaluator
        self.objectives = resolve_objectives(objectives, evaluator.objectives)
        self.algorithm = algorithm
        self.seed = seed
        self.population_size = population_size
        self.offspring_size = offspring_size
        self.crossover_prob = crossover_prob
        self.mutation_prob = mutation_prob
        self.progress = progress
        self.callback = callback
        self.surrogate = surrogate
        self.pool_factor = pool_factor
        self.kappa = kappa
        self.local_share = local_share
        self.near = near
        self.complete_fill = complete_fill
        self.line_genes = tuple(line_genes)
        self.initial = initial
        given = normalizer if normalizer is not None else evaluator.normalizer(self.objectives)
        self.normalizer = None if given is None else given.select(self.objectives)

    def population_size_for(self, budget: int) -> int:
        """Default population: the corners plus one member per inner split.

        Capped at half the budget (so that at least half is left for the
        search) but never below the corners + 4.
        """
        corners = len(corner_genes(self.space))
        inner = max(self.space.gene_sizes[0] - 2, 0)
        size = max(corners + 4, min(corners + inner, budget // 2))
        return int(min(self.space.size, size))

    def run(self, budget: float | int = 0.2) -> OptimizationResult:
        """Search until ``budget`` distinct evaluations are spent (or the space is).

        Args:
            budget: a fraction of the valid space in (0, 1] or an absolute count
                (see :func:`toolkit.optimize.budget.resolve_budget`).

        Returns:
            The :class:`OptimizationResult`.
        """
        n_budget = resolve_budget(budget, self.space.size)
        with _global_rng(self.seed):
            return _Run(self, n_budget).execute()


@dataclass(frozen=True)
class Generation:
    """What a run reports to its ``callback`` after each generation.

    Attributes:
        generation: 0 for the initial design, then 1, 2, ...
        evaluations: distinct configurations evaluated so far; ``budget``: how
            many the run may evaluate.
        hypervolume: of the front found so far, normalised as the run
            normalises (the evaluator's ranges where it has them).
        front_size: configurations on the front found so far.
    """

    generation: int
    evaluations: int
    budget: int
    hypervolume: float
    front_size: int


class _Run:
    """State of one optimisation run (cache, archive, population, history)."""

    def __init__(self, opt: Optimizer, budget: int) -> None:
        self.opt = opt
        self.space = opt.space
        self.budget = budget
        self.rng = np.random.default_rng(opt.seed)
        self.k = len(opt.objectives)
        self.individual = getattr(creator, f"DynaSplitIndividual{self.k}")
        self.sign = np.array([1.0 if OBJECTIVES[o] == "min" else -1.0 for o in opt.objectives])
        self.tried = np.zeros(self.space.size, bool)
        # the genes whose whole line is one move in the front's neighbourhood
        self.lines = [i for i, g in enumerate(self.space.gene_names) if g in opt.line_genes]
        self.cache: dict[Genes, np.ndarray | None] = {}
        self.evaluated: list[Evaluation] = []
        self.archive_genes: list[Genes] = []
        self.unmeasured: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.generation = 0
        self.mu = opt.population_size or opt.population_size_for(budget)
        self.lam = opt.offspring_size or max(4, self.mu // 4)
        self.ref_points = _reference_points(self.k, self.mu) if opt.algorithm == "nsga3" else None
        self.bar: Any = None

    # -- evaluation -------------------------------------------------------------------

    @property
    def used(self) -> int:
        return len(self.evaluated)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.budget or bool(self.tried.all())

    def _evaluate(self, batch: list[Genes]) -> list[Any]:
        """Evaluate new gene tuples; returns DEAP individuals of the measured ones."""
        batch = [g for g in dict.fromkeys(batch) if g not in self.cache]
        batch = batch[: self.budget - self.used]
        if not batch:
            return []
        configs = [self.space.decode(g) for g in batch]
        results = self.opt.evaluator.evaluate(configs)
        if len(results) != len(configs):
            raise ToolkitError(f"the evaluator returned {len(results)} results for "
                               f"{len(configs)} configurations")
        measured = []
        for genes, config, values in zip(batch, configs, results, strict=True):
            self.tried[self.space.index(genes)] = True
            vector = None
            if values is not None:
                raw = [values.get(o) for o in self.opt.objectives]
                if all(v is not None and math.isfinite(float(v)) for v in raw):
                    vector = np.asarray(raw, float)
            self.cache[genes] = vector
            if vector is None:
                self.unmeasured.append(config)
                continue
            clean = {k: float(v) for k, v in values.items() if k in OBJECTIVES}
            self.evaluated.append(Evaluation(config, clean, self.generation))
            self.archive_genes.append(genes)
            ind = self.individual(genes)
            ind.fitness.values = tuple(vector * self.sign)
            measured.append(ind)
            if self.bar is not None:
                self.bar.update(1)
        return measured

    def _archive_matrix(self) -> np.ndarray:
        return np.array([[e.values[o] for o in self.opt.objectives] for e in self.evaluated],
                        float).reshape(-1, self.k)

    def _record(self) -> None:
        now = _Prefix(self, self.used)
        hv = now.hypervolume(self.opt.normalizer or Normalizer.from_values(
            self.opt.objectives, now.values))
        self.history.append({"generation": self.generation, "evaluations": self.used,
                             "hypervolume": hv})
        if self.bar is not None:
            self.bar.set_postfix(gen=self.generation, hv=f"{hv:.4f}", refresh=False)
        if self.opt.callback is not None:
            self.opt.callback(Generation(self.generation, self.used, self.budget, hv,
                                         now.front_size()))

    # -- variation and selection ------------------------------------------------------

    def _select(self, individuals: list[Any], k: int) -> list[Any]:
        if len(individuals) <= k:
            return list(individuals)
        if self.k == 1:  # one objective: both reduce to keeping the k best
            return sorted(individuals, key=lambda ind: ind.fitness.values[0])[:k]
        if self.opt.algorithm == "nsga3":
            return tools.selNSGA3(individuals, k, self.ref_points)
        return tools.selNSGA2(individuals, k)

    def _parents(self, pop: list[Any], n: int) -> list[Any]:
        if self.opt.algorithm == "nsga3":
            return [pop[i] for i in self.rng.integers(len(pop), size=n)]
        rank = {id(ind): r for r, front in enumerate(tools.sortNondominated(pop, len(pop)))
                for ind in front}
        tools.emo.assignCrowdingDist(pop)
        # binary tournament on (rank, crowding distance): a tie goes to the first drawn
        return [min((pop[i] for i in self.rng.integers(len(pop), size=2)),
                    key=lambda ind: (rank[id(ind)], -ind.fitness.crowding_dist))
                for _ in range(n)]

    def _offspring(self, pop: list[Any], n: int) -> list[Genes]:
        exclude = self.tried.copy()
        children: list[Genes] = []

        def claim(genes: Genes | None) -> None:
            if genes is not None and len(children) < n:
                exclude[self.space.index(genes)] = True
                children.append(genes)

        parents = self._parents(pop, 2 * n)
        for a, b in zip(parents[0::2], parents[1::2], strict=True):
            if len(children) >= n or exclude.all():
                break
            if self.rng.random() < self.opt.crossover_prob:
                kids = [list(x) for x in crossover(a, b, self.space, self.rng) if x is not None]
            else:
                kids = [list(a), list(b)]
            for kid in kids:
                if len(children) >= n or exclude.all():
                    break
                if self.rng.random() < self.opt.mutation_prob:
                    claim(mutate(kid, self.space, self.rng, exclude=exclude))
                else:
                    claim(repair(kid, self.space, self.rng, exclude))
        return children

    def _screen(self, pool: list[Genes], n: int) -> list[Genes]:
        """Candidates + front neighbourhood, pre-selected by the surrogate."""
        if not self.opt.surrogate or self.used < 8:
            return pool[:n]
        values = self._archive_matrix()
        y = Normalizer.from_values(self.opt.objectives, values).transform(values)
        local = front_neighbourhood(self.archive_genes, y, self.space, self.cache,
                                    self.opt.near, self.lines)
        if self.used >= (1.0 - self.opt.local_share) * self.budget and local:
            pool = local  # final phase: Pareto local search around the front
        else:
            seen = set(pool)
            pool = pool + [g for g in local if g not in seen]
        if len(pool) <= n:
            return pool
        model, front = self._fit_surrogate()
        mean, std = model.predict(np.asarray(pool))
        complete = pool is local and self.opt.complete_fill
        picks = [pool[i] for i in pick_by_improvement(front, mean, std, n, kappa=self.opt.kappa,
                                                      fill=not complete)]
        if complete and len(picks) < n:  # nothing to gain by prediction: the front's lines
            lines = front_lines(self.archive_genes, y, self.space, self.cache)
            chosen = set(picks)
            rest = [g for g in dict.fromkeys(local + lines) if g not in chosen]
            picks += self._most_likely(rest, model, front, n - len(picks), y)
        return picks

    def _most_likely(self, pool: list[Genes], model: Surrogate, front: np.ndarray, n: int,
                     y: np.ndarray) -> list[Genes]:
        """The ``n`` candidates most likely on the front: by line, trees, then gap."""
        if not pool or n <= 0:
            return []
        draws = model.draws(np.asarray(pool))
        prob = non_domination_probability(draws, front)
        optimistic = draws.mean(axis=0) - self.opt.kappa * draws.std(axis=0)
        gap = np.array([distance_to_front(p, front) for p in optimistic])
        line = line_probability(self.archive_genes, y, pool)
        return [pool[int(i)] for i in np.lexsort((gap, -prob, -line))[:n]]

    # -- main loop --------------------------------------------------------------------

    def execute(self) -> OptimizationResult:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.budget, desc=f"{self.opt.algorithm} evaluations",
                        unit="eval", disable=not self.opt.progress, leave=False)
        try:
            pop = self._initial()
            self._record()
            while not self.exhausted and pop:
                self.generation += 1
                n = min(self.lam, self.budget - self.used)
                children = self._evaluate(self._screen(self._offspring(
                    pop, n * (self.opt.pool_factor if self.opt.surrogate else 1)), n))
                pop = self._select(pop + children, self.mu)
                self._record()
        finally:
            self.bar.close()
        return self._result()

    def _fit_surrogate(self) -> tuple[Surrogate, np.ndarray]:
        """The surrogate fitted on every evaluation, and the archive's front (normalised)."""
        values = self._archive_matrix()
        y = Normalizer.from_values(self.opt.objectives, values).transform(values)
        model = Surrogate(self.space, seed=int(self.rng.integers(2**31)),
                          onehot_ordinal=self.opt.initial == "guided").fit(
            np.asarray(self.archive_genes), y)
        return model, y[pareto_mask(y, ["min"] * self.k)]

    def _guided(self) -> list[Any]:
        """Guided initial design: corners, then each inner split once, chosen by the surrogate.

        The corners come first (as in the ``latin`` design); then the inner
        splits, in random order, in batches of ``lambda``: for each split of a
        batch, the surrogate fitted on everything measured so far picks, among
        the split's untried configurations, the one with the largest optimistic
        hypervolume gain (else the one nearest the front). What the corners
        teach (which accelerator is fast, which frequency is frugal) so carries
        over to the inner splits, while each split is still looked at once.
        A split whose pick is unmeasured is tried again in the next batch.
        """
        n_corners = min(len(corner_genes(self.space)), self.mu)
        pop = self._evaluate(initial_population(self.space, n_corners, self.rng))
        queue = self.rng.permutation(np.arange(1, self.space.gene_sizes[0] - 1)).tolist()
        queue = queue[: max(self.mu - len(pop), 0)]
        splits = self.space.genes[:, 0]
        while queue and not self.exhausted:
            batch, queue = queue[: self.lam], queue[self.lam:]
            model, front = self._fit_surrogate() if self.used >= 8 else (None, None)
            rows = [np.flatnonzero((splits == split) & ~self.tried) for split in batch]
            if model is not None and any(len(r) for r in rows):  # one prediction per batch
                mean, std = model.predict(self.space.genes[np.concatenate(rows)])
            picks: dict[Genes, int] = {}
            offset = 0
            for split, own in zip(batch, rows, strict=True):
                if len(own) == 0:
                    continue
                if model is None:
                    best = int(self.rng.integers(len(own)))
                else:
                    part = slice(offset, offset + len(own))
                    best = pick_by_improvement(front, mean[part], std[part], 1,
                                               kappa=self.opt.kappa)[0]
                    # kriging believer: the pick's prediction joins the front, so the
                    # next split's pick is worth most where this one adds nothing
                    front = np.vstack([front, mean[part][best]])
                offset += len(own)
                picks[tuple(int(v) for v in self.space.genes[own[best]])] = split
            pop += self._evaluate(list(picks))
            queue += [s for g, s in picks.items() if self.cache.get(g) is None]
        return pop

    def _initial(self) -> list[Any]:
        if self.opt.initial == "guided" and self.opt.surrogate:
            pop = self._guided()
        else:
            pop = self._evaluate(initial_population(self.space, self.mu, self.rng))
        # replace unmeasured members by their nearest untried neighbours
        while len(pop) < self.mu and not self.exhausted:
            missing = self.mu - len(pop)
            seeds = [g for g, v in self.cache.items() if v is None][-missing:] or [
                tuple(self.space.genes[self.rng.integers(self.space.size)])]
            exclude = self.tried.copy()
            batch = []
            for g in seeds:
                found = self.space.nearest(g, self.rng, exclude)
                if found is not None:
                    exclude[self.space.index(found)] = True
                    batch.append(found)
            if not batch:
                break
            pop += self._evaluate(batch)
        return pop

    def _result(self) -> OptimizationResult:
        values = self._archive_matrix()
        normalizer = self.opt.normalizer or Normalizer.from_values(
            self.opt.objectives, values)
        prefixes = [(h, _Prefix(self, h["evaluations"])) for h in self.history]
        history = [{**h, "hypervolume": sub.hypervolume(normalizer),  # the final normalisation
                    "front_size": sub.front_size()} for h, sub in prefixes]
        return OptimizationResult(
            model=self.space.model, algorithm=self.opt.algorithm, seed=self.opt.seed,
            objectives={o: OBJECTIVES[o] for o in self.opt.objectives},
            space_size=self.space.size, budget=self.budget, evaluated=list(self.evaluated),
            unmeasured=list(self.unmeasured), history=history, normalization=normalizer,
            energy_source=self.opt.evaluator.energy_source,
        )


class _Prefix:
    """The archive as it was after its first ``n`` evaluations."""

    def __init__(self, run: _Run, n: int) -> None:
        self.values = run._archive_matrix()[:n]
        senses = [OBJECTIVES[o] for o in run.opt.objectives]
        self.mask = (pareto_mask(self.values, senses) if len(self.values)
                     else np.zeros(0, bool))

    def hypervolume(self, normalizer: Normalizer) -> float:
        return normalizer.hypervolume(self.values[self.mask]) if len(self.values) else 0.0

    def front_size(self) -> int:
        return int(self.mask.sum())


def optimize(
    space: ConfigSpace,
    evaluator: Evaluator,
    budget: float | int = 0.2,
    *,
    algorithm: str = "nsga2",
    objectives: str | Sequence[str] | None = None,
    seed: int | None = 0,
    progress: bool = True,
    **options: Any,
) -> OptimizationResult:
    """Run :class:`Optimizer` once (see there for ``options``)."""
    return Optimizer(space, evaluator, algorithm=algorithm, objectives=objectives, seed=seed,
                     progress=progress, **options).run(budget)
