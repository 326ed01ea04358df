"""Variation operators on gene tuples that only ever yield valid configurations.

Validity is kept by **repair**: an operator first changes genes freely, then
projects the result onto the nearest valid configuration of the space
(:meth:`ConfigSpace.nearest`: the number of elementary moves, i.e. index steps
of the ordinal genes plus changed categorical genes; ties broken by the seeded
RNG).
The projection may also exclude configurations (those already tried), which
turns every offspring into a configuration not evaluated before.

The operators work on the space's genes (:attr:`ConfigSpace.gene_names`: the
four standard genes and any extra ``codec``, ``strategy``, ``devices`` gene).

* :func:`mutate` changes each gene with probability ``1 / n`` (at least one).
  An ordinal gene (``split``, ``cpu_freq``, ``devices``) usually moves to a neighbouring
  index (a step of 1, 2, 3... with geometrically falling probability) and
  sometimes jumps anywhere; a categorical gene takes another value at random.
* :func:`crossover` is uniform crossover: each gene comes from either parent
  with probability 1/2.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import numpy as np

from toolkit.optimize.space import ConfigSpace, Genes

__all__ = ["crossover", "mutate", "neighbours", "repair"]


def repair(
    genes: Sequence[int],
    space: ConfigSpace,
    rng: np.random.Generator,
    exclude: np.ndarray | None = None,
) -> Genes | None:
    """Project a gene tuple onto the nearest valid (and not excluded) configuration.

    Returns:
        A valid gene tuple, or None when ``exclude`` rules out every configuration.
    """
    return space.nearest(genes, rng, exclude)


def _raw_mutation(
    genes: Sequence[int], space: ConfigSpace, rng: np.random.Generator, step_prob: float
) -> list[int]:
    sizes = space.gene_sizes
    ordinal = space.ordinal
    mutable = [i for i, n in enumerate(sizes) if n > 1]
    out = [int(g) for g in genes]
    if not mutable:
        return out
    chosen = [i for i in mutable if rng.random() < 1.0 / len(mutable)]
    if not chosen:
        chosen = [int(rng.choice(mutable))]
    for i in chosen:
        n = sizes[i]
        if ordinal[i] and rng.random() < step_prob:
            step = int(rng.geometric(0.5)) * (1 if rng.random() < 0.5 else -1)
            new = min(max(out[i] + step, 0), n - 1)
            if new == out[i]:  # clipped at a bound: step the other way
                new = min(max(out[i] - step, 0), n - 1)
            out[i] = new
        else:
            others = [v for v in range(n) if v != out[i]]
            out[i] = int(rng.choice(others))
    return out


def mutate(
    genes: Sequence[int],
    space: ConfigSpace,
    rng: np.random.Generator,
    *,
    exclude: np.ndarray | None = None,
    step_prob: float = 0.75,
) -> Genes | None:
    """A valid mutant of ``genes`` (see the module docstring).

    Args:
        genes: the parent's gene tuple.
        space: the configuration space.
        rng: random generator.
        exclude: boolean mask over ``space.genes`` rows the mutant may not be.
        step_prob: probability that a mutated ordinal gene steps to a neighbour
            rather than jumping to a uniformly drawn value.

    Returns:
        A valid gene tuple, or None when ``exclude`` rules out every configuration.
    """
    return repair(_raw_mutation(genes, space, rng, step_prob), space, rng, exclude)


def crossover(
    parent_a: Sequence[int],
    parent_b: Sequence[int],
    space: ConfigSpace,
    rng: np.random.Generator,
    *,
    exclude: np.ndarray | None = None,
) -> tuple[Genes | None, Genes | None]:
    """Two valid children of uniform crossover (see the module docstring).

    With ``exclude`` given, the second child is repaired with the first one
    excluded too, so that both are new configurations.
    """
    swap = rng.random(len(space.gene_names)) < 0.5
    a = [int(y) if s else int(x) for x, y, s in zip(parent_a, parent_b, swap, strict=True)]
    b = [int(x) if s else int(y) for x, y, s in zip(parent_a, parent_b, swap, strict=True)]
    child_a = repair(a, space, rng, exclude)
    excl_b = exclude
    if exclude is not None and child_a is not None:
        excl_b = exclude.copy()
        excl_b[space.index(child_a)] = True
    child_b = repair(b, space, rng, excl_b)
    return child_a, child_b


def neighbours(genes: Sequence[int], space: ConfigSpace,
               lines: Container[int] = ()) -> list[Genes]:
    """Valid configurations one elementary move away from ``genes``.

    A move steps one ordinal gene to the nearest lower or higher index at which
    the configuration is valid (skipping the holes of a measured space, e.g. a
    frequency not measured at this split), or gives one categorical gene
    another value. Categorical moves that land on an invalid configuration are
    dropped (not repaired). A gene whose index is in ``lines`` moves to every
    other valid value: its whole line is one move away.
    """
    out: list[Genes] = []
    base = [int(g) for g in genes]
    for i, (ordinal, n) in enumerate(zip(space.ordinal, space.gene_sizes, strict=True)):
        moved = [(*base[:i], v, *base[i + 1:]) for v in range(n) if v != base[i]]
        valid = [cand for cand in moved if space.is_valid(cand)]
        if ordinal and i not in lines:  # the nearest valid value either way
            below = [c for c in valid if c[i] < base[i]]
            valid = below[-1:] + [c for c in valid if c[i] > base[i]][:1]
        out += valid
    return out
