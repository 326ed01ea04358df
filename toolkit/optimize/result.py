"""The outcome of an optimisation: evaluated configurations, front, history.

:class:`OptimizationResult` is the Python object; ``to_dataframe()`` and
``to_xarray()`` give table views; :func:`save_front` / :func:`load_front` write
and read ``FRONT.json`` in the design page's schema ``dynasplit.front/1``::

    {"schema": "dynasplit.front/1", "model", "algorithm", "seed",
     "objectives": {"latency_ms": "min", "energy_j": "min", "accuracy": "max"},
     "cube", "space_size", "evaluations",
     "evaluated": [config, ...],
     "front": [{"config": {...}, "latency_ms", "energy_j", "accuracy"}, ...],
     "history": [{"generation", "evaluations", "hypervolume", "front_size"}, ...],
     ...}

``cube`` is the cube the front came from (None when it was not made from a
file): relative to FRONT.json's folder when the cube lies in or below it (the
two can move together), else absolute; :func:`front_cube` resolves it.
Beyond those keys the file holds ``values`` (the objective values and
generation of each entry of ``evaluated``, same order), ``unmeasured``
(configurations the evaluator had no value for; they did not count),
``budget``, ``hypervolume`` (of the final front), ``normalization`` (the ranges
and reference point the hypervolumes use, see
:mod:`toolkit.optimize.objectives`), ``energy_source``, ``toolkit_version`` and
``created_at`` (the only field that differs between two runs with one seed).
A front entry carries all three objective keys; an objective the evaluator did
not provide is ``null``. Configurations carry the canonical keys and, where the
space has them, the extra keys ``codec``, ``strategy`` and ``devices``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit import __version__
from toolkit.config import CONFIG_KEYS, VARIABLES, config_keys
from toolkit.errors import ToolkitError, choices
from toolkit.fileio import atomic_output, read_json, utc_timestamp
from toolkit.optimize.objectives import OBJECTIVES, Normalizer
from toolkit.pareto import pareto_mask
from toolkit.tomlfile import TypedTable

__all__ = ["FRONT_SCHEMA", "Evaluation", "OptimizationResult", "front_cube", "load_front",
           "save_front"]

FRONT_SCHEMA = "dynasplit.front/1"


@dataclass
class Evaluation:
    """One evaluated configuration.

    Attributes:
        config: the configuration (canonical keys, then any extra keys of the
            space: ``codec``, ``strategy``, ``devices``).
        values: objective values the evaluator returned.
        generation: generation in which it was evaluated (0 = initial population).
    """

    config: dict[str, Any]
    values: dict[str, float]
    generation: int

    def front_entry(self) -> dict[str, Any]:
        """The ``front`` record of FRONT.json: config plus every objective (or None)."""
        return {"config": dict(self.config),
                **{o: self.values.get(o) for o in OBJECTIVES}}


@dataclass
class OptimizationResult:
    """Everything an optimisation run produced.

    Attributes:
        model: model name.
        algorithm: ``nsga2`` or ``nsga3``.
        seed: random seed of the run.
        objectives: optimised objectives with their sense (``min``/``max``).
        space_size: number of valid configurations in the space.
        budget: distinct evaluations allowed.
        evaluated: every evaluated configuration, in evaluation order.
        unmeasured: configurations the evaluator returned nothing for.
        history: per generation ``generation``, ``evaluations`` (cumulative),
            ``hypervolume`` (of the front so far, normalised), ``front_size``.
        normalization: ranges and reference point of the hypervolume.
        energy_source: where the energy figures come from.
        created_at: UTC timestamp of the run.
        cube: path of the cube the front was made from, if any (FRONT.json's
            ``cube``, as written: see :func:`front_cube`).
    """

    model: str
    algorithm: str
    seed: int | None
    objectives: dict[str, str]
    space_size: int
    budget: int
    evaluated: list[Evaluation]
    unmeasured: list[dict[str, Any]]
    history: list[dict[str, Any]]
    normalization: Normalizer
    energy_source: str | None = None
    created_at: str = field(default_factory=utc_timestamp)
    cube: str | None = None

    @property
    def evaluations(self) -> int:
        """Distinct configurations whose objectives the optimizer looked at."""
        return len(self.evaluated)

    def _matrix(self) -> np.ndarray:
        return np.array([[e.values.get(o, np.nan) for o in self.objectives]
                         for e in self.evaluated],
                        dtype=float).reshape(-1, len(self.objectives))

    def front_mask(self) -> np.ndarray:
        """Boolean mask over :attr:`evaluated`: True on the Pareto front."""
        if not self.evaluated:
            return np.zeros(0, bool)
        return pareto_mask(self._matrix(), list(self.objectives.values()))

    @property
    def front(self) -> list[Evaluation]:
        """The non-dominated evaluated configurations, in evaluation order."""
        return [e for e, keep in zip(self.evaluated, self.front_mask(), strict=True) if keep]

    @property
    def hypervolume(self) -> float:
        """Hypervolume of the front in normalised space (see :attr:`normalization`)."""
        if not self.evaluated:
            return 0.0
        return self.normalization.hypervolume(self._matrix()[self.front_mask()])

    def to_dataframe(self) -> pd.DataFrame:
        """One row per evaluated configuration: config, objectives, generation, on_front.

        The configuration columns are the canonical keys, then the extra keys
        (``codec``, ``strategy``, ``devices``) the configurations carry.
        """
        mask = self.front_mask()
        rows = [{**e.config, **{o: e.values.get(o, np.nan) for o in OBJECTIVES},
                 "generation": e.generation, "on_front": bool(m)}
                for e, m in zip(self.evaluated, mask, strict=True)]
        keys = config_keys({*CONFIG_KEYS, *(k for e in self.evaluated for k in e.config)})
        columns = [*keys, *OBJECTIVES, "generation", "on_front"]
        return pd.DataFrame(rows, columns=columns)

    def to_xarray(self) -> Any:
        """An xarray Dataset: dimension ``evaluation`` and, for the history, ``history``."""
        import xarray as xr

        ds = xr.Dataset.from_dataframe(self.to_dataframe().rename_axis("evaluation"))
        hist = pd.DataFrame(self.history, columns=["generation", "evaluations",
                                                   "hypervolume", "front_size"])
        for column in hist.columns:
            ds[f"history_{column}"] = ("history", hist[column].to_numpy())
        for name in OBJECTIVES:
            ds[name].attrs["units"] = VARIABLES[name][0]
        ds.attrs.update({"schema": FRONT_SCHEMA, "model": self.model,
                         "algorithm": self.algorithm, "seed": -1 if self.seed is None
                         else int(self.seed), "objectives": json.dumps(self.objectives),
                         "space_size": self.space_size, "budget": self.budget,
                         "energy_source": self.energy_source or "unknown"})
        return ds

    def as_dict(self) -> dict[str, Any]:
        """The FRONT.json document."""
        return {
            "schema": FRONT_SCHEMA,
            "model": self.model,
            "algorithm": self.algorithm,
            "seed": self.seed,
            "objectives": dict(self.objectives),
            "cube": self.cube,
            "space_size": self.space_size,
            "budget": self.budget,
            "evaluations": self.evaluations,
            "evaluated": [dict(e.config) for e in self.evaluated],
            "values": [{**e.values, "generation": e.generation} for e in self.evaluated],
            "unmeasured": [dict(c) for c in self.unmeasured],
            "front": [e.front_entry() for e in self.front],
            "hypervolume": self.hypervolume,
            "history": [dict(h) for h in self.history],
            "normalization": self.normalization.as_dict(),
            "energy_source": self.energy_source,
            "toolkit_version": __version__,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any], origin: str = "document") -> OptimizationResult:
        """Rebuild a result from a FRONT.json document.

        Raises:
            ToolkitError: another schema, or a key that is missing or of the wrong
                type (named, with what it should be).
        """
        schema = doc.get("schema") if isinstance(doc, dict) else None
        if schema != FRONT_SCHEMA:
            raise ToolkitError(
                f"{origin} has schema {schema!r}; this toolkit reads fronts of schema "
                f"{FRONT_SCHEMA!r}"
            )
        required = ("model", "algorithm", "objectives", "space_size", "evaluated", "front")
        missing = [k for k in required if k not in doc]
        if missing:
            raise ToolkitError(f"{origin} lacks the front key(s) {', '.join(missing)}")
        t = TypedTable(doc, origin)
        objectives = _objectives(t)
        configs = [c.data for c in t.tables("evaluated")]
        front = t.tables("front")
        rows = t.tables("values", None)
        if rows is None:  # a minimal front file: recover values from the front
            by_config = {json.dumps(f.table("config").data, sort_keys=True): f.data
                         for f in front}
            values = [{o: v for o, v in by_config.get(json.dumps(c, sort_keys=True), {}).items()
                       if o in OBJECTIVES and v is not None} for c in configs]
            rows = [TypedTable(v, origin, f"front entry of evaluated[{i}]")
                    for i, v in enumerate(values)]
        elif len(rows) != len(configs):
            raise t.fail("values", f"one entry per entry of 'evaluated' ({len(configs)})",
                         f"{len(rows)} entries")
        evaluated = [Evaluation(dict(c), _values(row), row.get("generation", int, 0))
                     for c, row in zip(configs, rows, strict=True)]
        norm = t.table("normalization", None) if doc.get("normalization") else None
        normalizer = (Normalizer.from_dict(norm) if norm is not None else Normalizer.from_values(
            list(objectives), np.array([[e.values.get(o, np.nan) for o in objectives]
                                        for e in evaluated])))
        space_size = t.integer("space_size")
        seed = t.get("seed", (int, type(None)), None)
        if seed is not None and seed < 0:
            raise t.fail("seed", "an integer >= 0 or null", seed)
        return cls(
            model=t.get("model", str), algorithm=t.get("algorithm", str), seed=seed,
            objectives=objectives, space_size=space_size,
            budget=t.integer("budget", max(len(evaluated), 1), 1), evaluated=evaluated,
            unmeasured=[u.data for u in t.tables("unmeasured", [])],
            history=[h.data for h in t.tables("history", [])], normalization=normalizer,
            energy_source=t.get("energy_source", (str, type(None)), None),
            created_at=str(doc.get("created_at", "")),
            cube=t.get("cube", (str, type(None)), None),
        )


def _objectives(front: TypedTable) -> dict[str, str]:
    """FRONT.json's ``objectives``: known objectives, each with its sense."""
    table = front.table("objectives")
    table.reject_unknown(OBJECTIVES)
    if not table.data:
        raise front.fail("objectives", f"a table of objectives among {choices(OBJECTIVES)} "
                         "with their senses", table.data)
    return {o: table.one_of(o, (OBJECTIVES[o],)) for o in table.data}


