"""Trace replay: score online strategies on a cube's measured runs.

For each request of a QoS trace, every strategy picks a configuration; the
replay then draws one measured run of that configuration (seeded) and scores
its energy, its latency and whether the latency met the request's threshold.
All strategies share one uniform draw per request (common random numbers): two
strategies that pick the same configuration for a request get the same run.

Strategies (see ``docs/online.md``):

- ``cloud``: everything in the cloud (split 0) at the highest measured CPU
  frequency, on the fastest cloud accelerator measured there;
- ``edge``: everything on the edge (the last split), highest frequency, fastest
  edge accelerator;
- ``static-energy`` / ``static-latency``: the configuration of least mean
  energy / latency among the policy's candidates (the optimizer's front, as
  DynaSplit takes its static baselines), for every request;
- ``static-energy-space`` / ``static-latency-space``: the same over the whole
  cube (every measured configuration);
- ``dynasplit``: DynaSplit's rule on the policy's candidates;
- ``policy``: the policy's own rule (tail target, accuracy floor,
  reconfiguration awareness as exported);
- ``dynasplit-exhaustive``: DynaSplit's rule on the *whole cube* (the
  least-energy configuration whose mean latency meets the threshold, else the
  fastest): what DynaSplit would do after an exhaustive search. It knows only
  means, so it is no bound: a policy can beat it;
- ``clairvoyant``: a real lower bound. It knows each request's drawn run
  before choosing: per request, the least-energy configuration whose *drawn*
  run meets the threshold (drift included), else the one whose drawn run is
  fastest. No strategy that chooses among the cube's configurations meets
  more thresholds, and none that meets a threshold spends less on it (without
  switching charges, which it does not foresee);
- ``policy-adaptive`` (with ``adapt=True``): the policy's rule with an online
  EWMA correction of transfer times (:class:`toolkit.adapt.DriftTracker`).

Configurations are the cube's full configurations: the canonical keys plus
any extra dimension (``codec``, ``strategy``, ``devices``); the ``cloud`` and
``edge`` baselines take the fastest of them at their split and frequency.

Options: *network drift* multiplies the drawn runs' transfer time by a factor
over a segment of the trace (latency grows by ``(factor − 1) × transfer_ms``;
energy is left as measured); *switching* charges every strategy the profiles'
hardware-change time and energy whenever its hardware setting changes between
consecutive requests.

Decisions are vectorised (one binary search per request over precompiled
arrays); only sequential strategies (reconfiguration-aware, adaptive) loop.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from toolkit.adapt import DriftTracker
from toolkit.config import config_keys, single_extras
from toolkit.errors import ToolkitError, check_number, check_seed, short_repr
from toolkit.fileio import plain_value
from toolkit.policy import Policy
from toolkit.rules import Candidates, Selector
from toolkit.switching import HardwareState, hardware_state, next_state

__all__ = ["SIMULATION_SCHEMA", "STRATEGIES", "Drift", "Simulation", "simulate"]

SIMULATION_SCHEMA = "dynasplit.simulation/1"

#: strategies every replay scores, in report order
STRATEGIES: tuple[str, ...] = ("cloud", "edge", "static-energy", "static-latency",
                               "static-energy-space", "static-latency-space",
                               "dynasplit", "policy", "dynasplit-exhaustive", "clairvoyant")


@dataclass(frozen=True)
class Drift:
    """Network drift: transfer times × ``factor`` for requests ``start`` ≤ i < ``end``."""

    start: int
    end: int
    factor: float

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool):
                raise ToolkitError(f"drift {name} must be a request index (an integer), got "
                                   f"{short_repr(value)}")
        check_number(self.factor, "drift factor", low_open=True)
        if self.start < 0 or self.end <= self.start:
            raise ToolkitError(f"drift segment must satisfy 0 <= start < end, got "
                               f"{self.start}..{self.end}")

    @classmethod
    def parse(cls, text: str) -> Drift:
        """From ``START:END:FACTOR`` (request indices, end exclusive)."""
        try:
            start, end, factor = text.split(":")
            return cls(int(start), int(end), float(factor))
        except ValueError:
            raise ToolkitError(f"drift {text!r} is not START:END:FACTOR, e.g. 2000:6000:4"
                               ) from None


@dataclass
class _Runs:
    """Every measured run of a cube, flat, with per-configuration offsets."""

    configs: list[dict[str, Any]]
    start: np.ndarray
    count: np.ndarray
    latency: np.ndarray
    energy: np.ndarray
    transfer: np.ndarray
    candidates: Candidates
    index: dict[tuple, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    single: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cube(cls, cube: Any, model: str | None) -> _Runs:
        from toolkit.cube import measured_runs

        df = measured_runs(cube, purpose="a trace replay")
        if model is not None and "model" in df.columns:
            df = df[df["model"] == model]
        if df.empty:
            raise ToolkitError(f"the cube has no measured run of model {model!r}")
        keys = config_keys(df.columns)
        df = df.sort_values([*keys, "latency_ms"], kind="stable").reset_index(drop=True)
        group = df.groupby(keys, sort=False).ngroup().to_numpy()
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        counts = np.diff(np.r_[starts, len(df)])
        first = df.iloc[starts]
        configs = [{k: plain_value(v) for k, v in r.items()}
                   for r in first[keys].to_dict("records")]
        lat = df["latency_ms"].to_numpy(float)
        energy = df["energy_j"].to_numpy(float)
        transfer = np.nan_to_num(df["transfer_ms"].to_numpy(float)) if "transfer_ms" in df \
            else np.zeros(len(df))
        acc = df["accuracy"].to_numpy(float) if "accuracy" in df else np.full(len(df), np.nan)

        def per_config(values: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore"):
                sums = np.add.reduceat(np.nan_to_num(values), starts)
                n = np.add.reduceat((~np.isnan(values)).astype(float), starts)
                return np.where(n > 0, sums / np.maximum(n, 1), np.nan)

        cand = Candidates(
            mean_ms=per_config(lat), energy_j=per_config(energy), accuracy=per_config(acc),
            n_runs=counts.astype(np.int64),
            runs_ms=[lat[s:s + n] for s, n in zip(starts, counts, strict=True)],
            transfer_ms=per_config(transfer),
        )
        if np.isnan(cand.energy_j).any():
            raise ToolkitError("the cube has configurations with latency but no energy")
        return cls(configs, starts, counts, lat, energy, transfer, cand,
                   index={tuple(c[k] for k in keys): i for i, c in enumerate(configs)},
                   keys=keys, single=single_extras({k: [c[k] for c in configs] for k in keys}))

    def lookup(self, config: Mapping[str, Any]) -> int:
        key = tuple(config[k] if k in config else self.single.get(k) for k in self.keys)
        if key not in self.index:
            raise ToolkitError(f"policy candidate {dict(config)} is not measured in the cube; "
                               "simulate with the cube the policy was exported from")
        return self.index[key]


@dataclass
class Simulation:
    """The result of a replay.

    Attributes:
        requests: one row per (strategy, request): ``strategy, request,
            threshold_ms, config`` (index into :attr:`configs`), ``latency_ms,
            energy_j, met`` of the drawn run, and ``expected_energy_j,
            met_probability`` over all runs of the configuration (no draw noise).
        configs: the cube's measured configurations.
        seed: the seed of the run draws.
        energy_source: where the energy figures come from.
        options: drift, switching, adaptation and the policy's rule.
        mean_latency_ms: mean latency of each configuration over its runs.
    """

    requests: pd.DataFrame
    configs: list[dict[str, Any]]
    seed: int | None
    energy_source: str
    options: dict[str, Any]
    mean_latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def table(self) -> pd.DataFrame:
        """Per strategy: ``energy_j_mean, latency_ms_mean, qos_met`` (drawn runs),
        ``expected_energy_j, expected_qos_met`` (over all runs) and
        ``energy_saving_vs_cloud``."""
        g = self.requests.groupby("strategy", sort=False)
        out = pd.DataFrame({"energy_j_mean": g["energy_j"].mean(),
                            "latency_ms_mean": g["latency_ms"].mean(),
                            "qos_met": g["met"].mean(),
                            "expected_energy_j": g["expected_energy_j"].mean(),
                            "expected_qos_met": g["met_probability"].mean()})
        cloud = out["energy_j_mean"].get("cloud", np.nan)
        out["energy_saving_vs_cloud"] = 1.0 - out["energy_j_mean"] / cloud
        out.attrs["energy_source"] = self.energy_source
        return out

    def as_dict(self) -> dict[str, Any]:
        """The ``simulate --json`` document (schema ``dynasplit.simulation/1``)."""
        table = self.table()
        return {
            "schema": SIMULATION_SCHEMA,
            "requests": int(self.requests["request"].nunique()),
            "seed": self.seed,
            "energy_source": self.energy_source,
            "strategies": {s: {k: float(row[k]) for k in
                               ("energy_j_mean", "latency_ms_mean", "qos_met")}
                           for s, row in table.iterrows()},
            "energy_saving_vs_cloud": {s: (None if math.isnan(v) else float(v))
                                       for s, v in table["energy_saving_vs_cloud"].items()},
            "expected": {s: {"energy_j_mean": float(row["expected_energy_j"]),
                             "qos_met": float(row["expected_qos_met"])}
                         for s, row in table.iterrows()},
            **self.options,
        }


def _fixed(runs: _Runs, split: int, notes: list[str], name: str) -> int | None:
    c = runs.candidates
    at = [i for i, cfg in enumerate(runs.configs) if int(cfg["split"]) == split]
    if not at:
        notes.append(f"{name}: no configuration with split {split} measured")
        return None
    top = max(int(runs.configs[i]["cpu_freq"]) for i in at)
    at = [i for i in at if int(runs.configs[i]["cpu_freq"]) == top]
    return min(at, key=lambda i: (c.mean_ms[i], i))


def _sequential(policy: Policy, thresholds: np.ndarray, to_cube: np.ndarray, runs: _Runs,
                draw: np.ndarray, factors: np.ndarray, tracker: DriftTracker | None,
                progress: bool) -> np.ndarray:
    """Policy decisions request by request (state and/or adaptation)."""
    from tqdm.auto import tqdm

    out = np.empty(len(thresholds), dtype=np.int64)
    state: HardwareState | None = None
    transfer = policy.candidates.transfer_ms
    for r in tqdm(range(len(thresholds)), desc="replay", unit="req", disable=not progress,
                  leave=False):
        factor = tracker.grid_factor if tracker else 1.0
        d = policy.decide(float(thresholds[r]), state, factor)
        out[r] = d.index
        state = d.state
        if tracker is not None:
            cube_i = to_cube[d.index]
            run = runs.start[cube_i] + int(draw[r] * runs.count[cube_i])
            tracker.observe(float(transfer[d.index]), runs.transfer[run] * factors[r])
    return out


def _as_policy(policy: Policy | Mapping[str, Any] | str | os.PathLike) -> Policy:
    """A :class:`Policy`, from itself, its POLICY.json path or its document."""
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str | os.PathLike):
        return Policy.load(policy)
    if isinstance(policy, Mapping):
        return Policy.from_dict(policy)
    raise ToolkitError(f"simulate needs a policy (Policy.load('policy.json'), its path or its "
                       f"document), got {type(policy).__name__}")


def simulate(cube: Any, policy: Policy | Mapping[str, Any] | str | os.PathLike,
             trace: pd.DataFrame | np.ndarray | str | os.PathLike, *,
             seed: int | None = 0, drift: Drift | None = None, adapt: bool = False,
             alpha: float = 0.3, switching: bool = False,
             progress: bool = True) -> Simulation:
    """Replay a trace against every strategy.

    Args:
        cube: the cube the policy was exported from (its runs are replayed), or
            its file's path.
        policy: the policy (its candidates must be measured in the cube), or its
            POLICY.json path or document.
        trace: a trace (:func:`toolkit.trace.read_trace`; its ``Latency``
            column), a trace CSV's path (the policy's network's requests) or an
            array of thresholds in ms.
        seed: seed of the run draws (same seed, same result).
        drift: network drift over a segment of the trace.
        adapt: also score ``policy-adaptive`` (EWMA transfer correction).
        alpha: the EWMA weight of the adaptation.
        switching: charge hardware-change time and energy.
        progress: show a progress bar for sequential strategies.

    Returns:
        A :class:`Simulation`.

    Raises:
        ToolkitError: an empty trace, a threshold that is not a finite number >= 0,
            thresholds in more than one column,
            a bad seed, drift or alpha, a drift beyond the trace, or a policy
            candidate not measured in the cube.
    """
    check_seed(seed)
    if drift is not None and not isinstance(drift, Drift):
        raise ToolkitError(f"drift must be a Drift (e.g. Drift(2000, 6000, 4.0) or "
                           f"Drift.parse('2000:6000:4')) or None, got {short_repr(drift)}")
    check_number(alpha, "alpha", 0.0, 1.0, low_open=True)
    policy = _as_policy(policy)
    if isinstance(trace, str | os.PathLike):  # a trace CSV: the policy's network's requests
        from toolkit.trace import read_trace

        trace = read_trace(trace, model=policy.doc.get("model") or None)
    try:
        thresholds = np.asarray(trace["Latency"] if isinstance(trace, pd.DataFrame) else trace,
                                dtype=float)
    except (TypeError, ValueError) as exc:
        raise ToolkitError(f"the trace's thresholds are not numbers ({exc})") from None
    if sum(size > 1 for size in thresholds.shape) > 1:   # e.g. a table's Index and Latency
        raise ToolkitError(f"the trace's thresholds should be one column of ms, got an array of "
                           f"shape {thresholds.shape}; pass the trace table or its Latency column")
    thresholds = thresholds.ravel()
    n = len(thresholds)
    if n == 0:
        raise ToolkitError("the trace has no requests")
    bad = np.flatnonzero(~(np.isfinite(thresholds) & (thresholds >= 0)))
    if len(bad):
        raise ToolkitError(f"request {int(bad[0])} of the trace has the threshold "
                           f"{thresholds[bad[0]]}; a threshold is a number of ms >= 0")
    if drift is not None and drift.start >= n:
        raise ToolkitError(f"drift starts at request {drift.start} but the trace has {n}")
    runs = _Runs.from_cube(cube, policy.doc.get("model") or None)
    to_cube = np.array([runs.lookup(c) for c in policy.configs], dtype=np.int64)
    draw = np.random.default_rng(seed).random(n)
    factors = np.ones(n)
    if drift is not None:
        factors[drift.start:drift.end] = drift.factor

    notes: list[str] = []
    picks: dict[str, np.ndarray] = {}
    c = runs.candidates
    for name, split in (("cloud", 0), ("edge", policy.last_split)):
        fixed = _fixed(runs, split, notes, name)
        if fixed is not None:
            picks[name] = np.full(n, fixed)
    picks.update(_static(c, to_cube, n))
    plain = policy.with_rule(name="dynasplit", accuracy_floor=None, reconfiguration=False)
    picks["dynasplit"] = to_cube[plain.selector.choose_many(thresholds)]
    if policy.rule["reconfiguration"]:
        picks["policy"] = to_cube[_sequential(policy, thresholds, to_cube, runs, draw,
                                              factors, None, progress)]
    else:
        picks["policy"] = to_cube[policy.selector.choose_many(thresholds)]
    picks["dynasplit-exhaustive"] = Selector(c, "dynasplit").choose_many(thresholds)
    picks["clairvoyant"] = _clairvoyant(runs, thresholds, draw, factors)
    if adapt:
        tracker = DriftTracker(alpha)
        picks["policy-adaptive"] = to_cube[_sequential(policy, thresholds, to_cube, runs, draw,
                                                       factors, tracker, progress)]

    frames = []
    for name, pick in picks.items():
        run = runs.start[pick] + (draw * runs.count[pick]).astype(np.int64)
        latency = runs.latency[run] + (factors - 1.0) * runs.transfer[run]
        energy = runs.energy[run].copy()
        ms = j = np.zeros(n)
        if switching:
            ms, j = _switching(runs, pick, policy)
            latency = latency + ms
            energy = energy + j
        p_met = _met_probability(runs, pick, thresholds - ms, factors)
        frames.append(pd.DataFrame({
            "strategy": name, "request": np.arange(n), "threshold_ms": thresholds,
            "config": pick, "latency_ms": latency, "energy_j": energy,
            "met": latency <= thresholds,
            "expected_energy_j": c.energy_j[pick] + j, "met_probability": p_met,
        }))
    options = {"policy_rule": policy.rule, "switching": switching, "adapt": adapt,
               "drift": None if drift is None else asdict(drift)}
    if notes:
        options["notes"] = notes
    return Simulation(pd.concat(frames, ignore_index=True), runs.configs, seed,
                      policy.energy_source, options, c.mean_ms.copy())


def _static(c: Candidates, front: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The static baselines: least mean energy / latency on the front (the
    policy's candidates, cube indices ``front``) and over the whole cube."""
    def best(first: np.ndarray, then: np.ndarray, among: np.ndarray) -> np.ndarray:
        return np.full(n, int(among[np.lexsort((then[among], first[among]))[0]]))

    everything = np.arange(len(c.energy_j))
    return {
        "static-energy": best(c.energy_j, c.mean_ms, front),
        "static-latency": best(c.mean_ms, c.energy_j, front),
        "static-energy-space": best(c.energy_j, c.mean_ms, everything),
        "static-latency-space": best(c.mean_ms, c.energy_j, everything),
    }


