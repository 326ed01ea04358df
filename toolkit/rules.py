"""Selection rules of the online phase, and their O(log n) compiled form.

A policy's candidates are configurations with a measured latency distribution
(sorted per-run latencies), a mean energy and an accuracy (:class:`Candidates`).
Per request with a latency threshold ``t``, a *rule* picks one candidate. Each
rule is first written as a small pure function that states it plainly and scans
every candidate (O(n)); those functions are the definitions the tests check
against. :class:`Selector` compiles a rule into sorted arrays once, so that a
decision is one binary search (O(log n) in the number of candidates).

The rules:

- :func:`dynasplit_rule` — DynaSplit's: sort by energy (then accuracy, higher
  first), take the first whose mean latency meets the threshold, else the
  fastest (least mean latency).
- :func:`mean_rule` — DynaSplit's criterion with a better last resort: the
  least-energy candidate whose mean latency meets the threshold; when none
  does, the one most likely to meet it (as ``tail`` falls back) instead of the
  fastest on average.
- :func:`tail_rule` — least energy among the candidates whose probability of
  meeting the threshold is at least a target τ, judged with a one-sided Wilson
  lower bound on the measured runs (few runs → conservative); else the one most
  likely to meet it.
- an accuracy floor (:func:`eligible`) restricts either rule to the candidates
  whose mean accuracy reaches it.
- :func:`reconfiguration_rule` — reconfiguration-aware: from the current hardware
  state, a candidate's latency includes the time to switch to its setting and
  its energy the switch's energy; the least-energy candidate that still meets
  the threshold wins, so the current setting is kept whenever switching would
  not repay its own time and energy.

Every rule reduces to *"the least-energy candidate whose key is ≤ t, else a
fallback"*: the key is the mean latency for ``dynasplit`` and ``mean`` and the
conservative τ-quantile :func:`tail_quantile` for ``tail``. With candidates
sorted by key and a prefix minimum of (energy, −accuracy, key, index), a
decision is ``bisect`` + one look-up. The ``tail`` fallback ("most likely to
meet") is a step function of ``t`` precomputed by a sweep over all runs.

Ties are broken the same way everywhere: less energy, then higher accuracy, then
smaller key, then the earlier candidate.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from toolkit.errors import ConfigError, check_number, choices, is_number

__all__ = [
    "DEFAULT_CONFIDENCE",
    "RULES",
    "Candidates",
    "Selector",
    "dynasplit_rule",
    "eligible",
    "mean_rule",
    "most_likely",
    "reconfiguration_rule",
    "required_successes",
    "success_count",
    "tail_quantile",
    "tail_rule",
    "wilson_lower",
    "z_score",
]

#: rule names a policy may carry
RULES: tuple[str, ...] = ("dynasplit", "mean", "tail")

#: one-sided confidence of the Wilson lower bound used by the ``tail`` rule
DEFAULT_CONFIDENCE = 0.9

#: a switch cost look-up: (current state, a candidate's state) -> (ms, J)
SwitchCost = Callable[[Hashable, Hashable], tuple[float, float]]


# --------------------------------------------------------------------------- statistics


def z_score(confidence: float) -> float:
    """The one-sided normal quantile for a confidence in [0.5, 1); 0.5 gives 0."""
    check_number(confidence, "confidence", 0.5, 1.0, high_open=True)
    return NormalDist().inv_cdf(confidence)


def wilson_lower(k: int, n: int, z: float) -> float:
    """One-sided Wilson score lower bound of a success probability.

    Args:
        k: successes (runs that met the threshold).
        n: trials (runs), > 0.
        z: normal quantile of the confidence (0 gives the point estimate k/n).
    """
    if k <= 0:
        return 0.0
    p = k / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z2 / n))


def required_successes(n: int, target: float, z: float) -> int:
    """Fewest successes out of ``n`` runs whose Wilson lower bound reaches ``target``.

    The Wilson lower bound of ``k/n`` is at least τ exactly when
    ``k/n ≥ τ + z·sqrt(τ(1−τ)/n)``; the result may exceed ``n`` (never enough).
    """
    need = n * (target + z * math.sqrt(target * (1 - target) / n))
    k = math.ceil(need - 1e-9)
    while k > 0 and wilson_lower(k - 1, n, z) >= target:  # guard against rounding
        k -= 1
    while k <= n and wilson_lower(k, n, z) < target:
        k += 1
    return max(k, 1)


def _ranks(m: int, n: int) -> np.ndarray:
    """Run ranks (1-based) of the ``m`` stored order statistics of ``n`` runs."""
    if m == n:
        return np.arange(1, n + 1)
    return np.maximum(1, np.round(np.arange(1, m + 1) * n / m)).astype(np.int64)


def success_count(runs: np.ndarray, n: int, threshold_ms: float) -> int:
    """Runs (of ``n``) at or below ``threshold_ms``, from a sorted stored sample.

    ``runs`` holds all ``n`` sorted run latencies, or ``m < n`` evenly spaced
    order statistics of them (stored value ``j`` is the run of rank
    ``round((j+1)·n/m)``).
    """
    j = int(np.searchsorted(runs, threshold_ms, side="right"))
    return 0 if j == 0 else int(_ranks(len(runs), n)[j - 1])


def tail_quantile(runs: np.ndarray, n: int, target: float, z: float) -> float:
    """The conservative τ-quantile: the smallest threshold the ``tail`` rule accepts.

    A threshold ``t`` is accepted when at least :func:`required_successes` runs
    are ≤ ``t``; this is the latency of that run (``inf`` when the candidate has
    too few runs for the target at this confidence).
    """
    if n == 0 or len(runs) == 0:
        return math.inf
    k = required_successes(n, target, z)
    if k > n:
        return math.inf
    ranks = _ranks(len(runs), n)
    j = int(np.searchsorted(ranks, k, side="left"))
    return float(runs[j]) if j < len(runs) else math.inf


# --------------------------------------------------------------------------- candidates


@dataclass
class Candidates:
    """The candidate configurations of a policy, as arrays (one entry per candidate).

    Attributes:
        mean_ms: mean latency per candidate.
        energy_j: mean energy per candidate.
        accuracy: mean accuracy (NaN where unknown).
        n_runs: number of measured runs.
        runs_ms: per candidate, the sorted run latencies (or a sorted sample).
        transfer_ms: mean transfer time (for online adaptation).
        states: per candidate, its hardware state (hashable), for switch costs.
    """

    mean_ms: np.ndarray
    energy_j: np.ndarray
    accuracy: np.ndarray
    n_runs: np.ndarray
    runs_ms: list[np.ndarray]
    transfer_ms: np.ndarray
    states: list[Hashable] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.mean_ms)

    def order_key(self, i: int, key: float, extra_j: float = 0.0) -> tuple:
        """The tie-breaking order: less energy, higher accuracy, smaller key, index."""
        acc = self.accuracy[i]
        return (self.energy_j[i] + extra_j, -acc if acc == acc else math.inf, key, i)


# --------------------------------------------------------------------------- the rules


def eligible(c: Candidates, accuracy_floor: float | None) -> np.ndarray:
    """Accuracy floor: the indices of candidates whose mean accuracy ≥ the floor.

    ``None`` keeps every candidate. A candidate without an accuracy figure is
    dropped when a floor is set.

    Raises:
        ConfigError: no candidate reaches the floor (the best accuracy is named).
    """
    if accuracy_floor is None:
        return np.arange(len(c))
    if not is_number(accuracy_floor):
        raise ConfigError(f"the accuracy floor must be a number or none, got {accuracy_floor!r}")
    acc = np.nan_to_num(c.accuracy, nan=-np.inf)
    keep = np.flatnonzero(acc >= accuracy_floor)
    if len(keep) == 0:
        best = np.nanmax(c.accuracy) if np.isfinite(acc).any() else float("nan")
        raise ConfigError(f"no candidate reaches the accuracy floor {accuracy_floor}; "
                          f"the best has accuracy {best:.4g}")
    return keep


def _least_energy(c: Candidates, feasible: Sequence[int], keys: np.ndarray) -> int:
    return min(feasible, key=lambda i: c.order_key(i, keys[i]))


def dynasplit_rule(c: Candidates, threshold_ms: float,
                   among: Sequence[int] | None = None) -> int:
    """DynaSplit's rule.

    Sort the candidates by energy (then accuracy, higher first) and take the
    first whose *mean* latency is ≤ the threshold; when none is, take the
    fastest (least mean latency).
    """
    among = range(len(c)) if among is None else among
    feasible = [i for i in among if c.mean_ms[i] <= threshold_ms]
    if feasible:
        return _least_energy(c, feasible, c.mean_ms)
    return min(among, key=lambda i: (c.mean_ms[i], i))


def _likelihood(c: Candidates, i: int, threshold_ms: float, z: float) -> float:
    n = int(c.n_runs[i])
    return wilson_lower(success_count(c.runs_ms[i], n, threshold_ms), n, z) if n else 0.0


def most_likely(c: Candidates, threshold_ms: float, z: float,
                among: Sequence[int] | None = None) -> int:
    """The last resort of ``mean`` and ``tail``: the candidate most likely to meet.

    The highest one-sided Wilson lower bound (normal quantile ``z``) of the
    fraction of its runs ≤ the threshold; ties go to the least mean latency.
    """
    among = range(len(c)) if among is None else among
    return max(among, key=lambda i: (_likelihood(c, i, threshold_ms, z), -c.mean_ms[i], -i))


def mean_rule(c: Candidates, threshold_ms: float, z: float,
              among: Sequence[int] | None = None) -> int:
    """The mean rule: DynaSplit's criterion, with the tail rule's last resort.

    Take the least-energy candidate (then higher accuracy) whose *mean* latency
    is ≤ the threshold — exactly DynaSplit's choice. When none is, take the one
    most likely to meet the threshold: the highest one-sided Wilson lower bound
    (normal quantile ``z``) of the fraction of its runs ≤ the threshold (ties:
    least mean latency).
    """
    among = range(len(c)) if among is None else among
    feasible = [i for i in among if c.mean_ms[i] <= threshold_ms]
    if feasible:
        return _least_energy(c, feasible, c.mean_ms)
    return most_likely(c, threshold_ms, z, among)


def tail_rule(c: Candidates, threshold_ms: float, target: float, z: float,
              among: Sequence[int] | None = None) -> int:
    """The tail rule.

    Among the candidates whose probability of latency ≤ threshold is at least
    ``target`` — judged by the one-sided Wilson lower bound (normal quantile
    ``z``) on their measured runs, so a candidate with few runs needs more
    evidence — take the least energy. When none qualifies, take the one with the
    highest lower bound (the most likely to meet it; ties: least mean latency).
    """
    among = range(len(c)) if among is None else among
    feasible = [i for i in among if (n := int(c.n_runs[i])) and success_count(
        c.runs_ms[i], n, threshold_ms) >= required_successes(n, target, z)]
    if feasible:
        keys = np.array([tail_quantile(r, int(n), target, z)
                         for r, n in zip(c.runs_ms, c.n_runs, strict=True)])
        return _least_energy(c, feasible, keys)
    return most_likely(c, threshold_ms, z, among)


def reconfiguration_rule(c: Candidates, threshold_ms: float, keys: np.ndarray,
                         state: Hashable, switch: SwitchCost,
                         fallback: Callable[[], int],
                         among: Sequence[int] | None = None) -> int:
    """Reconfiguration-aware selection from the current hardware ``state``.

    A candidate meets the request when its key (mean latency for ``dynasplit``,
    conservative quantile for ``tail``) plus the time to switch from ``state``
    to its hardware setting is ≤ the threshold; among those, take the least
    energy *including* the switch's energy. Staying costs nothing, so the current
    setting is kept whenever it meets the request and switching would not repay
    its own time and energy. When none meets it, ``fallback()`` decides.
    """
    among = range(len(c)) if among is None else among
    costs = ((i, *switch(state, c.states[i])) for i in among)
    meeting = [c.order_key(i, keys[i] + ms, j) for i, ms, j in costs
               if keys[i] + ms <= threshold_ms]
    return min(meeting)[3] if meeting else fallback()


# --------------------------------------------------------------------------- compiled form


@dataclass
class _Steps:
    """A step function of the threshold: ``choice[bisect_right(edges, t) - 1]``."""

    edges: list[float]
    choice: list[int]
    below: int  # choice when t < edges[0] (or -1: use the fallback)

    def __call__(self, t: float) -> int:
        i = bisect.bisect_right(self.edges, t)
        return self.choice[i - 1] if i else self.below

    def many(self, t: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`__call__` over an array of thresholds."""
        if not self.edges:
            return np.full(len(t), self.below, dtype=np.int64)
        i = np.searchsorted(np.asarray(self.edges), t, side="right")
        choice = np.asarray(self.choice, dtype=np.int64)
        return np.where(i > 0, choice[np.maximum(i - 1, 0)], self.below)


