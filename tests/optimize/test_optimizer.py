"""The optimizer: budget and cache accounting, reproducibility, algorithms, quality."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

from toolkit.errors import ConfigError
from toolkit.optimize import (
    ConfigSpace,
    CubeEvaluator,
    FunctionEvaluator,
    Optimizer,
    optimize,
    resolve_budget,
)
from toolkit.pareto import pareto_mask


class CountingEvaluator(FunctionEvaluator):
    """Synthetic objectives; None for every 1400 MHz configuration; counts calls."""

    def __init__(self, objectives_fn) -> None:
        super().__init__(self._value)
        self.objectives_fn = objectives_fn
        self.calls: list[tuple] = []

    def _value(self, config):
        key = (config["split"], config["cpu_freq"], config["edge_accel"], config["cloud_accel"])
        self.calls.append(key)
        if config["cpu_freq"] == 1400:
            return None
        return self.objectives_fn(*key)


@pytest.fixture()
def profile_space():
    return ConfigSpace.from_profiles("toy", 8, "raspberry-pi-4", "cloud-gpu-server",
                                     edge_accels=["none", "tpu-std", "tpu-max"])


def test_budget_and_cache_accounting(profile_space, toy_objectives):
    evaluator = CountingEvaluator(toy_objectives)
    result = Optimizer(profile_space, evaluator, seed=3, progress=False).run(60)
    assert len(evaluator.calls) == len(set(evaluator.calls))  # never evaluated twice
    assert result.evaluations == 60 == result.budget
    assert len(result.unmeasured) > 0
    assert all(c["cpu_freq"] == 1400 for c in result.unmeasured)
    assert all(e.config["cpu_freq"] != 1400 for e in result.evaluated)
    assert len(evaluator.calls) == result.evaluations + len(result.unmeasured)
    assert [h["evaluations"] for h in result.history] == sorted(
        h["evaluations"] for h in result.history)
    assert result.history[-1]["evaluations"] == 60


def test_budget_fraction_and_exhaustion(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    evaluator = CubeEvaluator(toy_cube)
    result = optimize(space, evaluator, 0.1, seed=0, progress=False)
    assert result.evaluations == resolve_budget(0.1, len(space)) == round(0.1 * len(space))
    everything = optimize(space, evaluator, 1.0, seed=0, progress=False)
    assert everything.evaluations == len(space)
    assert everything.hypervolume == pytest.approx(_exhaustive_hv(toy_cube, everything))


def test_budget_errors(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    opt = Optimizer(space, CubeEvaluator(toy_cube), progress=False)
    for bad in (0.0, 1.5, -3, 0, "lots", True):
        with pytest.raises(ConfigError, match="budget"):
            opt.run(bad)
    assert resolve_budget(10_000, 50) == 50


def _result_doc(result):
    doc = result.as_dict()
    doc.pop("created_at")
    return doc


def test_seeded_runs_are_reproducible(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    for algorithm in ("nsga2", "nsga3"):
        a = optimize(space, CubeEvaluator(toy_cube), 0.25, algorithm=algorithm, seed=7,
                     progress=False)
        b = optimize(space, CubeEvaluator(toy_cube), 0.25, algorithm=algorithm, seed=7,
                     progress=False)
        assert _result_doc(a) == _result_doc(b)
    c = optimize(space, CubeEvaluator(toy_cube), 0.25, seed=8, progress=False)
    assert [e.config for e in c.evaluated] != [e.config for e in a.evaluated]
    with pytest.raises(ConfigError, match="seed must be None or an integer >= 0, got -1"):
        optimize(space, CubeEvaluator(toy_cube), 0.25, seed=-1, progress=False)


def test_global_random_state_is_restored(toy_cube):
    import random

    space = ConfigSpace.from_cube(toy_cube)
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    optimize(space, CubeEvaluator(toy_cube), 20, algorithm="nsga3", seed=1, progress=False)
    assert (random.random(), np.random.random()) == expected


def test_nsga3_path_and_objective_subsets(toy_cube, toy_cube_no_accuracy):
    space = ConfigSpace.from_cube(toy_cube)
    result = optimize(space, CubeEvaluator(toy_cube), 40, algorithm="nsga3", seed=2,
                      objectives=["energy_j", "latency_ms"], progress=False)
    assert result.objectives == {"latency_ms": "min", "energy_j": "min"}
    assert result.algorithm == "nsga3" and result.evaluations == 40
    single = optimize(space, CubeEvaluator(toy_cube), 20, algorithm="nsga3", seed=2,
                      objectives="energy_j", progress=False)
    best = min(e.values["energy_j"] for e in single.evaluated)
    assert [e.values["energy_j"] for e in single.front] == [best]
    two = optimize(ConfigSpace.from_cube(toy_cube_no_accuracy),
                   CubeEvaluator(toy_cube_no_accuracy), 30, seed=0, progress=False)
    assert list(two.objectives) == ["latency_ms", "energy_j"]
    with pytest.raises(ConfigError, match=r"accuracy.*not available"):
        Optimizer(space, CubeEvaluator(toy_cube_no_accuracy), objectives=["accuracy"])
    with pytest.raises(ConfigError, match=r"unknown objective.*valid: latency_ms"):
        Optimizer(space, CubeEvaluator(toy_cube), objectives=["speed"])
    with pytest.raises(ConfigError, match="unknown algorithm 'moead'; valid: nsga2, nsga3"):
        Optimizer(space, CubeEvaluator(toy_cube), algorithm="moead")
    with pytest.raises(ConfigError, match=r"objectives must be names .*got 3"):
        Optimizer(space, CubeEvaluator(toy_cube), objectives=3)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("crossover_prob", None, r"crossover_prob must be a number in \[0, 1\], got None"),
    ("mutation_prob", True, r"mutation_prob must be a number in \[0, 1\], got True"),
    ("local_share", 1.5, r"local_share must be a number in \[0, 1\], got 1.5"),
    ("population_size", float("nan"), "population_size must be an integer >= 4, got nan"),
    ("offspring_size", "8", "offspring_size must be an integer >= 1, got '8'"),
    ("pool_factor", 10**9, "pool_factor must be at most 1024, got 1000000000"),
    ("kappa", float("nan"), "kappa must be a number >= 0, got nan"),
    ("near", -1, "near must be a number >= 0, got -1"),
    ("line_genes", None, "line_genes must be a list of gene names, got None"),
])
def test_bad_options_are_named_before_any_evaluation(toy_cube, option, value, message):
    """Each was a TypeError from a comparison, or taken (nan, a pool of a billion)."""
    with pytest.raises(ConfigError, match=message):
        Optimizer(ConfigSpace.from_cube(toy_cube), CubeEvaluator(toy_cube), **{option: value})


def test_creator_classes_survive_reload(toy_cube):
    from deap import creator

    import toolkit.optimize.optimizer as module

    first = creator.DynaSplitIndividual3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # DEAP warns when a class is created twice
        reloaded = importlib.reload(module)
    assert creator.DynaSplitIndividual3 is first
    space = ConfigSpace.from_cube(toy_cube)
    result = reloaded.Optimizer(space, CubeEvaluator(toy_cube), progress=False).run(20)
    assert result.evaluations == 20


def _exhaustive_hv(cube, result):
    evaluator = CubeEvaluator(cube)
    objectives = list(result.objectives)
    values = np.array([[v[o] for o in objectives] for v in evaluator.table.values()])
    mask = pareto_mask(values, [result.objectives[o] for o in objectives])
    return result.normalization.hypervolume(values[mask])


def test_quality_on_synthetic_cube(toy_cube):
    """A quarter of the space finds (nearly) the exhaustive front's hypervolume."""
    space = ConfigSpace.from_cube(toy_cube)
    ratios = []
    for seed in range(3):
        result = optimize(space, CubeEvaluator(toy_cube), 0.25, seed=seed, progress=False)
        ratios.append(result.hypervolume / _exhaustive_hv(toy_cube, result))
        hv = [h["hypervolume"] for h in result.history]
        assert hv == sorted(hv)  # the archive's front only improves
    assert min(ratios) <= 1.0 + 1e-12
    assert np.median(ratios) >= 0.99
    random_ratios = []
    rng = np.random.default_rng(0)
    for _ in range(3):  # random search with the same budget does clearly worse
        rows = rng.choice(len(space), size=round(0.25 * len(space)), replace=False)
        sample = [space.decode(space.genes[r]) for r in rows]
        values = np.array([[CubeEvaluator(toy_cube).lookup(c)[o] for o in result.objectives]
                           for c in sample])
        mask = pareto_mask(values, list(result.objectives.values()))
        random_ratios.append(result.normalization.hypervolume(values[mask])
                             / _exhaustive_hv(toy_cube, result))
    assert np.median(ratios) > np.median(random_ratios)


