"""Objectives, their normalisation and the hypervolume indicator.

The optimizer minimises latency and energy and maximises accuracy (any
non-empty subset). For comparisons and for the hypervolume every objective is
mapped into a *normalised minimisation space*:

* ``latency_ms``, ``energy_j`` (minimised): ``(v - low) / (high - low)``;
* ``accuracy`` (maximised, i.e. negated): ``(high - v) / (high - low)``;

where ``low``/``high`` are the objective's range over the cube (all measured
configurations, means over repeats) — or, without a cube, over the evaluated
configurations. A zero range maps to 0. The best conceivable point is then the
origin and every measured point lies in the unit box. The hypervolume is
computed with ``moocore`` against the reference point ``(1.1, ..., 1.1)``, so
the extreme points of the front still contribute; points outside the reference
box contribute nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import moocore
import numpy as np

from toolkit.config import OBJECTIVES
from toolkit.errors import ConfigError, choices, short_repr
from toolkit.tomlfile import TypedTable

__all__ = [
    "OBJECTIVES",
    "REFERENCE",
    "Normalizer",
    "hypervolume",
    "resolve_objectives",
]

#: hypervolume reference coordinate in normalised space (the same on every axis)
REFERENCE = 1.1


def resolve_objectives(
    objectives: str | Iterable[str] | None, available: Sequence[str]
) -> tuple[str, ...]:
    """Validate an objective selection, in canonical order.

    Args:
        objectives: names (or one comma-separated string); None selects every
            objective in ``available``.
        available: objectives the evaluator can provide.

    Raises:
        ConfigError: an unknown or unavailable objective, or an empty selection.
    """
    if objectives is None:
        chosen = [o for o in OBJECTIVES if o in available]
    else:
        if isinstance(objectives, str):
            objectives = [o.strip() for o in objectives.split(",") if o.strip()]
        names = list(objectives) if isinstance(objectives, Iterable) else None
        if names is None or not all(isinstance(o, str) for o in names):
            raise ConfigError("objectives must be names (a list, or one comma-separated "
                              f"string) of {choices(OBJECTIVES)}, got {short_repr(objectives)}")
        chosen = list(dict.fromkeys(names))
        unknown = [o for o in chosen if o not in OBJECTIVES]
        if unknown:
            raise ConfigError(f"unknown objective(s) {choices(unknown)}; "
                              f"valid: {choices(OBJECTIVES)}")
        missing = [o for o in chosen if o not in available]
        if missing:
            raise ConfigError(f"objective(s) {choices(missing)} are not available here; "
                              f"available: {choices(available)}")
    if not chosen:
        raise ConfigError(f"no objective selected; choose from {choices(available)}")
    return tuple(o for o in OBJECTIVES if o in chosen)


def hypervolume(points: np.ndarray, reference: float = REFERENCE) -> float:
    """Hypervolume of points in a normalised minimisation space (rows) against the
    reference point ``(reference, ..., reference)``; points outside its box add nothing."""
    inside = points[np.all(points < reference, axis=1)]
    ref = np.full(points.shape[1], reference)
    return float(moocore.hypervolume(inside, ref=ref)) if len(inside) else 0.0


@dataclass(frozen=True)
class Normalizer:
    """Maps objective values into the normalised minimisation space.

    Attributes:
        objectives: objective names, in column order.
        low: per objective, the lowest raw value of the range.
        high: per objective, the highest raw value of the range.
        reference: hypervolume reference coordinate (all axes).
        source: where the ranges come from (``cube`` or ``evaluated``).
    """

    objectives: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    reference: float = REFERENCE
    source: str = "cube"

    @classmethod
    def from_values(
        cls, objectives: Sequence[str], values: np.ndarray, source: str = "evaluated"
    ) -> Normalizer:
        """Ranges from raw objective values (rows = configurations)."""
        values = np.asarray(values, dtype=float).reshape(-1, len(objectives))
        if len(values) == 0:
            lows = highs = (0.0,) * len(objectives)
        else:
            lows = tuple(float(v) for v in np.nanmin(values, axis=0))
            highs = tuple(float(v) for v in np.nanmax(values, axis=0))
        return cls(tuple(objectives), lows, highs, REFERENCE, source)

    def select(self, objectives: Sequence[str]) -> Normalizer:
        """The same ranges restricted to (and ordered as) ``objectives``."""
        pos = [self.objectives.index(o) for o in objectives]
        return Normalizer(tuple(objectives), tuple(self.low[i] for i in pos),
                          tuple(self.high[i] for i in pos), self.reference, self.source)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Raw values (rows = configurations, columns = objectives) → normalised."""
        v = np.asarray(values, dtype=float).reshape(-1, len(self.objectives))
        low, high = np.asarray(self.low), np.asarray(self.high)
        span = np.where(high > low, high - low, 1.0)
        out = (v - low) / span
        for i, name in enumerate(self.objectives):
            if OBJECTIVES[name] == "max":
                out[:, i] = (high[i] - v[:, i]) / span[i]
        return out

    def hypervolume(self, values: np.ndarray) -> float:
        """Hypervolume of raw objective values in normalised space (0 when empty)."""
        return hypervolume(self.transform(values), self.reference)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in FRONT.json under ``normalization``)."""
        return {"objectives": list(self.objectives), "low": list(self.low),
                "high": list(self.high), "reference": self.reference, "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "normalization") -> Normalizer:
        """Inverse of :meth:`to_dict`.

        Raises:
            ToolkitError: a key missing or of the wrong type, named with ``origin``
                (the file it was read from).
        """
        table = data if isinstance(data, TypedTable) else TypedTable(data, origin)
        names = tuple(table.strings("objectives"))
        return cls(names, table.numbers("low", len(names), "one per objective"),
                   table.numbers("high", len(names), "one per objective"),
                   table.number("reference", ...), table.get("source", str, "cube"))
