"""Front completion: fill the last batches with the configurations most likely on the front.

A front found with a small budget misses mostly *near-ties*: configurations
on the line of a front cluster (the same split and accelerators at another CPU
frequency) that lie within measurement noise of dominated points the search
had measured, and so were never one elementary move from a front member.
With ``Optimizer(complete_fill=True)``, in the final (local-search) phase,
once no candidate adds hypervolume even optimistically, the rest of each
batch is taken from the front's neighbourhood and its *lines*: every untried
configuration that differs from a front member in one gene, at any distance
(:func:`front_lines`). They are ranked by how often their measured line-mates
are on the front (:func:`line_probability`), then by the surrogate's
probability of being non-dominated (:func:`non_domination_probability`: each
tree of the ensembles is one draw of the candidate's objectives), then by
their optimistic distance to the front.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import numpy as np

from toolkit.optimize.space import ConfigSpace, Genes
from toolkit.pareto import pareto_mask

__all__ = ["front_lines", "line_probability", "non_domination_probability"]


def front_lines(genes: Sequence[Genes], points: np.ndarray, space: ConfigSpace,
                tried: Container[Genes]) -> list[Genes]:
    """Untried configurations differing from a front member in exactly one gene.

    Args:
        genes: gene tuples of the evaluated configurations.
        points: their objectives in minimisation space (rows).
        space: the configuration space.
        tried: gene tuples not to propose again.

    Returns:
        Distinct untried valid gene tuples, in the order of the front members.
    """
    points = np.asarray(points, float)
    front = np.flatnonzero(pareto_mask(points, ["min"] * points.shape[1]))
    out: dict[Genes, None] = {}
    for i in front:
        base = np.asarray(genes[i], np.int64)
        same = space.genes == base
        for row in np.flatnonzero(same.sum(axis=1) == len(base) - 1):
            g = tuple(int(x) for x in space.genes[row])
            if g not in tried:
                out[g] = None
    return list(out)


def non_domination_probability(draws: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Per candidate, the share of draws that no point of ``front`` dominates.

    Args:
        draws: shape (draws, candidates, objectives), minimisation space.
        front: measured points (rows), same space.

    Returns:
        One probability per candidate.
    """
    d = np.asarray(draws, float)[:, :, None, :]              # draw, candidate, 1, k
    f = np.asarray(front, float)[None, None, :, :]           # 1, 1, front, k
    dominated = (np.all(f <= d, axis=3) & np.any(f < d, axis=3)).any(axis=2)
    return 1.0 - dominated.mean(axis=0)


def line_probability(genes: Sequence[Genes], points: np.ndarray,
                     candidates: Sequence[Genes], prior: float = 8.0) -> np.ndarray:
    """Per candidate, how often its measured line-mates are on the front.

    The line-mates along gene ``i`` are the evaluated configurations that
    differ from the candidate in gene ``i`` only. Along each gene the share of
    them that are non-dominated is shrunk towards the share of all evaluations
    on the front, ``base``: ``(front + prior * base) / (mates + prior)``, so one
    front mate alone is weak evidence; the candidate's value is the largest
    over the genes along which it has mates (``base`` where it has none). A
    configuration whose frequency line is all near-ties on the front is then
    likely on it too, while a line crossing many dominated splits is not.

    Args:
        genes: gene tuples of the evaluated configurations.
        points: their objectives in minimisation space (rows).
        candidates: gene tuples to score.
        prior: weight of the base rate, in evaluations.

    Returns:
        One probability per candidate.
    """
    points = np.asarray(points, float)
    on_front = pareto_mask(points, ["min"] * points.shape[1])
    g = np.asarray(genes, np.int64)
    c = np.asarray(candidates, np.int64).reshape(-1, g.shape[1])
    eq = c[:, None, :] == g[None, :, :]                       # candidate, evaluated, gene
    one_off = (eq.sum(axis=2) == g.shape[1] - 1)[:, :, None] & ~eq
    mates = one_off.sum(axis=1)                                # candidate, gene
    front = (one_off & on_front[None, :, None]).sum(axis=1)
    base = on_front.mean()
    share = np.where(mates > 0, (front + prior * base) / (mates + prior), -np.inf)
    return np.where(mates.any(axis=1), share.max(axis=1), base)