def _prefix_best(c: Candidates, idx: np.ndarray, keys: np.ndarray,
                 extra_j: np.ndarray | None = None) -> _Steps:
    """Least (energy + extra) among the candidates with key ≤ t, as a step function."""
    finite = idx[np.isfinite(keys[idx])]
    if len(finite) == 0:
        return _Steps([], [], -1)
    energy = c.energy_j[finite] + (0.0 if extra_j is None else extra_j[finite])
    acc = np.nan_to_num(c.accuracy[finite], nan=-np.inf)
    k = keys[finite]
    rank_order = np.lexsort((finite, k, -acc, energy))  # energy, -acc, key, index
    rank = np.empty(len(finite), dtype=np.int64)
    rank[rank_order] = np.arange(len(finite))
    by_key = np.lexsort((rank, k))
    best_rank = np.minimum.accumulate(rank[by_key])
    return _Steps(k[by_key].tolist(), finite[rank_order[best_rank]].tolist(), -1)


def _wilson_array(k: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """:func:`wilson_lower` element-wise (same operations, same floats)."""
    k = k.astype(float)
    n = n.astype(float)
    p = k / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return np.where(k > 0, np.maximum(0.0, (centre - spread) / (1 + z2 / n)), 0.0)


def _flat_runs(c: Candidates, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All stored runs of ``idx``: latency, owner and run rank (see :func:`_ranks`)."""
    runs = [c.runs_ms[i] for i in idx]
    lengths = np.array([len(r) for r in runs], dtype=np.int64)
    if lengths.sum() == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0), empty, empty
    t = np.concatenate(runs)
    owner = np.repeat(idx, lengths)
    m = np.repeat(lengths, lengths)
    n = c.n_runs[owner]
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    j = np.arange(len(t)) - first + 1
    ranks = np.where(m == n, j, np.maximum(1, np.round(j * n / np.maximum(m, 1))))
    return t, owner, ranks.astype(np.int64)


def _most_likely(c: Candidates, idx: np.ndarray, z: float,
                 below: float = math.inf) -> _Steps:
    """The ``mean``/``tail`` fallback as a step function: highest Wilson bound at t.

    Each stored run is an event at which its candidate's success count (and so
    its lower bound, which never decreases in t) rises; the running maximum over
    events is the best candidate. Ties go to the least mean latency. Only
    thresholds under ``below`` are answered exactly (later events are dropped).
    """
    by_speed = idx[np.lexsort((idx, c.mean_ms[idx]))]
    fastest = int(by_speed[0])
    t, owner, ranks = _flat_runs(c, idx)
    early = t < below
    t, owner, ranks = t[early], owner[early], ranks[early]
    if len(t) == 0:
        return _Steps([], [], fastest)
    value = _wilson_array(ranks, c.n_runs[owner], z)
    order = np.argsort(t, kind="stable")
    t, owner, value = t[order], owner[order], value[order]
    speed_rank = np.empty(len(c), dtype=np.int64)
    speed_rank[by_speed] = np.arange(len(by_speed))
    levels, level = np.unique(value, return_inverse=True)
    m = len(by_speed)
    composite = level.astype(np.int64) * (m + 1) + (m - speed_rank[owner])
    best = np.maximum.accumulate(composite)
    leader = by_speed[m - best % (m + 1)]
    # several events at one latency: the state after the last of them counts
    last = np.r_[t[1:] != t[:-1], True]
    leader = np.where(levels[best // (m + 1)] <= 0.0, fastest, leader)
    return _Steps(t[last].tolist(), leader[last].tolist(), fastest)


def _tail_keys(c: Candidates, target: float, z: float) -> np.ndarray:
    """:func:`tail_quantile` of every candidate (``required_successes`` cached per n)."""
    need = functools.cache(lambda n: required_successes(n, target, z))
    keys = np.full(len(c), math.inf)
    for i, (runs, n) in enumerate(zip(c.runs_ms, c.n_runs.tolist(), strict=True)):
        if n == 0 or len(runs) == 0 or (k := need(n)) > n:
            continue
        keys[i] = runs[k - 1] if len(runs) == n else tail_quantile(runs, n, target, z)
    return keys


class Selector:
    """A rule compiled for O(log n) decisions.

    Args:
        candidates: the policy's candidates.
        rule: ``dynasplit``, ``mean`` or ``tail``.
        target: the ``tail`` rule's τ.
        confidence: the one-sided confidence of the Wilson bound (0.5 = point
            estimate).
        accuracy_floor: drop candidates below this mean accuracy.
        switch: switch cost look-up ``(current state, candidate state) -> (ms,
            J)``; needed for :meth:`choose_from`.
        shift_ms: added to every candidate's latency key (online adaptation,
            e.g. ``(f - 1) * transfer_ms``); None for none.

    ``choose(t)`` is the rule itself; ``choose_from(t, state)`` is its
    reconfiguration-aware form, compiled lazily once per state met.
    """

    def __init__(self, candidates: Candidates, rule: str = "dynasplit", *,
                 target: float = 0.99, confidence: float = DEFAULT_CONFIDENCE,
                 accuracy_floor: float | None = None, switch: SwitchCost | None = None,
                 shift_ms: np.ndarray | None = None) -> None:
        if rule not in RULES:
            raise ConfigError(f"unknown rule {rule!r}; valid: {choices(RULES)}")
        check_number(target, "the tail target", 0.0, 1.0, low_open=True, high_open=True)
        if len(candidates) == 0:
            raise ConfigError("a policy needs at least one candidate")
        self.c = candidates
        self.rule = rule
        self.target = target
        self.z = z_score(confidence)
        self.among = eligible(candidates, accuracy_floor)
        self.switch = switch
        self.shift_ms = (np.zeros(len(candidates)) if shift_ms is None
                         else np.asarray(shift_ms, float))
        keys = _tail_keys(candidates, target, self.z) if rule == "tail" else candidates.mean_ms
        self.keys = keys + self.shift_ms
        self._best = _prefix_best(candidates, self.among, self.keys)
        # The fallback is needed below the smallest key; compile that part now and
        # the rest (for reconfiguration-aware decisions) only when first asked.
        self._bound = self._best.edges[0] if self._best.edges else math.inf
        self._fallback = self._compile_fallback(self._bound)
        self._fallback_full: _Steps | None = None if math.isfinite(self._bound) \
            else self._fallback
        self._by_state: dict[Hashable, _Steps] = {}
        states = candidates.states or [None] * len(candidates)
        self._to_states = list(dict.fromkeys(states))
        where = {s: k for k, s in enumerate(self._to_states)}
        self._state_ids = np.array([where[s] for s in states], dtype=np.int64)

    def _compile_fallback(self, below: float) -> _Steps:
        """The fallback step function, exact for thresholds under ``below``."""
        if self.rule == "dynasplit":
            order = self.among[np.lexsort((self.among, self.keys[self.among]))]
            return _Steps([], [], int(order[0]))
        c, shift = self.c, self.shift_ms
        runs = c.runs_ms if not shift.any() else [r + s for r, s in zip(c.runs_ms, shift,
                                                                          strict=True)]
        shifted = Candidates(c.mean_ms + shift, c.energy_j, c.accuracy, c.n_runs, runs,
                             c.transfer_ms, c.states)
        return _most_likely(shifted, self.among, self.z, below)

    def fallback(self, threshold_ms: float) -> int:
        """The rule's choice when no candidate meets the threshold."""
        if threshold_ms < self._bound:
            return self._fallback(threshold_ms)
        if self._fallback_full is None:
            self._fallback_full = self._compile_fallback(math.inf)
        return self._fallback_full(threshold_ms)

    def choose(self, threshold_ms: float) -> int:
        """The rule's candidate index for a threshold, in O(log n)."""
        i = self._best(threshold_ms)
        return i if i >= 0 else self._fallback(threshold_ms)  # t is below every key

    def choose_many(self, thresholds_ms: np.ndarray) -> np.ndarray:
        """:meth:`choose` for an array of thresholds at once (vectorised)."""
        t = np.asarray(thresholds_ms, dtype=float)
        picked = self._best.many(t)
        missing = picked < 0
        if missing.any():
            picked[missing] = self._fallback.many(t[missing])
        return picked

    def choose_from(self, threshold_ms: float, state: Hashable | None) -> int:
        """The reconfiguration-aware choice from hardware ``state`` (None: unknown)."""
        if state is None or self.switch is None:
            return self.choose(threshold_ms)
        steps = self._by_state.get(state)
        if steps is None:
            table = np.array([self.switch(state, s) for s in self._to_states], dtype=float)
            cost = table.reshape(-1, 2)[self._state_ids]
            steps = _prefix_best(self.c, self.among, self.keys + cost[:, 0], cost[:, 1])
            self._by_state[state] = steps
        i = steps(threshold_ms)
        return i if i >= 0 else self.fallback(threshold_ms)
