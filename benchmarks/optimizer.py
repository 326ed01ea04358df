"""Benchmark: how much of the exhaustive front's hypervolume a budgeted search finds.

Usage::

    python benchmarks/optimizer.py CUBE.nc [--seeds 10] [--budgets 0.1,0.2]

For each budget (a fraction of the valid space) and seed it runs our optimizer
(NSGA-II and NSGA-III), random search (distinct configurations drawn uniformly)
and, when installed, Optuna's ``NSGAIIISampler`` (DynaSplit's choice) until each
has looked at the same number of distinct measured configurations. The score
is the hypervolume of the found front divided by the hypervolume of the
exhaustive front, both in the cube-normalised space of
:mod:`toolkit.optimize.objectives` (reference point 1.1 on every axis, accuracy
negated). Prints one JSON object; ``median_hv_ratio`` maps each budget to the
median ratio of our default algorithm.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np

from toolkit.cube import open_cube
from toolkit.optimize import ConfigSpace, CubeEvaluator, Optimizer, resolve_budget
from toolkit.pareto import pareto_mask

DEFAULT_ALGORITHM = "nsga2"


def _front_hv(values: np.ndarray, senses: list[str], normalizer) -> float:
    if len(values) == 0:
        return 0.0
    return normalizer.hypervolume(values[pareto_mask(values, senses)])


def _random_search(space, evaluator, objectives, n, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = []
    for row in rng.permutation(len(space)):
        found = evaluator.lookup(space.decode(space.genes[row]))
        if found is not None and all(o in found for o in objectives):
            values.append([found[o] for o in objectives])
        if len(values) == n:
            break
    return np.asarray(values, float)


def _optuna_search(space, evaluator, objectives, n, seed):
    """Optuna NSGA-III over the same genes; stops after ``n`` distinct measured configs."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    senses = {"latency_ms": "minimize", "energy_j": "minimize", "accuracy": "maximize"}
    seen: dict[tuple, list[float]] = {}
    last = space.values["split"][-1]

    def objective(trial):
        split = trial.suggest_int("split", space.values["split"][0], last)
        freq = trial.suggest_categorical("cpu_freq", list(space.values["cpu_freq"]))
        edge = (trial.suggest_categorical("edge_accel", list(space.values["edge_accel"]))
                if split > 0 else "none")
        cloud = (trial.suggest_categorical("cloud_accel", list(space.values["cloud_accel"]))
                 if split < last else "none")
        config = {"model": space.model, "split": split, "cpu_freq": freq,
                  "edge_accel": edge, "cloud_accel": cloud}
        key = (split, freq, edge, cloud)
        if key not in seen:
            found = evaluator.lookup(config) if config in space else None
            if found is None or not all(o in found for o in objectives):
                raise optuna.TrialPruned()  # unmeasured: not counted, not learned from
            seen[key] = [found[o] for o in objectives]
        if len(seen) >= n:
            trial.study.stop()
        return seen[key]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.NSGAIIISampler(seed=seed)
        study = optuna.create_study(directions=[senses[o] for o in objectives],
                                    sampler=sampler)
        study.optimize(objective, n_trials=50 * n)
    return np.asarray(list(seen.values()), float)


def _summary(ratios: list[float]) -> dict:
    return {"median": float(np.median(ratios)), "worst": float(np.min(ratios)),
            "ratios": [round(float(r), 6) for r in ratios]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cube", help="cube file (e.g. from dynasplit cube import-splinter)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budgets", default="0.1,0.2")
    args = parser.parse_args(argv)
    from tqdm.auto import tqdm

    start = time.perf_counter()
    cube = open_cube(args.cube)
    space = ConfigSpace.from_cube(cube)
    evaluator = CubeEvaluator(cube)
    objectives = list(evaluator.objectives)
    senses = ["max" if o == "accuracy" else "min" for o in objectives]
    normalizer = evaluator.normalizer(objectives)
    table = np.array([[v[o] for o in objectives] for v in evaluator.table.values()
                      if all(o in v for o in objectives)])
    exhaustive = _front_hv(table, senses, normalizer)
    try:
        import optuna  # noqa: F401

        have_optuna = True
    except ImportError:
        have_optuna = False

    budgets = [float(b) for b in args.budgets.split(",")]
    seeds = range(args.seeds)
    detail: dict = {}
    bar = tqdm(total=len(budgets) * len(seeds) * (4 if have_optuna else 3),
               desc="optimizer benchmark", file=sys.stderr)
    for budget in budgets:
        n = resolve_budget(budget, len(space))
        row: dict = {"evaluations": n}
        timing: dict = {}
        for algorithm in ("nsga2", "nsga3"):
            ratios, t0 = [], time.perf_counter()
            for seed in seeds:
                result = Optimizer(space, evaluator, algorithm=algorithm, seed=seed,
                                   progress=False).run(n)
                ratios.append(result.hypervolume / exhaustive)
                bar.update()
            row[algorithm] = _summary(ratios)
            timing[algorithm] = (time.perf_counter() - t0) / len(seeds)
        ratios = []
        for seed in seeds:
            ratios.append(_front_hv(_random_search(space, evaluator, objectives, n, seed),
                                    senses, normalizer) / exhaustive)
            bar.update()
        row["random"] = _summary(ratios)
        if have_optuna:
            ratios, t0 = [], time.perf_counter()
            for seed in seeds:
                ratios.append(_front_hv(_optuna_search(space, evaluator, objectives, n, seed),
                                        senses, normalizer) / exhaustive)
                bar.update()
            row["optuna_nsga3"] = _summary(ratios)
            timing["optuna_nsga3"] = (time.perf_counter() - t0) / len(seeds)
        row["seconds_per_run"] = {k: round(v, 3) for k, v in timing.items()}
        detail[str(budget)] = row
    bar.close()

    out = {
        "median_hv_ratio": {b: detail[b][DEFAULT_ALGORITHM]["median"] for b in detail},
        "default_algorithm": DEFAULT_ALGORITHM,
        "cube": str(args.cube),
        "model": space.model,
        "space_size": len(space),
        "objectives": objectives,
        "seeds": args.seeds,
        "exhaustive_hypervolume": exhaustive,
        "normalization": normalizer.to_dict(),
        "optuna": (__import__("optuna").__version__ if have_optuna else "not installed"),
        "budgets": detail,
        "beats_optuna_median": ({b: all(detail[b][a]["median"] > detail[b]["optuna_nsga3"]
                                        ["median"] for a in ("nsga2", "nsga3"))
                                 for b in detail} if have_optuna else None),
        "runtime_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
