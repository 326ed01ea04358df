"""Online-phase benchmark on the DynaSplit VGG16 pool (issues 5 and 17).

Reads DynaSplit's ``simulation_pool_vgg16.csv`` (shipped under
``datasets/splinter/``), generates a 10 000-request trace as theirs was (Weibull shape 1,
90.6–5026.8 ms), runs our optimizer at a 20 % budget (NSGA-II and NSGA-III,
several seeds; plus the exhaustive Pareto front for reference), exports each
front with the default rule of ``dynasplit export`` and replays the trace over
several draw seeds.

**Against DynaSplit** (their rule on the same front): per request, the paired
differences policy − dynasplit in energy and in threshold met, averaged over
the draw seeds, and a bootstrap interval (over requests) of their means. Each
difference is ``lower``, ``higher`` or a ``tie`` (the interval contains 0; two
identical strategies always tie). The policy *wins* when it is better on one
and not worse on the other, *loses* in the mirror case, *ties* when both tie;
anything else is a *trade-off*. The same verdict on the expected figures (over
all runs of each chosen configuration, no draw noise) uses exact, strict
comparisons.

**Against the clairvoyant lower bound** (``toolkit.simulate``: it sees each
request's drawn run before choosing): the policy's energy over clairvoyant's,
minus one, and the thresholds met it leaves to it.

Goal: the policy wins against DynaSplit on the headline front (what
``dynasplit optimize CUBE --budget 0.2`` then ``dynasplit export`` give). A
policy equal to DynaSplit's rule ties and misses the goal.

Also: the ``tail`` rule's trade-off curve (target τ × confidence), the effect
of charging hardware-switch costs (reconfiguration-aware vs not), network drift
with the online EWMA adaptation, and the replay time.

Prints one JSON object; top-level keys: ``goal_met`` (headline front),
``goal_met_fraction`` (wins over all our fronts), ``tie_fraction``,
``policy_vs_dynasplit`` and ``policy_vs_clairvoyant`` (headline front). Run::

    .venv/bin/python benchmarks/online.py [--pool PATH] [--seeds 3] [--draw-seeds 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tqdm.auto import tqdm  # noqa: E402

from toolkit.cube import pareto_configs  # noqa: E402
from toolkit.optimize import ConfigSpace, CubeEvaluator, optimize  # noqa: E402
from toolkit.paths import SPLINTER_DIR  # noqa: E402
from toolkit.policy import DEFAULT_RULE, Policy  # noqa: E402
from toolkit.simulate import STRATEGIES, Drift, simulate  # noqa: E402
from toolkit.splinter import read_pool  # noqa: E402
from toolkit.trace import generate_trace  # noqa: E402

POOL = SPLINTER_DIR / "simulation_pool_vgg16.csv"
#: bootstrap resamples and the interval's coverage
BOOTSTRAP, COVERAGE = 2000, 0.95


def figures(sim) -> dict:
    """Per strategy: drawn and expected energy and thresholds met."""
    table = sim.table()
    return {s: {"energy_j_mean": float(r["energy_j_mean"]), "qos_met": float(r["qos_met"]),
                "expected_energy_j": float(r["expected_energy_j"]),
                "expected_qos_met": float(r["expected_qos_met"])}
            for s, r in table.iterrows()}


def per_request(sim, strategy: str) -> tuple[np.ndarray, np.ndarray]:
    """Drawn energy and met (0/1) per request of one strategy, in request order."""
    rows = sim.requests[sim.requests["strategy"] == strategy].sort_values("request")
    return rows["energy_j"].to_numpy(float), rows["met"].to_numpy(float)


def interval(diff: np.ndarray, rng: np.random.Generator) -> list[float]:
    """Bootstrap interval (over requests) of the mean of paired differences."""
    means = np.empty(BOOTSTRAP)
    for b in range(BOOTSTRAP):
        means[b] = diff[rng.integers(len(diff), size=len(diff))].mean()
    tail = (1.0 - COVERAGE) / 2
    return [float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))]


def direction(low: float, high: float) -> str:
    """``lower``/``higher`` when the interval excludes 0, else ``tie``."""
    return "lower" if high < 0 else "higher" if low > 0 else "tie"


def outcome(energy: str, met: str) -> str:
    """Win, loss, tie or trade-off from the energy and thresholds-met directions."""
    better = (energy == "lower") + (met == "higher")
    worse = (energy == "higher") + (met == "lower")
    if better and not worse:
        return "win"
    if worse and not better:
        return "loss"
    return "tie" if not better else "trade-off"


def compare(sims: list, rng: np.random.Generator) -> dict:
    """Policy vs dynasplit (bootstrap over requests) and vs clairvoyant, over draw seeds."""
    d_energy, d_met, pe, pm, ce, cm = [], [], [], [], [], []
    for sim in sims:
        p_e, p_m = per_request(sim, "policy")
        b_e, b_m = per_request(sim, "dynasplit")
        c_e, c_m = per_request(sim, "clairvoyant")
        d_energy.append(p_e - b_e)
        d_met.append(p_m - b_m)
        pe.append(p_e.mean()), pm.append(p_m.mean()), ce.append(c_e.mean()), cm.append(c_m.mean())
    d_energy, d_met = np.mean(d_energy, axis=0), np.mean(d_met, axis=0)
    e_ci, m_ci = interval(d_energy, rng), interval(d_met, rng)
    e_dir, m_dir = direction(*e_ci), direction(*m_ci)
    exp = [figures(sims[0])[s] for s in ("policy", "dynasplit")]
    de = exp[0]["expected_energy_j"] - exp[1]["expected_energy_j"]
    dm = exp[0]["expected_qos_met"] - exp[1]["expected_qos_met"]
    exp_dirs = ("lower" if de < 0 else "higher" if de > 0 else "tie",
                "higher" if dm > 0 else "lower" if dm < 0 else "tie")
    return {
        "vs_dynasplit": {
            "energy_j_diff": float(d_energy.mean()), "energy_j_diff_interval": e_ci,
            "energy": e_dir,
            "qos_met_diff": float(d_met.mean()), "qos_met_diff_interval": m_ci,
            "qos_met": m_dir,
            "requests_differing": int(np.count_nonzero((d_energy != 0) | (d_met != 0))),
            "outcome": outcome(e_dir, m_dir),
            "expected": {"energy_j_diff": de, "energy": exp_dirs[0],
                         "qos_met_diff": dm, "qos_met": exp_dirs[1],
                         "outcome": outcome(*exp_dirs)},
        },
        "vs_clairvoyant": {
            "energy_gap": float(np.mean(pe) / np.mean(ce) - 1.0),
            "energy_gap_per_seed": [round(float(p / c - 1.0), 6) for p, c in zip(pe, ce,
                                                                                  strict=True)],
            "qos_met_gap": float(np.mean(cm) - np.mean(pm)),
        },
    }


def mean_figures(sims: list) -> dict:
    """Per strategy, the figures averaged over the draw seeds."""
    all_figs = [figures(s) for s in sims]
    return {k: {f: round(float(np.mean([fig[k][f] for fig in all_figs])), 5)
                for f in all_figs[0][k]} for k in STRATEGIES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=Path, default=POOL)
    parser.add_argument("--seeds", type=int, default=3, help="optimizer seeds per algorithm")
    parser.add_argument("--trace-seed", type=int, default=0)
    parser.add_argument("--draw-seeds", type=int, default=10,
                        help="replays per front, with draw seeds 0..N-1")
    parser.add_argument("--budget", type=float, default=0.2)
    args = parser.parse_args()
    if not args.pool.is_file():
        sys.exit(f"DynaSplit pool not found at {args.pool} (see datasets README)")

    cube = read_pool(args.pool, model="vgg16")
    trace = generate_trace("vgg16", 90.6, 5026.8, 10_000, args.trace_seed)
    space = ConfigSpace.from_cube(cube)
    evaluator = CubeEvaluator(cube)
    rng = np.random.default_rng(0)

    fronts = {}
    for algorithm, seed in tqdm([(a, s) for a in ("nsga2", "nsga3") for s in range(args.seeds)],
                                desc="optimizer runs", unit="run"):
        result = optimize(space, evaluator, args.budget, algorithm=algorithm, seed=seed,
                          progress=False)
        fronts[f"{algorithm}-seed{seed}"] = ([e.config for e in result.front],
                                            result.evaluations)
    fronts["exhaustive"] = (pareto_configs(cube), len(space))

    runs = {}
    draw_seeds = range(args.draw_seeds)
    bar = tqdm(total=len(fronts) * len(draw_seeds), desc="replays", unit="replay")
    for name, (front, evaluations) in fronts.items():
        policy = Policy.from_front(front, cube)
        sims, t0 = [], time.perf_counter()
        for seed in draw_seeds:
            sims.append(simulate(cube, policy, trace, seed=seed, progress=False))
            bar.update()
        runs[name] = {"front_size": len(policy), "evaluations": evaluations,
                      "replay_s": round((time.perf_counter() - t0) / len(sims), 3),
                      **compare(sims, rng), "strategies": mean_figures(sims)}
    bar.close()

    ours = [r for n, r in runs.items() if n != "exhaustive"]
    outcomes = [r["vs_dynasplit"]["outcome"] for r in ours]
    head_name = "nsga2-seed0"  # what `dynasplit optimize CUBE --budget 0.2` does
    head = runs[head_name]
    head_policy = Policy.from_front(fronts[head_name][0], cube)

    curve = []
    for confidence in (0.5, 0.75, 0.9):
        for target in (0.5, 0.75, 0.9, 0.95, 0.99):
            sim = simulate(cube, head_policy.with_rule(name="tail", target=target,
                                                       confidence=confidence),
                           trace, seed=0, progress=False)
            p = figures(sim)["policy"]
            curve.append({"target": target, "confidence": confidence,
                          **{k: round(v, 5) for k, v in p.items()}})

    switching = {}
    for label, policy in (("default", head_policy),
                          ("reconfiguration-aware",
                           head_policy.with_rule(reconfiguration=True))):
        sim = simulate(cube, policy, trace, seed=0, switching=True, progress=False)
        fig = figures(sim)
        switching[label] = {k: {f: round(v, 5) for f, v in fig[k].items()}
                            for k in ("dynasplit", "policy", "clairvoyant")}

    drift = Drift(2000, 6000, 4.0)
    t0 = time.perf_counter()
    sim = simulate(cube, head_policy, trace, seed=0, drift=drift, adapt=True,
                   progress=False)
    drift_s = time.perf_counter() - t0
    in_drift = sim.requests[(sim.requests["request"] >= drift.start)
                            & (sim.requests["request"] < drift.end)]
    drift_met = in_drift.groupby("strategy")["met"].mean()

    print(json.dumps({
        "goal_met": head["vs_dynasplit"]["outcome"] == "win",
        "goal": "the policy wins against dynasplit on the headline front: better in energy "
                "or thresholds met (bootstrap interval of the paired difference excludes 0) "
                "and not worse in the other; a tie is no win",
        "policy_vs_dynasplit": head["vs_dynasplit"],
        "policy_vs_clairvoyant": head["vs_clairvoyant"],
        "goal_met_fraction": round(outcomes.count("win") / len(outcomes), 3),
        "tie_fraction": round(outcomes.count("tie") / len(outcomes), 3),
        "outcomes": {n: r["vs_dynasplit"]["outcome"] for n, r in runs.items()},
        "expected_outcomes": {n: r["vs_dynasplit"]["expected"]["outcome"]
                              for n, r in runs.items()},
        "headline_front": head_name,
        "default_rule": DEFAULT_RULE,
        "requests": len(trace),
        "trace": {"min_ms": 90.6, "max_ms": 5026.8, "weibull_shape": 1.0,
                  "seed": args.trace_seed},
        "draw_seeds": args.draw_seeds,
        "bootstrap": {"resamples": BOOTSTRAP, "coverage": COVERAGE, "over": "requests"},
        "energy_source": cube.attrs["energy_source"],
        "fronts": runs,
        "tail_tradeoff": curve,
        "switching_charged": switching,
        "drift": {"start": drift.start, "end": drift.end, "factor": drift.factor,
                  "qos_met_during_drift": {k: round(float(v), 4)
                                           for k, v in drift_met.items()},
                  "replay_s": round(drift_s, 3)},
    }, indent=1))


if __name__ == "__main__":
    main()
