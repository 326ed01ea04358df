"""Pareto (non-dominated) filtering of objective vectors.

A point *dominates* another when it is at least as good in every objective and
strictly better in one. :func:`pareto_mask` marks the points that no other point
dominates. Identical points do not dominate each other, so duplicates on the
front are all kept. A row with a NaN objective is never on the front.

The filtering is :func:`moocore.is_nondominated` (``keep_weakly=True``, so
duplicates stay) on each objective's dense ranks: O(n log n) for up to three
objectives, O(n log^(k-2) n) beyond.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toolkit.config import SENSES
from toolkit.errors import ToolkitError, choices

__all__ = ["SENSES", "pareto_mask"]


def pareto_mask(points: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """Which points are non-dominated.

    Args:
        points: array of shape ``(n, k)``: one row per point, one column per
            objective (a 1-D array is taken as ``n`` points of one objective).
        senses: ``"min"`` or ``"max"`` for each of the ``k`` objectives.

    Returns:
        Boolean array of shape ``(n,)``, True for the points on the Pareto front.

    Raises:
        ToolkitError: ``points`` is not 1-D/2-D or non-numeric, or ``senses``
            does not match the number of objectives or holds an unknown sense.

    Example:
        >>> pareto_mask(np.array([[1, 5], [2, 2], [3, 3]]), ["min", "min"])
        array([ True,  True, False])
    """
    try:
        pts = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise ToolkitError("pareto_mask needs numeric objective values") from None
    if pts.ndim == 1:
        pts = pts[:, None]
    if pts.ndim != 2:
        raise ToolkitError(f"pareto_mask needs an (n, k) array, got shape {pts.shape}")
    senses = list(senses)
    if len(senses) != pts.shape[1]:
        raise ToolkitError(
            f"{len(senses)} senses given for {pts.shape[1]} objectives; give one per column"
        )
    bad = [s for s in senses if s not in SENSES]
    if bad:
        raise ToolkitError(f"unknown objective sense {bad[0]!r}; valid: {choices(SENSES)}")
    mask = np.zeros(len(pts), dtype=bool)
    finite = ~np.isnan(pts).any(axis=1)
    if finite.any():
        import moocore

        # dominance depends only on each objective's order: dense ranks keep it and
        # spare moocore infinite values (which crash its 3-D sweep, moocore 0.3)
        ranks = np.column_stack([np.unique(col, return_inverse=True)[1]
                                 for col in pts[finite].T]).astype(float)
        maximise = [sense == "max" for sense in senses]
        mask[finite] = moocore.is_nondominated(ranks, maximise=maximise, keep_weakly=True)
    return mask
