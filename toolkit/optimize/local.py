"""Local search around the front: the untried neighbours of (nearly) non-dominated points.

In a configuration space the Pareto front is made of a few clusters: a split
and accelerator pair that is good at several CPU frequencies, neighbouring
splits with similar cost. The untried configurations one elementary move
(:func:`toolkit.optimize.variation.neighbours`) away from a front member are
therefore the most likely places for further front members; this is the
neighbourhood of Pareto local search (Paquete, Chiarandini & Stützle 2004).

Measurements are noisy, so a configuration just behind the front is often one
repeat away from being on it, and its neighbours are as promising: points
within a distance ``near`` of a point that dominates them (in the normalised
space) are expanded too.

Inside a cluster the CPU frequency trades latency for energy, and the front
often holds several frequencies of one cluster with dominated near-ties
between them (split 15 with the TPU and the GPU on the VGG16 pool: on the
front at 600, 1000, 1600 and 1800 MHz, not at 800, 1200, 1400). A step to
the nearest frequency either way stops at the first near-tie, so the
optimizer's ``line_genes`` (default ``cpu_freq``) make a gene's whole line
the neighbourhood: a device offers a handful of frequencies, so the line is
short.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import numpy as np

from toolkit.optimize.space import ConfigSpace, Genes
from toolkit.optimize.variation import neighbours
from toolkit.pareto import pareto_mask

__all__ = ["dominance_gap", "front_neighbourhood"]


def dominance_gap(points: np.ndarray) -> np.ndarray:
    """Per point, its distance to the nearest point that dominates it (0 on the front).

    Euclidean, in the (normalised, minimisation) space of ``points``: how far
    a dominated point lies behind the front. Ties in one objective (a shared
    accuracy) do not hide the distance, as they would for the additive ε
    indicator.
    """
    pts = np.asarray(points, float)
    gap = np.zeros(len(pts))
    for rows in np.array_split(np.arange(len(pts)), max(1, len(pts) // 256)):
        diff = pts[rows, None, :] - pts[None, :, :]                # row i minus row j
        dominated_by = np.all(diff >= 0, axis=2) & np.any(diff > 0, axis=2)
        dist = np.where(dominated_by, np.linalg.norm(diff, axis=2), np.inf).min(axis=1)
        gap[rows] = np.where(np.isfinite(dist), dist, 0.0)
    return gap


def front_neighbourhood(genes: Sequence[Genes], points: np.ndarray, space: ConfigSpace,
                        tried: Container[Genes], near: float = 0.0,
                        lines: Container[int] = ()) -> list[Genes]:
    """Untried neighbours of the points on, or within ``near`` of, the front.

    Args:
        genes: gene tuples of the evaluated configurations.
        points: their objectives in normalised minimisation space (rows).
        space: the configuration space.
        tried: gene tuples not to propose again.
        near: dominated points this close to a point dominating them are
            expanded too.
        lines: indices of the genes whose whole line is one move away
            (:func:`~toolkit.optimize.variation.neighbours`).

    Returns:
        Distinct untried gene tuples, neighbours of the closest points first.
    """
    points = np.asarray(points, float)
    if near > 0:
        gap = dominance_gap(points)
    else:  # the front only: no pairwise distances needed
        gap = np.where(pareto_mask(points, ["min"] * points.shape[1]), 0.0, np.inf)
    out: dict[Genes, None] = {}
    for i in np.argsort(gap, kind="stable"):
        if gap[i] > near:
            break
        for g in neighbours(genes[i], space, lines):
            if g not in tried:
                out[g] = None
    return list(out)