def _clairvoyant(runs: _Runs, thresholds: np.ndarray, draw: np.ndarray,
                 factors: np.ndarray) -> np.ndarray:
    """Per request, the least-energy configuration whose drawn run meets the threshold.

    Else the configuration whose drawn run is fastest. Uses the same draw as
    the replay (common random numbers), so what it sees is what it gets.
    """
    n, k = len(thresholds), len(runs.start)
    out = np.empty(n, dtype=np.int64)
    for chunk in np.array_split(np.arange(n), max(1, n * k // 2_000_000 + 1)):
        run = runs.start[None, :] + (draw[chunk, None] * runs.count[None, :]).astype(np.int64)
        latency = runs.latency[run] + (factors[chunk, None] - 1.0) * runs.transfer[run]
        met = latency <= thresholds[chunk, None]
        cheapest = np.argmin(np.where(met, runs.energy[run], np.inf), axis=1)
        out[chunk] = np.where(met.any(axis=1), cheapest, np.argmin(latency, axis=1))
    return out


def _met_probability(runs: _Runs, pick: np.ndarray, budget_ms: np.ndarray,
                     factors: np.ndarray) -> np.ndarray:
    """Per request, the fraction of the chosen configuration's runs within budget."""
    out = np.empty(len(pick))
    for cfg in np.unique(pick):
        at = np.flatnonzero(pick == cfg)
        s, k = runs.start[cfg], runs.count[cfg]
        lat, tr = runs.latency[s:s + k], runs.transfer[s:s + k]
        for chunk in np.array_split(at, max(1, len(at) * k // 2_000_000 + 1)):
            total = lat[None, :] + (factors[chunk, None] - 1.0) * tr[None, :]
            out[chunk] = (total <= budget_ms[chunk, None]).mean(axis=1)
    return out


def _switching(runs: _Runs, pick: np.ndarray, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Per-request switch time and energy of a sequence of configurations (the policy's
    costs, :meth:`Policy.switch_cost`)."""
    needed = [hardware_state(cfg, policy.last_split) for cfg in runs.configs]
    ms, j = np.zeros((2, len(pick)))
    state: HardwareState | None = None
    for r, i in enumerate(pick.tolist()):
        want = needed[i]
        ms[r], j[r] = policy.switch_cost(state, want)
        state = next_state(state, want)
    return ms, j

