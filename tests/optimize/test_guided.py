"""The guided initial design (issue 17): corners, then each inner split once, chosen by
the surrogate."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import ConfigError
from toolkit.optimize import INITIALS, ConfigSpace, CubeEvaluator, Optimizer
from toolkit.optimize.initial import corner_genes


def _first(result, n):
    return [e.config for e in result.evaluated[:n]]


def test_guided_design_covers_the_corners_then_every_inner_split(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    assert INITIALS == ("guided", "latin")
    assert Optimizer(space, CubeEvaluator(toy_cube)).initial == "guided"  # the default
    opt = Optimizer(space, CubeEvaluator(toy_cube), seed=4, initial="guided", progress=False)
    n_corners = len(corner_genes(space))
    result = opt.run(0.3)
    mu = opt.population_size_for(result.budget)
    inner = space.gene_sizes[0] - 2
    assert mu >= n_corners + inner
    first = _first(result, n_corners + inner)
    splits = [c["split"] for c in first]
    last = space.values["split"][-1]
    assert set(splits[:n_corners]) == {0, last}                    # the corners first
    assert sorted(splits[n_corners:]) == list(space.values["split"][1:-1])  # then each once
    assert all(e.generation == 0 for e in result.evaluated[: n_corners + inner])


def test_guided_design_learns_from_the_corners(toy_cube):
    """Inner splits get the accelerators the corners found fast, not an even mix."""
    space = ConfigSpace.from_cube(toy_cube)
    n_corners = len(corner_genes(space))
    inner = space.gene_sizes[0] - 2
    share = {}
    for initial in INITIALS:
        gpu = []
        for seed in range(4):
            result = Optimizer(space, CubeEvaluator(toy_cube), seed=seed, initial=initial,
                               progress=False).run(0.3)
            gpu += [c["cloud_accel"] == "gpu"
                    for c in _first(result, n_corners + inner)[n_corners:]]
        share[initial] = float(np.mean(gpu))
    assert share["guided"] > share["latin"]


def test_initial_design_is_checked_and_latin_without_surrogate(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    with pytest.raises(ConfigError, match="unknown initial design 'sobol'; valid: guided"):
        Optimizer(space, CubeEvaluator(toy_cube), initial="sobol")
    plain = Optimizer(space, CubeEvaluator(toy_cube), surrogate=False, seed=1,
                      progress=False).run(30)
    latin = Optimizer(space, CubeEvaluator(toy_cube), surrogate=False, initial="latin", seed=1,
                      progress=False).run(30)
    assert [e.config for e in plain.evaluated] == [e.config for e in latin.evaluated]
