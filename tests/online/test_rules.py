"""Selection rules: each rule's definition on hand-made candidates, and the
O(log n) compiled form equal to the brute-force definitions on random policies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolkit.errors import ConfigError
from toolkit.rules import (
    Candidates,
    Selector,
    dynasplit_rule,
    mean_rule,
    most_likely,
    reconfiguration_rule,
    required_successes,
    success_count,
    tail_quantile,
    tail_rule,
    wilson_lower,
    z_score,
)


def make(rows, states=None) -> Candidates:
    """Candidates from (runs, energy, accuracy) rows; runs are sorted here."""
    runs = [np.sort(np.asarray(r, dtype=float)) for r, _, _ in rows]
    return Candidates(
        mean_ms=np.array([r.mean() for r in runs]),
        energy_j=np.array([e for _, e, _ in rows], dtype=float),
        accuracy=np.array([np.nan if a is None else a for _, _, a in rows], dtype=float),
        n_runs=np.array([len(r) for r in runs]),
        runs_ms=runs,
        transfer_ms=np.zeros(len(rows)),
        states=list(states) if states else [],
    )


# --------------------------------------------------------------------------- definitions


def test_dynasplit_rule_least_energy_meeting_the_mean_else_fastest():
    c = make([([100.0], 10.0, 0.7), ([50.0], 20.0, 0.7), ([200.0], 5.0, 0.7)])
    sel = Selector(c, "dynasplit")
    assert sel.choose(300) == dynasplit_rule(c, 300) == 2   # all meet: least energy
    assert sel.choose(150) == dynasplit_rule(c, 150) == 0
    assert sel.choose(60) == dynasplit_rule(c, 60) == 1
    assert sel.choose(10) == dynasplit_rule(c, 10) == 1     # none meets: the fastest


def test_equal_energy_goes_to_higher_accuracy():
    c = make([([100.0], 10.0, 0.6), ([120.0], 10.0, 0.8)])
    assert Selector(c, "dynasplit").choose(500) == 1


def test_mean_rule_falls_back_to_the_most_likely_not_the_fastest():
    # A is slower on average but one run in three is fast; B is always 60 ms.
    c = make([([30.0, 100.0, 100.0], 10.0, None), ([60.0, 60.0, 60.0], 20.0, None)])
    z = z_score(0.9)
    assert dynasplit_rule(c, 50) == 1                      # fastest on average
    assert mean_rule(c, 50, z) == 0 == Selector(c, "mean").choose(50)
    assert mean_rule(c, 80, z) == 0                        # A's mean 76.7 meets: DynaSplit's
    assert Selector(c, "mean").choose(65) == dynasplit_rule(c, 65) == 1


def test_tail_rule_is_conservative_with_few_runs():
    # cheap: every run meets, but how many runs? expensive: 100 runs at 20 ms.
    expensive = ([20.0] * 100, 5.0, None)
    for n_cheap, expected in ((1, 1), (5, 1), (30, 0)):
        c = make([([10.0] * n_cheap, 1.0, None), expensive])
        sel = Selector(c, "tail", target=0.9, confidence=0.9)
        assert sel.choose(50) == tail_rule(c, 50, 0.9, z_score(0.9)) == expected, n_cheap
    # the point estimate (confidence 0.5) trusts a single run
    c = make([([10.0], 1.0, None), expensive])
    assert Selector(c, "tail", target=0.9, confidence=0.5).choose(50) == 0


def test_tail_rule_uses_the_distribution_not_the_mean():
    # A: mean 40 but 1 run in 10 at 220 ms; B: always 95 ms, more energy.
    a = [20.0] * 9 + [220.0]
    c = make([(a, 1.0, None), ([95.0] * 10, 2.0, None)])
    assert Selector(c, "dynasplit").choose(100) == 0
    assert Selector(c, "tail", target=0.95, confidence=0.5).choose(100) == 1
    assert Selector(c, "tail", target=0.85, confidence=0.5).choose(100) == 0


def test_tail_falls_back_to_the_most_likely():
    c = make([([10.0, 500.0, 500.0, 500.0], 1.0, None), ([300.0] * 4, 2.0, None)])
    z = z_score(0.9)
    assert tail_rule(c, 50, 0.99, z) == 0 == Selector(c, "tail", target=0.99).choose(50)
    assert tail_rule(c, 5, 0.99, z) == 1 == Selector(c, "tail", target=0.99).choose(5)


def test_accuracy_floor_applies_to_every_rule():
    c = make([([100.0], 1.0, 0.50), ([100.0], 2.0, 0.70), ([100.0], 3.0, 0.90)])
    for rule in ("dynasplit", "mean", "tail"):
        assert Selector(c, rule, confidence=0.5).choose(200) == 0
        assert Selector(c, rule, confidence=0.5, accuracy_floor=0.6).choose(200) == 1
        assert Selector(c, rule, confidence=0.5, accuracy_floor=0.9).choose(200) == 2
    with pytest.raises(ConfigError, match=r"accuracy floor 0\.95.*best has accuracy 0\.9"):
        Selector(c, "dynasplit", accuracy_floor=0.95)


def test_reconfiguration_aware_keeps_the_setting_unless_switching_repays():
    # candidate 0 runs in state "a"; 1 and 2 need state "b" (switch: 100 ms, 1.5 J)
    c = make([([100.0], 10.0, None), ([100.0], 9.5, None), ([100.0], 5.0, None)],
             states=["a", "b", "b"])

    def switch(frm, to):
        return (0.0, 0.0) if frm == to else (100.0, 1.5)

    sel = Selector(c, "dynasplit", switch=switch)
    assert sel.choose(1000) == 2                       # stateless: least energy
    assert sel.choose_from(150, "a") == 0              # switching would miss the threshold
    assert sel.choose_from(1000, "a") == 2             # saves 5 J > 1.5 J: switch
    only_small = make([([100.0], 10.0, None), ([100.0], 9.5, None)], states=["a", "b"])
    sel = Selector(only_small, "dynasplit", switch=switch)
    assert sel.choose_from(1000, "a") == 0             # saves 0.5 J < 1.5 J: keep
    assert sel.choose_from(1000, "b") == 1
    assert sel.choose_from(1000, None) == 1            # unknown state: no cost


# --------------------------------------------------------------------------- statistics


def test_required_successes_matches_the_wilson_bound():
    for z in (0.0, z_score(0.75), z_score(0.9), z_score(0.99)):
        for n in (1, 2, 5, 10, 51, 123, 500):
            for target in (0.5, 0.75, 0.9, 0.99):
                k = required_successes(n, target, z)
                ok = [kk for kk in range(n + 1) if wilson_lower(kk, n, z) >= target]
                assert (k == ok[0]) if ok else k > n
    assert wilson_lower(1, 1, z_score(0.9)) == pytest.approx(1 / (1 + z_score(0.9) ** 2))


def test_sampled_runs_count_by_rank():
    runs = np.arange(1.0, 1001.0)                       # 1000 runs, 1..1000 ms
    sample = runs[np.round(np.arange(1, 101) * 10).astype(int) - 1]   # 100 kept
    assert success_count(sample, 1000, 500.0) == 500
    assert success_count(sample, 1000, 0.5) == 0
    z = z_score(0.5)
    assert tail_quantile(sample, 1000, 0.9, z) == tail_quantile(runs, 1000, 0.9, z) == 900.0
    assert math.isinf(tail_quantile(np.array([5.0]), 1, 0.9, z_score(0.9)))


# ------------------------------------------------------------------ O(log n) == brute force


def random_candidates(rng: np.random.Generator, n: int) -> Candidates:
    runs, n_runs = [], []
    for _ in range(n):
        total = int(rng.choice([1, 1, 2, 3, 5, 10, 40, 300]))
        base = rng.uniform(50, 500)
        r = np.sort(np.round(base + rng.gamma(1.5, 20, total), int(rng.integers(0, 2))))
        if total > 64:  # keep an evenly spaced sample, as policies do for many runs
            r = r[np.maximum(1, np.round(np.arange(1, 65) * total / 64)).astype(int) - 1]
        runs.append(r)
        n_runs.append(total)
    energy = np.round(rng.uniform(1, 50, n), int(rng.integers(0, 2)))  # ties on purpose
    accuracy = np.round(rng.uniform(0.5, 0.8, n), 2)
    states = [int(s) for s in rng.integers(0, 4, n)]
    return Candidates(np.array([r.mean() for r in runs]), energy, accuracy,
                      np.array(n_runs), runs, np.zeros(n), states)


@pytest.mark.parametrize("seed", range(12))
def test_compiled_rules_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    c = random_candidates(rng, int(rng.integers(1, 40)))
    floor = None if seed % 3 else 0.6
    among = None
    confidence = float(rng.choice([0.5, 0.75, 0.9]))
    target = float(rng.choice([0.5, 0.9, 0.99]))
    z = z_score(confidence)
    ms_table = rng.uniform(0, 150, (4, 4))
    j_table = rng.uniform(0, 5, (4, 4))
    np.fill_diagonal(ms_table, 0)
    np.fill_diagonal(j_table, 0)

    def switch(frm, to):
        return float(ms_table[frm, to]), float(j_table[frm, to])

    try:
        sels = {rule: Selector(c, rule, target=target, confidence=confidence,
                               accuracy_floor=floor, switch=switch)
                for rule in ("dynasplit", "mean", "tail")}
    except ConfigError:
        assert floor is not None and np.nanmax(c.accuracy) < floor
        return
    among = list(sels["dynasplit"].among)
    edges = np.concatenate([r for r in c.runs_ms] + [c.mean_ms])
    thresholds = np.concatenate([edges, edges + 1e-9, edges - 1e-9, rng.uniform(0, 900, 50)])
    thresholds = rng.choice(thresholds, size=min(len(thresholds), 300), replace=False)
    for t in thresholds:
        t = float(t)
        assert sels["dynasplit"].choose(t) == dynasplit_rule(c, t, among)
        assert sels["mean"].choose(t) == mean_rule(c, t, z, among)
        assert sels["tail"].choose(t) == tail_rule(c, t, target, z, among)
        fastest = min(among, key=lambda i: (c.mean_ms[i], i))
        assert sels["dynasplit"].fallback(t) == fastest
        for rule in ("mean", "tail"):     # the last resort at any threshold, not just low ones
            assert sels[rule].fallback(t) == most_likely(c, t, z, among), rule
        for rule, sel in sels.items():
            state = int(rng.integers(0, 4))
            expected = reconfiguration_rule(c, t, sel.keys, state, switch,
                                            lambda sel=sel, t=t: sel.fallback(t), among)
            assert sel.choose_from(t, state) == expected, rule
    for rule, sel in sels.items():
        assert sel.choose_many(thresholds).tolist() == [sel.choose(float(t))
                                                        for t in thresholds], rule
