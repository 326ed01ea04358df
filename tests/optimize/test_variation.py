"""Variation operators only ever produce valid configurations (property-style)."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.optimize import ConfigSpace, crossover, initial_population, mutate, repair
from toolkit.optimize.variation import neighbours


@pytest.fixture(scope="module")
def spaces(toy_cube):
    return [
        ConfigSpace.from_cube(toy_cube),
        ConfigSpace.from_cube(toy_cube).constrain(cpu_freqs=[600, 1800]),
        ConfigSpace.from_profiles("m", 6, "raspberry-pi-4", "cloud-gpu-server"),
        ConfigSpace.from_profiles("m", 2, "raspberry-pi-4", "cloud-gpu-server",
                                  edge_accels=["none", "tpu-max"]),
    ]


def test_mutation_and_crossover_are_always_valid(spaces):
    for space in spaces:
        for seed in range(150):
            rng = np.random.default_rng(seed)
            a, b = (tuple(space.genes[i]) for i in rng.integers(len(space), size=2))
            m = mutate(a, space, rng)
            assert space.is_valid(m)
            c1, c2 = crossover(a, b, space, rng)
            assert space.is_valid(c1) and space.is_valid(c2)
            raw = tuple(int(rng.integers(n)) for n in space.gene_sizes)  # maybe invalid
            assert space.is_valid(repair(raw, space, rng))


def test_operators_honour_exclusion(spaces):
    for space in spaces:
        for seed in range(60):
            rng = np.random.default_rng(seed)
            exclude = rng.random(len(space)) < 0.7
            a, b = (tuple(space.genes[i]) for i in rng.integers(len(space), size=2))
            for child in (mutate(a, space, rng, exclude=exclude),
                          *crossover(a, b, space, rng, exclude=exclude)):
                if exclude.all():
                    assert child is None
                else:
                    assert space.is_valid(child)
                    assert not exclude[space.index(child)]
            c1, c2 = crossover(a, b, space, rng, exclude=exclude)
            if c1 is not None and c2 is not None:
                assert c1 != c2


def test_mutation_changes_and_mostly_stays_near(spaces):
    space = spaces[0]
    rng = np.random.default_rng(1)
    steps = []
    for _ in range(300):
        a = tuple(space.genes[rng.integers(len(space))])
        exclude = np.zeros(len(space), bool)
        exclude[space.index(a)] = True
        m = mutate(a, space, rng, exclude=exclude)
        assert m != a
        steps.append(space.distances(a)[space.index(m)])
    assert np.median(steps) <= 1.0  # one categorical change or a few ordinal steps


def test_neighbours_are_valid_single_moves(spaces):
    space = spaces[0]
    for row in space.genes[::7]:
        for n in neighbours(row, space):
            assert space.is_valid(n)
            diff = [i for i, (x, y) in enumerate(zip(row, n, strict=True)) if x != y]
            assert len(diff) == 1
            i = diff[0]
            if space.ordinal[i]:  # ordinal genes move to the nearest valid index
                lo, hi = sorted((int(row[i]), int(n[i])))
                between = [(*n[:i], v, *n[i + 1:]) for v in range(lo + 1, hi)]
                assert not any(space.is_valid(g) for g in between)


def test_neighbours_skip_holes_along_ordinal_genes(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    genes = space.encode({"model": "toy", "split": 0, "cpu_freq": 1800,
                          "edge_accel": "none", "cloud_accel": "gpu"})
    freqs = sorted(space.decode(g)["cpu_freq"] for g in neighbours(genes, space)
                   if space.decode(g)["split"] == 0 and space.decode(g)["cloud_accel"] == "gpu")
    assert freqs == [1000]  # 1400 is a hole of the toy cube at split 0


def test_initial_population_has_corners_and_covers_splits(spaces):
    space = spaces[0]
    pop = initial_population(space, 30, np.random.default_rng(3))
    assert len(pop) == len(set(pop)) == 30
    configs = [space.decode(g) for g in pop]
    first, last = space.values["split"][0], space.values["split"][-1]
    for accel in space.values["cloud_accel"]:
        assert any(c["split"] == first and c["cloud_accel"] == accel for c in configs)
    for accel in space.values["edge_accel"]:
        assert any(c["split"] == last and c["edge_accel"] == accel for c in configs)
    assert {c["cpu_freq"] for c in configs} >= {600, 1800}
    assert {c["split"] for c in configs} == set(space.values["split"])  # every split
    tiny = initial_population(space, 3, np.random.default_rng(0))
    assert len(tiny) == 3
