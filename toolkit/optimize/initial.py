"""The domain-aware initial population.

It starts with the corners researchers know matter, then covers the splits:

1. *cloud-only* (the smallest split) with each cloud accelerator, at the
   highest and the lowest CPU frequency;
2. *edge-only* (the largest split) with each edge accelerator, at the highest
   and the lowest CPU frequency;
3. the remaining slots spread evenly over the other splits (evenly spaced with a
   random offset, every split once before any twice), the frequency and
   accelerator genes (and any extra gene: ``codec``, ``strategy``,
   ``devices``) drawn from shuffled cycles over their values so that each value
   appears about equally often (Latin-hypercube style).

The corners take each extra gene's first value (``fp32`` before the other
codecs, the fewest devices); the projection may move them.

Every candidate is projected onto the nearest valid configuration not chosen yet
(:meth:`ConfigSpace.nearest`; the split-covering samples keep their split where
that split has a free valid configuration), so the population holds distinct
valid configurations even where the space has holes.
"""

from __future__ import annotations

import numpy as np

from toolkit.optimize.space import ConfigSpace, Genes

__all__ = ["corner_genes", "initial_population"]


def _index_of(values: tuple, wanted: str, default: int = 0) -> int:
    return values.index(wanted) if wanted in values else default


def corner_genes(space: ConfigSpace) -> list[Genes]:
    """The corner gene tuples (before projection onto valid configurations)."""
    n_split, n_freq, n_edge, n_cloud = space.gene_sizes[:4]
    rest = (0,) * (len(space.gene_sizes) - 4)  # extra genes: their first value
    hi, lo = n_freq - 1, 0
    no_edge = _index_of(space.values["edge_accel"], "none")
    no_cloud = _index_of(space.values["cloud_accel"], "none")
    corners = []
    for freq in dict.fromkeys((hi, lo)):
        corners += [(0, freq, no_edge, c, *rest) for c in reversed(range(n_cloud))]
        corners += [(n_split - 1, freq, e, no_cloud, *rest) for e in reversed(range(n_edge))]
    return corners


def _cycle(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` values of ``range(n)``, each about equally often, in random order."""
    reps = -(-k // n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:k]


def initial_population(space: ConfigSpace, size: int, rng: np.random.Generator) -> list[Genes]:
    """Distinct valid gene tuples: corners first, then split-covering samples.

    Args:
        space: the configuration space.
        size: population size wanted (fewer come back when the space is smaller;
            corners are cut from the end when ``size`` is below their number).
        rng: random generator.
    """
    size = min(int(size), space.size)
    taken = np.zeros(space.size, bool)
    chosen: list[Genes] = []

    def take(genes, keep=()) -> None:
        found = space.nearest(genes, rng, taken, keep)
        if found is not None:
            taken[space.index(found)] = True
            chosen.append(found)

    for genes in corner_genes(space):
        if len(chosen) >= size:
            break
        take(genes)
    k = size - len(chosen)
    if k > 0:
        n_split = space.gene_sizes[0]
        inner = np.arange(1, n_split - 1) if n_split > 2 else np.arange(n_split)
        order = []
        while len(order) < k:  # every split once before any twice
            m = min(len(inner), k - len(order))
            pos = np.floor((rng.random() + np.arange(m)) * len(inner) / m).astype(int)
            order.extend(inner[np.minimum(pos, len(inner) - 1)].tolist())
        splits = rng.permutation(np.asarray(order[:k]))
        others = [_cycle(n, k, rng) for n in space.gene_sizes[1:]]  # frequency, accelerators...
        for genes in zip(splits, *others, strict=True):
            take(tuple(int(v) for v in genes), keep=("split",))
    return chosen
