"""How close a found front is to a reference (exhaustive) front.

Three figures, all against a reference front (e.g. the exhaustive Pareto front
of a cube):

* **front-normalised hypervolume ratio**: both fronts are mapped into the
  reference front's own box, ``(v - ideal) / (nadir - ideal)`` per objective
  in minimisation form (accuracy negated), where *ideal* and *nadir* are the
  reference front's best and worst values. The hypervolume (``moocore``,
  reference point 1.1 on every axis) of the found front is divided by the
  reference front's. Unlike a normalisation over the whole cube, which puts
  every front in a small corner of the box and compresses the ratios towards
  1, this one spreads the front over the unit box.
* **IGD+** (``moocore.igd_plus``) in the same space: the mean over reference
  points of the distance to the nearest found point, counting only the
  directions in which the found point is worse. 0 when the reference front is
  found.
* **front share**: the fraction of the reference front's configurations that
  were found.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import moocore
import numpy as np

from toolkit.errors import ToolkitError
from toolkit.optimize.objectives import hypervolume
from toolkit.pareto import pareto_mask

if TYPE_CHECKING:
    from toolkit.optimize.result import OptimizationResult

__all__ = ["FrontQuality", "ReferenceFront", "front_quality"]


@dataclass(frozen=True)
class FrontQuality:
    """Quality of one found front against a :class:`ReferenceFront`.

    Attributes:
        hv_ratio: front-normalised hypervolume of the found front over the
            reference front's (1.0 when the whole reference front is found).
        igd_plus: IGD+ in the front-normalised space (0.0 at best).
        front_share: share of the reference front's configurations found.
    """

    hv_ratio: float
    igd_plus: float
    front_share: float


class ReferenceFront:
    """A reference front and its front-normalised space.

    Args:
        values: objective values of every candidate configuration (rows).
        senses: ``"min"`` or ``"max"`` per column.
        keys: a hashable identity per row (the configuration), used for the
            front share.
    """

    def __init__(self, values: np.ndarray, senses: Sequence[str],
                 keys: Sequence[Hashable]) -> None:
        values = np.asarray(values, float)
        self.sign = np.array([1.0 if s == "min" else -1.0 for s in senses])
        self.senses = list(senses)
        mask = pareto_mask(values, senses)
        front = values[mask] * self.sign
        self.ideal = front.min(axis=0)
        self.nadir = front.max(axis=0)
        self.keys = {keys[i] for i in np.flatnonzero(mask)}
        self.front = self.transform(values[mask])
        self.hypervolume = hypervolume(self.front)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Objective values into the front-normalised minimisation space."""
        span = np.where(self.nadir > self.ideal, self.nadir - self.ideal, 1.0)
        return (np.asarray(values, float).reshape(-1, len(self.sign)) * self.sign
                - self.ideal) / span

    def __len__(self) -> int:
        return len(self.keys)

    def score(self, values: np.ndarray, keys: Iterable[Hashable]) -> FrontQuality:
        """Quality of the front among ``values`` (every evaluated configuration).

        Args:
            values: objective values of the evaluated configurations (rows,
                same columns as the reference).
            keys: their identities (same kind as the reference's keys).
        """
        values = np.asarray(values, float).reshape(-1, len(self.sign))
        if len(values) == 0:
            return FrontQuality(0.0, float("inf"), 0.0)
        found = self.transform(values[pareto_mask(values, self.senses)])
        hv = hypervolume(found) / self.hypervolume if self.hypervolume > 0 else 1.0
        igd = float(moocore.igd_plus(found, ref=self.front))
        share = len(self.keys & set(keys)) / len(self.keys)
        return FrontQuality(float(hv), igd, float(share))


def front_quality(found: OptimizationResult, reference: OptimizationResult) -> FrontQuality:
    """How close ``found``'s front is to ``reference``'s, on ``reference``'s objectives.

    ``reference`` is typically the exhaustive search of the same space
    (``optimize(space, evaluator, 1.0, surrogate=False)``); configurations are
    matched by their keys and values.

    Raises:
        ToolkitError: ``found`` or ``reference`` is no optimisation result.
    """
    from toolkit.optimize.result import OptimizationResult

    for name, result in (("found", found), ("reference", reference)):
        if not isinstance(result, OptimizationResult):
            raise ToolkitError(f"front_quality needs {name} as an OptimizationResult (from "
                               f"optimize or load_front), got {type(result).__name__}")
    objectives = list(reference.objectives)
    senses = [reference.objectives[o] for o in objectives]

    def table(result: OptimizationResult) -> tuple[np.ndarray, list[str]]:
        rows = [e for e in result.evaluated if all(o in e.values for o in objectives)]
        values = np.array([[e.values[o] for o in objectives] for e in rows], float)
        return (values.reshape(-1, len(objectives)),
                [json.dumps(e.config, sort_keys=True, default=str) for e in rows])

    values, keys = table(reference)
    return ReferenceFront(values, senses, keys).score(*table(found))
