"""Pareto (non-dominated) filtering of objective vectors.

A point *dominates* another when it is at least as good in every objective and
strictly better in one. :func:`pareto_mask` marks the points that no other point
dominates. Identical points do not dominate each other, so duplicates on the
front are all kept. A row with a NaN objective is never on the front.

Two objectives use an O(n log n) sort-and-sweep. More objectives test each
point against the front found so far, visiting points in increasing order of
their summed per-objective ranks, so that a dominating point always comes first
(at worst O(n²) vectorised comparisons; fine for ≤ 10⁴ points).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toolkit.errors import ToolkitError, choices

__all__ = ["SENSES", "pareto_mask"]

#: valid optimisation senses
SENSES: tuple[str, ...] = ("min", "max")


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
    sign = np.array([1.0 if s == "min" else -1.0 for s in senses])
    costs = pts * sign  # every objective minimised from here on
    mask = np.zeros(len(costs), dtype=bool)
    finite = ~np.isnan(costs).any(axis=1)
    if not finite.any():
        return mask
    sub = costs[finite]
    if sub.shape[1] == 1:
        front = sub[:, 0] == sub[:, 0].min()
    elif sub.shape[1] == 2:
        front = _front_2d(sub)
    else:
        front = _front_nd(sub)
    mask[np.flatnonzero(finite)[front]] = True
    return mask


def _front_2d(costs: np.ndarray) -> np.ndarray:
    """Non-dominated rows of an (n, 2) minimisation problem in O(n log n)."""
    f0, f1 = costs[:, 0], costs[:, 1]
    order = np.lexsort((f1, f0))  # by f0, ties by f1
    a, b = f0[order], f1[order]
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])  # groups of equal f0
    group_min = np.minimum.reduceat(b, starts)
    # best f1 among all points with a strictly smaller f0
    before = np.r_[np.inf, np.minimum.accumulate(group_min)[:-1]]
    undominated = group_min < before
    undominated[0] = True  # nothing has a smaller f0 (matters when f1 is +inf)
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(a)]))
    keep_sorted = (b == group_min[group]) & undominated[group]
    keep = np.empty_like(keep_sorted)
    keep[order] = keep_sorted
    return keep


def _front_nd(costs: np.ndarray) -> np.ndarray:
    """Non-dominated rows of an (n, k) minimisation problem, at worst O(n²).

    Rows are visited in increasing order of their summed dense ranks: a row that
    dominates another has a strictly smaller rank sum, so it always comes first,
    and each row need only be tested against the front found so far.
    """
    n, k = costs.shape
    ranks = np.column_stack([np.unique(col, return_inverse=True)[1] for col in costs.T])
    order = np.argsort(ranks.sum(axis=1), kind="stable")
    front = np.empty((n, k))
    size = 0
    keep = np.zeros(n, dtype=bool)
    for i in order:
        row = costs[i]
        current = front[:size]
        dominated = ((current <= row).all(axis=1) & (current < row).any(axis=1)).any()
        if not dominated:
            front[size] = row
            size += 1
            keep[i] = True
    return keep
