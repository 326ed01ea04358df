"""Benchmark: how much of the exhaustive front a budgeted search finds (issue 17).

Usage::

    python benchmarks/optimizer.py CUBE.nc [--seeds 10] [--first-seed 0] [--budgets 0.05,0.1,0.2]
        [--objectives latency_ms,energy_j] [--drop 0.2] [--noise 0.05] [--pool-seed 0]
        [--set offspring_size=2 --set near=0.05 ...]

For each budget (a fraction of the valid space) and seed it runs our optimizer
(NSGA-II and NSGA-III), random search (distinct configurations drawn uniformly)
and Optuna's ``NSGAIIISampler`` (DynaSplit's choice) until each has looked at
the same number of distinct measured configurations. Optuna asks for every
parameter (split, CPU frequency, edge and cloud accelerator) in every trial;
where a parameter has no effect (no edge accelerator when everything runs in
the cloud, no cloud accelerator on the edge) the evaluated configuration is
the canonical one, and trials on configurations the cube lacks are pruned
(neither counted nor learned from). Its population size is swept
(``--optuna-populations``) and the best one, by median hypervolume ratio, is
reported as ``optuna_best`` per budget.

Scores, against the cube's exhaustive front (:mod:`toolkit.optimize.quality`):
the **front-normalised hypervolume ratio** (normalised by the exhaustive front's
own ideal and nadir points), **IGD+** in that space, the **front share** (the
fraction of the exhaustive front's configurations found) and, for comparison
with earlier figures, the hypervolume ratio in the cube-normalised space of
:mod:`toolkit.optimize.objectives` (which compresses ratios towards 1).

``--set KEY=VALUE`` passes an option to our :class:`~toolkit.optimize.Optimizer`
(the value read as JSON, else as a string), so that a variant is measured with
the same command as the default.

``--drop`` and ``--noise`` make another pool from the cube (seeded by
``--pool-seed``): a fraction of the configurations removed, and every
configuration's latency and energy multiplied by a log-normal factor, to check
that the figures do not depend on one pool.

On such a pool the benchmark also runs a **clairvoyant** search, a ceiling for
every search rather than a competitor: it is told each configuration's value
before the noise (the cube's own) and the noise's law, but must measure a
configuration to see its value in the pool. Each step it measures the
configuration most often on the pool's front in Monte Carlo draws of the
unmeasured ones' noise (the measured ones at their values). Its figures, and
``clairvoyant.evaluations_for_goal`` (how many measurements it needs for the
10 % goal's figures), bound what a search that must learn the pool's structure
from its own measurements can expect.

Prints one JSON object; ``median_hv_ratio`` maps each budget to the median
front-normalised hypervolume ratio of our default algorithm; ``goal`` checks
the 10 % goal (median ratio ≥ 0.99 and median front share ≥ 0.9).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np

from toolkit.cube import cube_from_runs, open_cube, to_dataframe
from toolkit.optimize import ConfigSpace, CubeEvaluator, Optimizer, resolve_budget
from toolkit.optimize.quality import ReferenceFront
from toolkit.pareto import pareto_mask

DEFAULT_ALGORITHM = "nsga2"
GOAL_BUDGET, GOAL_HV, GOAL_SHARE = 0.1, 0.99, 0.9
#: Monte Carlo seeds of the clairvoyant search, and its noise draws per step
CLAIRVOYANT_SEEDS, CLAIRVOYANT_DRAWS = 3, 200


def perturbed(cube, drop: float, noise: float, seed: int):
    """Another pool: ``drop`` of the configurations removed, log-normal noise on the rest."""
    if drop <= 0 and noise <= 0:
        return cube
    rng = np.random.default_rng(seed)
    df = to_dataframe(cube)
    df = df[df["latency_ms"].notna()]
    keys = [c for c in df.columns if c not in ("repeat",) and c not in cube.data_vars]
    configs = df.groupby(keys, sort=False).ngroup().to_numpy()
    n = configs.max() + 1
    keep = rng.random(n) >= drop
    factor = np.exp(rng.normal(0.0, noise, size=(n, 2)))
    df = df[keep[configs]].copy()
    kept = configs[keep[configs]]
    df["latency_ms"] *= factor[kept, 0]
    df["energy_j"] *= factor[kept, 1]
    runs = [{k: v for k, v in r.items() if k != "repeat" and v == v}
            for r in df.to_dict("records")]
    return cube_from_runs(runs, dict(cube.attrs))


class Bench:
    """The space, evaluator and reference front shared by every search."""

    def __init__(self, cube, objectives: list[str] | None) -> None:
        self.space = ConfigSpace.from_cube(cube)
        self.evaluator = CubeEvaluator(cube)
        self.objectives = objectives or list(self.evaluator.objectives)
        self.senses = ["max" if o == "accuracy" else "min" for o in self.objectives]
        self.normalizer = self.evaluator.normalizer(self.objectives)
        keys, values = [], []
        self.configs: list[dict] = []          # the measured configurations, rows of table
        for genes in self.space.genes:
            config = self.space.decode(genes)
            found = self.measured(config)
            if found is not None:
                keys.append(tuple(int(g) for g in genes))
                values.append(found)
                self.configs.append(config)
        self.table = np.asarray(values, float)
        self.reference = ReferenceFront(self.table, self.senses, keys)
        self.cube_hv = self._cube_hv(self.table)

    def measured(self, config: dict) -> list[float] | None:
        found = self.evaluator.lookup(config) if config in self.space else None
        if found is None or not all(o in found for o in self.objectives):
            return None
        return [float(found[o]) for o in self.objectives]

    def _cube_hv(self, values: np.ndarray) -> float:
        if len(values) == 0:
            return 0.0
        return self.normalizer.hypervolume(values[pareto_mask(values, self.senses)])

    def prefix(self, order: list[int], n: int) -> tuple[list[dict], np.ndarray]:
        """The configurations and values of the first ``n`` rows of ``order``."""
        rows = order[:n]
        return [self.configs[i] for i in rows], self.table[rows]

    def score(self, configs: list[dict], values: np.ndarray) -> dict:
        keys = [tuple(int(g) for g in self.space.encode(c)) for c in configs]
        q = self.reference.score(values, keys)
        return {"hv_ratio": q.hv_ratio, "igd_plus": q.igd_plus, "front_share": q.front_share,
                "hv_ratio_cube": self._cube_hv(values) / self.cube_hv}


def ours(bench: Bench, algorithm: str, n: int, seed: int, initial: str = "guided",
         options: dict | None = None) -> tuple[list, np.ndarray]:
    result = Optimizer(bench.space, bench.evaluator, objectives=bench.objectives,
                       algorithm=algorithm, seed=seed, initial=initial, progress=False,
                       **(options or {})).run(n)
    configs = [e.config for e in result.evaluated]
    return configs, np.array([[e.values[o] for o in bench.objectives]
                              for e in result.evaluated], float)


def random_search(bench: Bench, n: int, seed: int) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)
    configs, values = [], []
    for row in rng.permutation(len(bench.space)):
        config = bench.space.decode(bench.space.genes[row])
        found = bench.measured(config)
        if found is not None:
            configs.append(config)
            values.append(found)
        if len(values) == n:
            break
    return configs, np.asarray(values, float)


def clairvoyant_order(bench: Bench, prior: np.ndarray, noise: float, n: int,
                      seed: int) -> list[int]:
    """The rows of ``bench.table`` a clairvoyant search measures, in order (``n`` of them).

    It knows ``prior`` (each row's latency and energy before the pool's
    log-normal ``noise``, and its accuracy) but sees a row's value in the pool
    only once it measured it. Each step it measures the unmeasured row most
    often non-dominated in :data:`CLAIRVOYANT_DRAWS` draws of the noise on the
    unmeasured rows, the measured ones at their pool values.
    """
    rng = np.random.default_rng(seed)
    noisy = [k for k, o in enumerate(bench.objectives) if o in ("latency_ms", "energy_j")]
    measured = np.zeros(len(prior), bool)
    order: list[int] = []
    for _ in range(min(n, len(prior))):
        draws = np.repeat(prior[None], CLAIRVOYANT_DRAWS, axis=0)
        draws[..., noisy] *= np.exp(rng.normal(0.0, noise, draws[..., noisy].shape))
        draws[:, measured] = bench.table[measured]
        on_front = sum(pareto_mask(d, bench.senses).astype(int) for d in draws)
        on_front[measured] = -1
        order.append(int(np.argmax(on_front)))
        measured[order[-1]] = True
    return order


def optuna_search(bench: Bench, n: int, seed: int, population: int) -> tuple[list, np.ndarray]:
    """Optuna NSGA-III over all four parameters; stops after ``n`` distinct measured configs."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = bench.space
    direction = {"min": "minimize", "max": "maximize"}
    seen: dict[tuple, tuple[dict, list[float]]] = {}
    first, last = space.values["split"][0], space.values["split"][-1]
    extras = {k: list(space.values[k]) for k in space.gene_names[4:]}

    def objective(trial):
        split = trial.suggest_int("split", first, last)
        config = {"model": space.model, "split": split,
                  "cpu_freq": trial.suggest_categorical("cpu_freq",
                                                        list(space.values["cpu_freq"])),
                  "edge_accel": trial.suggest_categorical("edge_accel",
                                                          list(space.values["edge_accel"])),
                  "cloud_accel": trial.suggest_categorical("cloud_accel",
                                                           list(space.values["cloud_accel"])),
                  **{k: trial.suggest_categorical(k, v) for k, v in extras.items()}}
        if split == first:     # nothing runs on the edge: its accelerator has no effect
            config["edge_accel"] = "none"
        if split == last:      # nothing runs in the cloud
            config["cloud_accel"] = "none"
        key = tuple(config[k] for k in space.gene_names)
        if key not in seen:
            found = bench.measured(config)
            if found is None:
                raise optuna.TrialPruned()  # not in the cube: not counted, not learned from
            seen[key] = (config, found)
        if len(seen) >= n:
            trial.study.stop()
        return seen[key][1]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.NSGAIIISampler(population_size=population, seed=seed)
        study = optuna.create_study(directions=[direction[s] for s in bench.senses],
                                    sampler=sampler)
        study.optimize(objective, n_trials=50 * n)
    return [c for c, _ in seen.values()], np.asarray([v for _, v in seen.values()], float)