def test_callback_reports_each_generation_as_the_history_records_it(toy_cube):
    reports = []
    result = optimize(ConfigSpace.from_cube(toy_cube), CubeEvaluator(toy_cube), 0.4, seed=2,
                      progress=False, callback=reports.append)
    assert [g.generation for g in reports] == list(range(len(reports))) and len(reports) >= 2
    assert [g.evaluations for g in reports] == [h["evaluations"] for h in result.history]
    assert all(g.budget == result.budget for g in reports)
    # the cube evaluator gives fixed ranges, so the live figures are the final ones
    assert [g.hypervolume for g in reports] == pytest.approx(
        [h["hypervolume"] for h in result.history])
    assert [g.front_size for g in reports] == [h["front_size"] for h in result.history]
    assert reports[-1].front_size == len(result.front)


def test_a_cube_given_as_the_evaluator_is_named_with_the_wrapper_to_use(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    with pytest.raises(ConfigError, match=r"needs an Evaluator \(wrap a cube: "
                                          r"CubeEvaluator\(cube\)\), got Dataset"):
        optimize(space, toy_cube, 0.5, progress=False)
    with pytest.raises(ConfigError, match=r"searches a ConfigSpace \(e\.g\. "
                                          r"ConfigSpace\.from_cube\(cube\)\), got Dataset"):
        optimize(toy_cube, CubeEvaluator(toy_cube), 0.5, progress=False)