def _values(row: TypedTable) -> dict[str, float]:
    """One ``values`` entry: its objectives as numbers (``null`` where not provided)."""
    out = {}
    for o in OBJECTIVES:
        if row.get(o, (int, float, type(None)), None) is None:
            continue
        out[o] = row.number(o, ..., 0.0, strict=False)  # finite, >= 0: a time, energy, share
        if o == "accuracy" and out[o] > 1:
            raise row.fail(o, "a fraction in 0..1", out[o])
    return out


def save_front(result: OptimizationResult, path: str | os.PathLike) -> Path:
    """Write FRONT.json atomically (a temp file renamed over the target).

    The result's ``cube`` is written relative to FRONT.json's folder when the
    cube lies in or below it, else as an absolute path.

    Raises:
        ToolkitError: ``result`` is no optimisation result, or the file cannot be
            written.
    """
    if not isinstance(result, OptimizationResult):
        raise ToolkitError(f"save_front needs an OptimizationResult (from optimize or "
                           f"Optimizer.run), got {type(result).__name__}")
    doc = result.as_dict()
    if result.cube is not None:
        cube = Path(result.cube).resolve()
        try:
            doc["cube"] = cube.relative_to(Path(path).resolve().parent).as_posix()
        except ValueError:
            doc["cube"] = str(cube)
    text = json.dumps(doc, indent=1) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def load_front(path: str | os.PathLike) -> OptimizationResult:
    """Read a FRONT.json written by :func:`save_front`.

    Raises:
        ToolkitError: the file is missing, not JSON, or of another schema.
    """
    doc = read_json(path, "front file")
    return OptimizationResult.from_dict(doc, origin=str(path))


def front_cube(path: str | os.PathLike) -> Path:
    """The cube a FRONT.json came from, as an existing file.

    A relative ``cube`` is taken relative to FRONT.json's folder.

    Raises:
        ToolkitError: the front is unreadable, records no cube, or its cube
            file no longer exists; the message says which.
    """
    doc = read_json(path, "front file")
    recorded = doc.get("cube") if isinstance(doc, dict) else None
    if not recorded:
        raise ToolkitError(f"{path} does not record the cube it came from")
    cube = Path(recorded)
    if not cube.is_absolute():
        cube = Path(path).parent / cube
    if not cube.is_file():
        raise ToolkitError(f"{path} came from the cube {cube}, which no longer exists")
    return cube