def evaluations_for_goal(bench: Bench, order: list[int]) -> int | None:
    """The fewest first measurements of ``order`` that meet the 10 % goal's figures
    (None: not within ``order``)."""
    for k in range(1, len(order) + 1):
        score = bench.score(*bench.prefix(order, k))
        if score["hv_ratio"] >= GOAL_HV and score["front_share"] >= GOAL_SHARE:
            return k
    return None


def option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--set``: the value as JSON where it parses, else the string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set needs KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def summary(scores: list[dict]) -> dict:
    """Median (and worst) of each figure over seeds."""
    out = {}
    for k in ("hv_ratio", "igd_plus", "front_share", "hv_ratio_cube"):
        values = [s[k] for s in scores]
        worst = max(values) if k == "igd_plus" else min(values)
        out[k] = {"median": round(float(np.median(values)), 6),
                  "worst": round(float(worst), 6)}
    out["per_seed"] = {k: [round(float(s[k]), 4) for s in scores]
                       for k in ("hv_ratio", "front_share")}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cube", help="cube file (e.g. from dynasplit cube import-splinter)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1 (another sample)")
    parser.add_argument("--budgets", default="0.05,0.1,0.2")
    parser.add_argument("--objectives", default=None,
                        help="comma-separated subset, e.g. latency_ms,energy_j")
    parser.add_argument("--algorithms", default="nsga2,nsga3")
    parser.add_argument("--initial", default="guided",
                        help="our initial design: guided (the default) or latin")
    parser.add_argument("--set", type=option, action="append", default=[], metavar="KEY=VALUE",
                        help="an option of our Optimizer, e.g. offspring_size=2 (repeatable)")
    parser.add_argument("--optuna-populations", default="10,20,50")
    parser.add_argument("--drop", type=float, default=0.0,
                        help="fraction of configurations removed from the pool")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="sigma of log-normal noise on latency and energy")
    parser.add_argument("--pool-seed", type=int, default=0)
    args = parser.parse_args(argv)
    from tqdm.auto import tqdm

    start = time.perf_counter()
    original = open_cube(args.cube)
    cube = perturbed(original, args.drop, args.noise, args.pool_seed)
    bench = Bench(cube, args.objectives.split(",") if args.objectives else None)
    try:
        import optuna

        populations = [int(p) for p in args.optuna_populations.split(",") if p]
    except ImportError:
        optuna, populations = None, []

    options = dict(args.set)
    budgets = [float(b) for b in args.budgets.split(",")]
    algorithms = args.algorithms.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    searches: dict[str, Callable[[int, int], tuple[list, np.ndarray]]] = {
        **{a: (lambda n, s, a=a: ours(bench, a, n, s, args.initial, options))
           for a in algorithms},
        "random": lambda n, s: random_search(bench, n, s),
        **{f"optuna_nsga3_pop{p}": (lambda n, s, p=p: optuna_search(bench, n, s, p))
           for p in populations},
    }
    detail: dict = {}
    clairvoyant_runs = CLAIRVOYANT_SEEDS if args.noise > 0 else 0
    bar = tqdm(total=len(budgets) * len(seeds) * len(searches) + clairvoyant_runs,
               desc="optimizer benchmark", file=sys.stderr)
    orders: list[list[int]] = []
    if clairvoyant_runs:
        base = Bench(original, bench.objectives)
        prior = np.asarray([base.measured(c) for c in bench.configs], float)
        longest = max(resolve_budget(b, len(bench.space)) for b in budgets)
        for seed in range(clairvoyant_runs):
            orders.append(clairvoyant_order(bench, prior, args.noise, longest, seed))
            bar.update()
    for budget in budgets:
        n = resolve_budget(budget, len(bench.space))
        row: dict = {"evaluations": n}
        timing: dict = {}
        for name, search in searches.items():
            scores, t0 = [], time.perf_counter()
            for seed in seeds:
                scores.append(bench.score(*search(n, seed)))
                bar.update()
            row[name] = summary(scores)
            timing[name] = round((time.perf_counter() - t0) / len(seeds), 3)
        if orders:
            row["clairvoyant"] = summary([bench.score(*bench.prefix(o, n)) for o in orders])
        if populations:
            best = max((f"optuna_nsga3_pop{p}" for p in populations),
                       key=lambda k: row[k]["hv_ratio"]["median"])
            row["optuna_best"] = {"population": int(best.rsplit("pop", 1)[1]), **row[best]}
        row["seconds_per_run"] = timing
        detail[str(budget)] = row
    bar.close()

    def medians(key: str) -> dict:
        return {b: {name: detail[b][name][key]["median"]
                    for name in (*algorithms, "optuna_best", "random", "clairvoyant")
                    if name in detail[b]}
                for b in detail}

    goal_row = detail.get(str(GOAL_BUDGET), {}).get(DEFAULT_ALGORITHM)
    out = {
        "median_hv_ratio": {b: detail[b][DEFAULT_ALGORITHM]["hv_ratio"]["median"]
                            for b in detail if DEFAULT_ALGORITHM in detail[b]},
        "goal": None if goal_row is None else {
            "budget": GOAL_BUDGET, "hv_ratio_at_least": GOAL_HV,
            "front_share_at_least": GOAL_SHARE,
            "hv_ratio": goal_row["hv_ratio"]["median"],
            "front_share": goal_row["front_share"]["median"],
            "met": bool(goal_row["hv_ratio"]["median"] >= GOAL_HV
                        and goal_row["front_share"]["median"] >= GOAL_SHARE)},
        "clairvoyant": {
            "seeds": len(orders), "draws": CLAIRVOYANT_DRAWS,
            "evaluations_for_goal": [evaluations_for_goal(bench, o) for o in orders],
            "searched": len(orders[0]),
        } if orders else "not run: it needs a pool made with --noise (its prior is the cube "
                         "before the noise)",
        "hv_ratio": medians("hv_ratio"),
        "igd_plus": medians("igd_plus"),
        "front_share": medians("front_share"),
        "default_algorithm": DEFAULT_ALGORITHM,
        "cube": str(args.cube),
        "pool": {"drop": args.drop, "noise": args.noise, "seed": args.pool_seed},
        "model": bench.space.model,
        "space_size": len(bench.space),
        "measured": len(bench.table),
        "objectives": bench.objectives,
        "exhaustive_front_size": len(bench.reference),
        "front_ideal": bench.reference.ideal.tolist(),
        "front_nadir": bench.reference.nadir.tolist(),
        "seeds": args.seeds,
        "first_seed": args.first_seed,
        "initial": args.initial,
        "options": options,
        "optuna": optuna.__version__ if optuna else "not installed",
        "budgets": detail,
        "runtime_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
