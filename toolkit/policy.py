"""Policies: what the online phase knows about each candidate configuration.

A *policy* is a versioned JSON document (schema ``dynasplit.policy/1``) made
from a Pareto front (``FRONT.json``) and the cube it was measured in. It holds,
per candidate configuration, the latency distribution (mean, p50, p90, p99,
number of runs and the sorted per-run latencies, or an evenly spaced sample of
them), the mean energy, accuracy and transfer time; the selection rule and its
parameters; and the hardware-change costs of the edge and cloud profiles. See
``docs/online.md`` for the format. The selection rules themselves are in
:mod:`toolkit.rules`; :class:`Policy` compiles the document's rule at load so
that each decision costs O(log n) in the number of candidates.

Candidates are keyed by the full configuration: the canonical keys plus every
extra key (``codec``, ``strategy``, ``devices``) the cube has as a dimension, so
two candidates that differ only in their codec or partitioning strategy are two
candidates. The rules look at latency, energy and accuracy only; the extra keys
cost nothing to switch (the hardware state is the canonical keys'). Where the
cube has no ``codec`` dimension but records its single codec (a campaign cube's
``codecs`` attribute), the document's top-level ``codec`` says which one
(:meth:`Policy.codec`).

The hardware states and switch costs a reconfiguration-aware policy uses are
in :mod:`toolkit.switching`; online adaptation (:class:`~toolkit.adapt.DriftTracker`)
in :mod:`toolkit.adapt`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit import __version__
from toolkit.config import (
    CONFIG_KEYS,
    EXTRA_KEYS,
    KEYS,
    config_keys,
    domain_values,
    single_extras,
)
from toolkit.errors import ConfigError, ToolkitError, check_count, choices, is_number, short_repr
from toolkit.fileio import atomic_output, plain_value, read_json, utc_timestamp
from toolkit.rules import DEFAULT_CONFIDENCE, RULES, Candidates, Selector
from toolkit.switching import HardwareState, hardware_state, next_state, switch_cost
from toolkit.tomlfile import LARGEST_INTEGER, TypedTable

if TYPE_CHECKING:  # pandas and xarray are imported only where a cube is read
    import pandas as pd
    import xarray as xr

__all__ = [
    "DEFAULT_RULE",
    "MAX_STORED_RUNS",
    "POLICY_SCHEMA",
    "Decision",
    "Policy",
    "candidate_columns",
    "compare_rules",
    "config_keys",
    "front_configs",
    "make_policy",
    "read_front",
]

POLICY_SCHEMA = "dynasplit.policy/1"

#: the rule ``dynasplit export`` writes unless told otherwise (see docs/online.md)
DEFAULT_RULE: dict[str, Any] = {"name": "mean", "target": 0.99,
                                "confidence": DEFAULT_CONFIDENCE, "accuracy_floor": None,
                                "reconfiguration": False}

#: per-run latencies stored per candidate; more runs are kept as a sorted sample
MAX_STORED_RUNS = 128

_DEFAULT_PROFILES = {"edge": "raspberry-pi-4", "cloud": "cloud-gpu-server"}


# --------------------------------------------------------------------------- fronts


def read_front(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The front configurations of a ``FRONT.json`` (schema ``dynasplit.front/1``).

    Uses :func:`toolkit.optimize.load_front`, which checks the schema.

    Returns:
        The ``front`` entries' configurations, in file order, without duplicates.

    Raises:
        ToolkitError: a missing or unreadable file, another schema, or an empty
            front.
    """
    from toolkit.optimize import load_front

    configs = _unique_configs(load_front(path).front)
    if not configs:
        raise ToolkitError(f"{path}: the front is empty")
    return configs


def front_configs(front: Any) -> list[dict[str, Any]]:
    """The configurations of a front, given as an
    :class:`~toolkit.optimize.OptimizationResult`, a ``FRONT.json`` path
    (:func:`read_front`) or a list of configurations; in order, without duplicates.

    Raises:
        ToolkitError: an empty front, or a FRONT.json :func:`read_front` refuses.
    """
    if isinstance(front, str | os.PathLike):
        return read_front(front)
    entries = front.front if hasattr(front, "front") else front
    if isinstance(entries, Mapping) or not isinstance(entries, Iterable):
        raise ToolkitError(f"a front should be an OptimizationResult, a FRONT.json path or a "
                           f"list of configurations (mappings), got {type(front).__name__}")
    configs = _unique_configs(entries)
    if not configs:
        raise ToolkitError("the front is empty; a policy needs at least one configuration")
    return configs


