"""Surrogate pre-selection: spend evaluations on the children most likely to help.

Each generation the optimizer breeds more children than it evaluates. A
surrogate — one ensemble of extremely randomised trees per objective
(``sklearn.ensemble.ExtraTreesRegressor``) fitted on every evaluation so far —
predicts each child's normalised objectives (mean and spread over the trees).
Children are then taken greedily by the hypervolume they would add to the
archive's front at an *optimistic* estimate ``mean - kappa * spread`` (a lower
confidence bound: a child the trees disagree on is worth a look); after each
pick its *mean* prediction joins the front (the "kriging believer" heuristic),
so one batch does not pile onto the same spot. When no child adds anything even
optimistically, the rest of the batch is filled with the children whose
optimistic estimate lies nearest to the front.

Features: the ordinal genes (``split``, ``cpu_freq``, ``devices``) as their
index scaled to [0, 1] (trees can generalise across neighbouring settings)
*and*, where a gene has more than two values, one-hot as well (a tree can then
isolate one setting: accuracy changes from one split to the next without any
trend, and a one-hot column lets a single cut learn a split's accuracy from
one measurement instead of blurring it with its neighbours'); the categorical
ones (accelerators, ``codec``, ``strategy``) one-hot.
"""

from __future__ import annotations

import numpy as np

from toolkit.optimize.objectives import hypervolume
from toolkit.optimize.space import ConfigSpace

__all__ = ["Surrogate", "distance_to_front", "pick_by_improvement"]


class Surrogate:
    """Per-objective tree ensembles over gene tuples."""

    def __init__(self, space: ConfigSpace, n_trees: int = 48, seed: int = 0,
                 onehot_ordinal: bool = False) -> None:
        """Set up the ensembles (fitted by :meth:`fit`).

        Args:
            space: the configuration space of the gene tuples.
            n_trees: trees per ensemble.
            seed: random state of the ensembles.
            onehot_ordinal: also one-hot encode ordinal genes of more than two values
                (besides their scaled index).
        """
        self.space = space
        self.n_trees = n_trees
        self.seed = seed
        self.onehot_ordinal = onehot_ordinal
        self.models: list = []

    def features(self, genes: np.ndarray) -> np.ndarray:
        """Feature matrix of gene tuples (rows)."""
        genes = np.asarray(genes, dtype=np.int64).reshape(-1, len(self.space.gene_names))
        cols = []
        for i, (ordinal, n) in enumerate(zip(self.space.ordinal, self.space.gene_sizes,
                                             strict=True)):
            if ordinal:
                cols.append(genes[:, i:i + 1] / max(n - 1, 1))
                if self.onehot_ordinal and n > 2:
                    cols.append(np.eye(n)[genes[:, i]])
            elif n > 1:
                cols.append(np.eye(n)[genes[:, i]])
        return np.hstack(cols) if cols else np.zeros((len(genes), 1))

    def fit(self, genes: np.ndarray, targets: np.ndarray) -> Surrogate:
        """Fit one ensemble per target column."""
        from sklearn.ensemble import ExtraTreesRegressor

        x = self.features(genes)
        self.models = []
        for j in range(targets.shape[1]):
            model = ExtraTreesRegressor(n_estimators=self.n_trees, min_samples_leaf=1,
                                        random_state=self.seed + j, n_jobs=1)
            model.fit(x, targets[:, j])
            self.models.append(model)
        return self

    def draws(self, genes: np.ndarray) -> np.ndarray:
        """Every tree's prediction: shape (trees, rows, target columns)."""
        x = self.features(genes)
        return np.stack([np.stack([t.predict(x) for t in model.estimators_])
                         for model in self.models], axis=2)

    def predict(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread (standard deviation over trees) per target column."""
        per_tree = self.draws(genes)
        return per_tree.mean(axis=0), per_tree.std(axis=0)


def pick_by_improvement(
    front: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    n: int,
    *,
    kappa: float = 1.0,
    reference: float = 1.1,
    fill: bool = True,
) -> list[int]:
    """Greedy batch of candidate indices by optimistic hypervolume improvement.

    Args:
        front: current front in normalised minimisation space (rows).
        mean, std: surrogate predictions for the candidates, same space.
        n: how many to pick.
        kappa: optimism (how many spreads below the mean).
        reference: hypervolume reference coordinate.
        fill: when fewer than ``n`` add anything, fill up with those nearest the
            front (else return only the ones that add).

    Returns:
        Up to ``n`` distinct candidate indices, best first.
    """
    k = mean.shape[1]
    optimistic = mean - kappa * std
    current = np.asarray(front, float).reshape(-1, k)
    chosen: list[int] = []
    left = list(range(len(mean)))
    base = hypervolume(current, reference)
    while len(chosen) < n and left:
        gains = np.array([hypervolume(np.vstack([current, optimistic[i]]), reference) - base
                          for i in left])
        if gains.max() <= 1e-12:
            break
        best = left[int(np.argmax(gains))]
        chosen.append(best)
        left.remove(best)
        current = np.vstack([current, mean[best]])
        base = hypervolume(current, reference)
    if fill and len(chosen) < n and left:  # no predicted gain: nearest to the front first
        dist = np.array([distance_to_front(optimistic[i], current) for i in left])
        chosen += [left[i] for i in np.argsort(dist, kind="stable")[: n - len(chosen)]]
    return chosen


def distance_to_front(point: np.ndarray, front: np.ndarray) -> float:
    """How far ``point`` would have to move to be non-dominated (0 if it already is)."""
    if len(front) == 0:
        return 0.0
    return float(np.min(np.max(np.maximum(point - front, 0.0), axis=1)))