def _unique_configs(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """Front entries' (or plain mappings') configurations, in order, without duplicates."""
    configs = []
    for i, entry in enumerate(entries):
        config = getattr(entry, "config", entry)
        if not isinstance(config, Mapping):
            raise ToolkitError(f"front entry {i} should be a configuration (a mapping of "
                               f"configuration keys), got {short_repr(entry)}")
        configs.append(dict(config))
    return list({json.dumps(c, sort_keys=True, default=str): c for c in configs}.values())


# --------------------------------------------------------------------------- building


def _front_key(config: Mapping[str, Any], keys: Sequence[str], single: Mapping[str, Any],
               codec: str | None) -> tuple:
    """The runs-table key of a front configuration (checked against the cube's keys)."""
    missing = [k for k in keys if k not in config and k not in single]
    if missing:
        raise ToolkitError(f"front configuration {dict(config)} lacks {choices(missing)}; "
                           f"the cube's configurations have {choices(keys)}")
    for k in EXTRA_KEYS:
        if k in config and k not in keys and not (k == "codec" and config[k] == codec):
            raise ToolkitError(
                f"front configuration {dict(config)} has {k}={config[k]!r}, but the cube "
                f"has no {k!r} dimension; give the cube the front was made from")
    return tuple(config[k] if k in config else single[k] for k in keys)


def _stored_runs(latencies: np.ndarray, max_runs: int) -> list[float]:
    runs = np.sort(latencies)
    if len(runs) > max_runs:
        ranks = np.maximum(1, np.round(np.arange(1, max_runs + 1) * len(runs) / max_runs))
        runs = runs[ranks.astype(np.int64) - 1]
    return [round(float(x), 3) for x in runs]


def _profiles(cube: Any, edge: str | None, cloud: str | None) -> dict[str, str]:
    names = dict(_DEFAULT_PROFILES)
    recorded = cube.attrs.get("device_profiles")
    if isinstance(recorded, str):
        with contextlib.suppress(json.JSONDecodeError, AttributeError):
            names.update({k: v for k, v in json.loads(recorded).items() if k in names})
    names.update({role: name for role, name in (("edge", edge), ("cloud", cloud)) if name})
    return names


def make_policy(
    front: Any,
    cube: Any,
    *,
    rule: str = DEFAULT_RULE["name"],
    target: float = DEFAULT_RULE["target"],
    confidence: float = DEFAULT_RULE["confidence"],
    accuracy_floor: float | None = None,
    reconfiguration: bool = DEFAULT_RULE["reconfiguration"],
    edge_profile: str | None = None,
    cloud_profile: str | None = None,
    source: Mapping[str, Any] | None = None,
    max_runs: int = MAX_STORED_RUNS,
) -> dict[str, Any]:
    """The policy document for a front, with latency distributions from a cube.

    Args:
        front: the front's configurations (e.g. :func:`read_front`), or anything
            :func:`front_configs` takes (a FRONT.json path, an optimisation
            result); duplicates count once. Each needs
            every configuration key of the cube (canonical keys and extra
            dimensions) except an extra dimension with a single value, which is
            filled in; a candidate carries the cube's full configuration.
        cube: the cube the front was measured in (its runs give the
            distributions), or its file's path.
        rule: ``dynasplit`` or ``tail``.
        target: the ``tail`` rule's τ (probability of meeting the threshold).
        confidence: one-sided confidence of the Wilson bound (0.5: point estimate).
        accuracy_floor: candidates below this mean accuracy are never chosen.
        reconfiguration: decide reconfiguration-aware (see :mod:`toolkit.rules`).
        edge_profile, cloud_profile: profiles giving the switch costs; default
            the cube's ``device_profiles`` attribute, else the DynaSplit testbed's
            (``raspberry-pi-4``, ``cloud-gpu-server``).
        source: provenance recorded under ``source`` (front file, algorithm...).
        max_runs: per-run latencies kept per candidate (a sorted sample beyond).

    Returns:
        The JSON-ready document; :meth:`Policy.from_dict` checks and compiles it.

    Raises:
        ToolkitError: a front configuration the cube did not measure (or with
            keys the cube lacks), an unknown rule or profile, or an invalid rule
            parameter.
    """
    from toolkit.cube import as_cube, measured_runs, single_codec
    from toolkit.hardware.profile import load_profile

    check_count(max_runs, "max_runs (per-run latencies kept per candidate)")
    front = front_configs(front)
    cube = as_cube(cube, ("latency_ms", "energy_j"), "a policy")
    df = measured_runs(cube, purpose="a policy")
    keys = config_keys(df.columns)
    single = single_extras({k: df[k] for k in keys})
    codec = single_codec(cube)
    groups = df.groupby(keys, sort=False)
    candidates = []
    for config in front:
        key = _front_key(config, keys, single, codec)
        try:
            runs = groups.get_group(key)
        except KeyError:
            raise ToolkitError(f"the cube has no measured run of the front configuration "
                               f"{dict(config)}; give the cube the front was made from") from None
        lat = runs["latency_ms"].to_numpy(float)
        if np.isnan(runs["energy_j"].to_numpy(float)).all():
            raise ToolkitError(f"the cube has latency but no energy for the front "
                               f"configuration {dict(config)}; a policy needs both")
        candidates.append({
            "config": {k: plain_value(v) for k, v in zip(keys, key, strict=True)},
            "latency_ms": {"mean": _ms(lat.mean()),
                           **{f"p{q}": _ms(np.percentile(lat, q)) for q in (50, 90, 99)},
                           "n": len(lat)},
            "runs_ms": _stored_runs(lat, max_runs),
            "transfer_ms": _nanmean(runs.get("transfer_ms", []), 0.0),
            "energy_j": _nanmean(runs["energy_j"], math.nan),
            "accuracy": _nanmean(runs.get("accuracy", []), None),
        })
    names = _profiles(cube, edge_profile, cloud_profile)
    costs: dict[str, float] = {}
    for role in ("edge", "cloud"):
        costs.update(load_profile(names[role]).check_role(role).reconfiguration)
    doc = {
        "schema": POLICY_SCHEMA,
        "toolkit_version": __version__,
        "created_at": utc_timestamp(),
        "model": str(candidates[0]["config"].get("model", "")) if candidates else "",
        "energy_source": str(cube.attrs.get("energy_source", "unknown")),
        "last_split": int(cube["split"].max()),
        "rule": {"name": rule, "target": _rule_number(target, "the tail target"),
                 "confidence": _rule_number(confidence, "the confidence"),
                 "accuracy_floor": (None if accuracy_floor is None
                                    else _rule_number(accuracy_floor, "the accuracy floor")),
                 "reconfiguration": bool(reconfiguration)},
        "hardware": {"profiles": names, "costs": costs},
        "source": dict(source or {}),
        "candidates": candidate_columns(candidates),
    }
    if codec is not None:
        doc["codec"] = codec
    Policy.from_dict(doc)  # validates rule parameters and candidates
    return doc


def _rule_number(value: Any, what: str) -> float:
    """A rule parameter as a float; its range is the rule's to check (:mod:`toolkit.rules`)."""
    if not is_number(value):
        raise ToolkitError(f"{what} must be a number, got {short_repr(value)}")
    return float(value)


def candidate_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-candidate records -> the document's column-wise ``candidates`` block.

    A record is ``{"config": {...}, "latency_ms": {"mean", "p50", "p90", "p99",
    "n"}, "runs_ms": [...], "transfer_ms", "energy_j", "accuracy"}``; the block
    holds one list per field (``config`` and ``latency_ms`` one per key), in
    candidate order, which parses about twice as fast as a list of objects.
    """
    if not records:
        return {"config": {}, "latency_ms": {}, "runs_ms": [], "transfer_ms": [],
                "energy_j": [], "accuracy": []}
    config_keys = list(records[0]["config"])
    return {
        "config": {k: [r["config"][k] for r in records] for k in config_keys},
        "latency_ms": {k: [r["latency_ms"][k] for r in records]
                       for k in ("mean", "p50", "p90", "p99", "n")},
        "runs_ms": [list(r["runs_ms"]) for r in records],
        "transfer_ms": [r.get("transfer_ms", 0.0) for r in records],
        "energy_j": [r["energy_j"] for r in records],
        "accuracy": [r.get("accuracy") for r in records],
    }


def _ms(value: float) -> float:
    return round(float(value), 3)


def _nanmean(values: Iterable[float], default: Any) -> Any:
    arr = np.asarray(list(values), dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if len(arr) else default


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Decision:
    """One decision of a policy.

    Attributes:
        index: the candidate's index in the policy.
        config: its configuration.
        predicted_ms: the rule's latency key (mean or conservative quantile, plus
            any adaptation shift) plus the switch time.
        energy_j: the candidate's mean energy (without the switch).
        switch_ms, switch_j: cost of the hardware change from the current state.
        state: the hardware state after applying it.
        meets: whether ``predicted_ms`` is within the threshold.
    """

    index: int
    config: dict[str, Any]
    predicted_ms: float
    energy_j: float
    switch_ms: float
    switch_j: float
    state: HardwareState
    meets: bool


class Policy:
    """A loaded policy: candidates, rule, switch costs; decisions in O(log n).

    Build one with :meth:`load`, :meth:`from_dict` or :meth:`from_front`.
    """

    def __init__(self, doc: dict[str, Any], candidates: Candidates,
                 columns: dict[str, list[Any]]) -> None:
        self.doc = doc
        self.candidates = candidates
        self._columns = columns
        self._configs: list[dict[str, Any]] | None = None
        self.rule: dict[str, Any] = {**DEFAULT_RULE, **doc["rule"]}
        self.last_split = int(doc["last_split"])
        self.costs: dict[str, float] = dict(doc.get("hardware", {}).get("costs", {}))
        self.energy_source = str(doc.get("energy_source", "unknown"))
        self._selectors: dict[tuple, Selector] = {}
        self._switches: dict[tuple[HardwareState | None, HardwareState],
                             tuple[float, float]] = {}
        self.selector = self.selector_for()

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], origin: str = "policy") -> Policy:
        """Check a policy document and compile its rule.

        Raises:
            ToolkitError: another schema, a missing key, a bad candidate or rule.
        """
        if not isinstance(doc, Mapping):
            raise ToolkitError(f"{origin} is not a JSON object")
        schema = doc.get("schema")
        if schema != POLICY_SCHEMA:
            from toolkit.optimize.result import FRONT_SCHEMA

            hint = " (that is a front: run `dynasplit export` on it)" \
                if schema == FRONT_SCHEMA else ""
            raise ToolkitError(f"{origin} has schema {schema!r}; this toolkit reads policies "
                               f"of schema {POLICY_SCHEMA!r}{hint}")
        missing = [k for k in ("rule", "candidates", "last_split") if k not in doc]
        if missing:
            raise ToolkitError(f"{origin} lacks the policy key(s) {choices(missing)}")
        rule = doc["rule"]
        if not isinstance(rule, Mapping) or rule.get("name") not in RULES:
            name = rule.get("name") if isinstance(rule, Mapping) else rule
            raise ToolkitError(f"{origin}: unknown rule {name!r}; valid: {choices(RULES)}")
        t = TypedTable(dict(doc), origin)
        last_split = t.integer("last_split", ..., 0)
        t.get("energy_source", (str, type(None)), None)
        t.get("model", (str, type(None)), None)
        costs = t.table("hardware", {}).table("costs", {})
        for knob in costs.data:  # a time (ms) or an energy (J)
            costs.number(knob, ..., 0.0, strict=False)
        t.table("rule").get("reconfiguration", bool, False)
        block = doc["candidates"]
        try:
            candidates, columns = _read_columns(block, last_split)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: candidates: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ToolkitError(
                f"{origin}: malformed candidates block ({exc!r}); it needs the columns "
                "config {model, split, cpu_freq, edge_accel, cloud_accel; and codec, "
                "strategy, devices where the cube has them}, latency_ms {mean, n}, runs_ms, "
                "energy_j (and transfer_ms, accuracy)") from None
        if len(candidates) == 0:
            raise ToolkitError(f"{origin} has no candidates")
        try:
            return cls(dict(doc), candidates, columns)
        except ConfigError as exc:  # the rule's parameters
            raise ConfigError(f"{origin}: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Policy:
        """Read and compile a POLICY.json.

        Raises:
            ToolkitError: the file is missing, not JSON, or not a valid policy.
        """
        doc = read_json(path, "policy file")
        return cls.from_dict(doc, origin=str(path))

    @classmethod
    def from_front(cls, front: str | os.PathLike | Sequence[Mapping[str, Any]], cube: Any,
                   **options: Any) -> Policy:
        """A policy straight from a front (file or configurations) and a cube.

        ``options`` are those of :func:`make_policy`.
        """
        return cls.from_dict(make_policy(front, cube, **options))

    def as_dict(self) -> dict[str, Any]:
        """The policy document."""
        return dict(self.doc)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the document atomically (indented header, one line per candidate column)."""
        path = Path(path)
        doc = self.as_dict()
        head = {k: v for k, v in doc.items() if k != "candidates"}
        lines = []
        for name, column in doc["candidates"].items():
            if isinstance(column, dict):
                inner = ",\n".join(f"   {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
                                   for k, v in column.items())
                lines.append(f"  {json.dumps(name)}: {{\n{inner}\n  }}")
            else:
                lines.append(f"  {json.dumps(name)}: {json.dumps(column, separators=(',', ':'))}")
        text = (json.dumps(head, indent=1)[:-2] + ',\n "candidates": {\n'
                + ",\n".join(lines) + "\n }\n}\n")
        with atomic_output(path) as tmp:
            tmp.write_text(text)
        return path

    def with_rule(self, **changes: Any) -> Policy:
        """The same candidates with other rule parameters (``name``, ``target``...)."""
        unknown = sorted(set(changes) - set(DEFAULT_RULE))
        if unknown:
            raise ToolkitError(f"unknown rule parameter(s) {choices(unknown)}; "
                               f"valid: {choices(DEFAULT_RULE)}")
        return Policy(dict(self.doc, rule={**self.rule, **changes}), self.candidates,
                      self._columns)

    # -- candidates ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.candidates)

    @property
    def configs(self) -> list[dict[str, Any]]:
        """The candidates' configurations, in policy order (built on first use)."""
        if self._configs is None:
            keys = list(self._columns)
            self._configs = [dict(zip(keys, row, strict=True))
                             for row in zip(*self._columns.values(), strict=True)]
        return self._configs

    def codec(self, index: int) -> str:
        """The activation codec of a candidate: its configuration's ``codec``, else
        the document's ``codec`` (the cube's single codec), else ``fp32``."""
        config = self.configs[index]
        return str(config["codec"] if "codec" in config else self.doc.get("codec", "fp32"))

    def candidate(self, index: int) -> dict[str, Any]:
        """One candidate as a readable record (config, latency_ms, runs_ms, ...)."""
        block = self.doc["candidates"]
        lat = block["latency_ms"]
        return {"config": self.configs[index],
                "latency_ms": {k: v[index] for k, v in lat.items()},
                "runs_ms": list(block["runs_ms"][index]),
                "transfer_ms": float(self.candidates.transfer_ms[index]),
                "energy_j": float(self.candidates.energy_j[index]),
                "accuracy": block.get("accuracy", [None] * len(self))[index]}

    # -- decisions ----------------------------------------------------------------
    def selector_for(self, factor: float = 1.0, **rule: Any) -> Selector:
        """The compiled rule (cached), its latency keys shifted by transfer × (factor − 1)."""
        spec = {**self.rule, **rule}
        key = (round(factor, 9), *sorted((k, repr(v)) for k, v in spec.items()))
        selector = self._selectors.get(key)
        if selector is None:
            shift = None if factor == 1.0 else self.candidates.transfer_ms * (factor - 1.0)
            selector = Selector(
                self.candidates, spec["name"], target=spec["target"],
                confidence=spec["confidence"], accuracy_floor=spec["accuracy_floor"],
                switch=self.switch_cost, shift_ms=shift)
            self._selectors[key] = selector
        return selector

    def choose(self, threshold_ms: float) -> int:
        """The candidate index the policy's rule picks for a threshold (stateless)."""
        _check_threshold(threshold_ms)
        return self.selector.choose(threshold_ms)

    def switch_cost(self, state: HardwareState | None,
                    needed: HardwareState) -> tuple[float, float]:
        """Time (ms) and energy (J) to switch from ``state`` to ``needed`` with this
        policy's costs (:func:`toolkit.switching.switch_cost`, kept per pair: there are
        few hardware states)."""
        key = (state, needed)
        cost = self._switches.get(key)
        if cost is None:
            cost = self._switches[key] = switch_cost(self.costs, state, needed)
        return cost

    def decide(self, threshold_ms: float, state: HardwareState | None = None,
               factor: float = 1.0) -> Decision:
        """A full decision from the current hardware ``state``.

        Args:
            threshold_ms: the request's latency threshold.
            state: the current hardware state (None: unknown; no switch cost).
            factor: online transfer-time correction (see :class:`DriftTracker`).
        """
        _check_threshold(threshold_ms)
        selector = self.selector if factor == 1.0 else self.selector_for(factor)
        if self.rule["reconfiguration"]:
            i = selector.choose_from(threshold_ms, state)
        else:
            i = selector.choose(threshold_ms)
        needed = self.candidates.states[i]
        ms, j = self.switch_cost(state, needed)
        predicted = float(selector.keys[i]) + ms
        if not math.isfinite(predicted):
            predicted = float(self.candidates.mean_ms[i]) + ms
        return Decision(i, self.configs[i], predicted, float(self.candidates.energy_j[i]),
                        ms, j, next_state(state, needed), predicted <= threshold_ms)


def _check_threshold(threshold_ms: Any) -> None:
    """Refuse a threshold that is not a number of ms >= 0 (or is NaN), cheaply: decisions
    are hot."""
    try:
        if threshold_ms >= 0:
            return
    except TypeError:
        pass
    raise ConfigError(f"a latency threshold is a number of ms >= 0, got {threshold_ms!r}")


def _read_columns(block: Mapping[str, Any],
                  last_split: int) -> tuple[Candidates, dict[str, list[Any]]]:
    """Arrays and configuration columns from a ``candidates`` block (checked)."""
    energy = np.asarray(block["energy_j"], dtype=float)
    n = len(energy)
    config = {k: list(block["config"][k]) for k in config_keys({*CONFIG_KEYS, *block["config"]})}
    for key, column in config.items():
        kind = KEYS[key].type
        bad = [v for v in column if not isinstance(v, kind) or isinstance(v, bool)
               or (kind is int and abs(v) > LARGEST_INTEGER)]
        if bad:
            raise ConfigError(f"config.{key} holds {short_repr(bad[0])}, not "
                              f"{'an integer (of at most 2**53)' if kind is int else 'a name'}")
        try:
            domain_values(key, column)
        except ConfigError as exc:
            raise ConfigError(f"config.{key}: {exc}") from None
    beyond = [s for s in config["split"] if s > last_split]
    if beyond:
        raise ConfigError(f"config.split holds {beyond[0]}, beyond last_split {last_split}")
    lat = block["latency_ms"]
    run_lists = block["runs_ms"]
    transfer = block.get("transfer_ms") or [0.0] * n
    accuracy = block.get("accuracy") or [None] * n
    lengths = [len(column) for column in config.values()] + [len(lat["mean"]), len(lat["n"]),
                                                       len(run_lists), len(transfer),
                                                       len(accuracy)]
    if any(length != n for length in lengths):
        raise ValueError(f"columns of different lengths {sorted({*lengths, n})}")
    sizes = np.fromiter(map(len, run_lists), dtype=np.int64, count=n)
    flat = np.fromiter(itertools.chain.from_iterable(run_lists), dtype=float,
                       count=int(sizes.sum()))
    ends = np.cumsum(sizes)
    starts = (ends - sizes).tolist()
    runs = [flat[a:b] for a, b in zip(starts, ends.tolist(), strict=True)]
    step = np.diff(flat)
    inside = np.ones(len(step), dtype=bool)
    inside[ends[:-1][ends[:-1] > 0] - 1] = False  # steps between two candidates' runs
    mean = np.asarray(lat["mean"], dtype=float)
    transfer_ms = np.array([t or 0.0 for t in transfer], dtype=float)
    acc = np.array([np.nan if a is None else a for a in accuracy], dtype=float)
    if ((step < 0) & inside).any():
        raise ConfigError("runs_ms must be sorted per candidate")
    for name, values in (("runs_ms", flat), ("latency_ms.mean", mean), ("energy_j", energy),
                         ("transfer_ms", transfer_ms)):
        if not (np.isfinite(values) & (values >= 0)).all():
            raise ConfigError(f"{name} must hold finite numbers >= 0")
    if ((acc < 0) | (acc > 1) | np.isinf(acc)).any():
        raise ConfigError("accuracy must hold fractions in 0..1 (null: not measured)")
    state_of: dict[tuple, HardwareState] = {}  # a state depends on split < last_split only
    states = []
    for split, freq, edge, cloud in zip(config["split"], config["cpu_freq"],
                                        config["edge_accel"], config["cloud_accel"],
                                        strict=True):
        key = (split < last_split, freq, edge, cloud)
        state = state_of.get(key)
        if state is None:
            state = state_of[key] = hardware_state(
                {"split": split, "cpu_freq": freq, "edge_accel": edge, "cloud_accel": cloud},
                last_split)
        states.append(state)
    candidates = Candidates(
        mean_ms=mean, energy_j=energy,
        accuracy=acc, n_runs=np.asarray(lat["n"], dtype=np.int64), runs_ms=runs,
        transfer_ms=transfer_ms, states=states)
    return candidates, config


# --------------------------------------------------------------------------- comparing rules


def compare_rules(cube: xr.Dataset, threshold_ms: float, *,
                  target: float = 0.99) -> pd.DataFrame:
    """What each selection rule picks for one request with this latency threshold.

    The rules of :data:`toolkit.rules.RULES` run on a policy made from the
    cube's Pareto front (latency, energy, accuracy), as ``dynasplit export``
    makes it; ``dynasplit-exhaustive`` is DynaSplit's rule over every measured
    configuration of the cube (what DynaSplit picks after an exhaustive search).

    Args:
        cube: a measurement cube of one model.
        threshold_ms: the request's latency threshold [ms].
        target: the ``tail`` rule's target probability.

    Returns:
        One row per rule: ``rule``, the configuration, its mean ``latency_ms``,
        ``energy_j`` and ``accuracy`` over its runs, the rule's
        ``predicted_ms``, whether it predicts the threshold is met (``meets``)
        and how many ``candidates`` it chose among.
    """
    import pandas as pd

    from toolkit.cube import config_dims, config_means, pareto_configs

    keys = config_dims(cube)
    means = config_means(cube).dropna(subset=["latency_ms", "energy_j"])
    front = Policy.from_front(pareto_configs(cube), cube)
    policies = {(f"tail τ={target:.3f}" if name == "tail" else name):
                front.with_rule(name=name, target=target) for name in RULES}
    policies["dynasplit-exhaustive (every configuration)"] = Policy.from_front(
        means[keys].to_dict("records"), cube, rule="dynasplit")
    index = means.set_index(keys)
    rows = []
    for label, policy in policies.items():
        decision = policy.decide(float(threshold_ms))
        row = index.loc[tuple(decision.config[k] for k in keys)]
        rows.append({"rule": label, **decision.config,
                     "latency_ms": float(row["latency_ms"]), "energy_j": float(row["energy_j"]),
                     "accuracy": float(row["accuracy"]) if "accuracy" in row else np.nan,
                     "predicted_ms": decision.predicted_ms, "meets": decision.meets,
                     "candidates": len(policy)})
    return pd.DataFrame(rows)
