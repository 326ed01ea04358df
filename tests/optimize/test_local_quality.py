"""Front local search (toolkit.optimize.local) and front quality (toolkit.optimize.quality)."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import ConfigError
from toolkit.optimize import ConfigSpace, CubeEvaluator, Optimizer
from toolkit.optimize.local import dominance_gap, front_neighbourhood
from toolkit.optimize.quality import ReferenceFront
from toolkit.optimize.variation import neighbours


def test_dominance_gap_sees_through_ties():
    points = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5], [0.3, 1.4, 0.5], [2.0, 2.0, 0.0]])
    gap = dominance_gap(points)
    assert gap[0] == gap[1] == gap[3] == 0.0                # non-dominated
    assert gap[2] == pytest.approx(np.hypot(0.3, 0.4))      # tied accuracy, still behind


def test_front_neighbourhood_expands_the_front_and_near_points(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    genes = [tuple(int(x) for x in space.genes[i]) for i in (0, 40, 80)]
    points = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 1.05]])
    front = front_neighbourhood(genes, points, space, tried=set(genes))
    assert set(front) == {g for g in neighbours(genes[0], space) + neighbours(genes[1], space)
                          if g not in genes}
    near = front_neighbourhood(genes, points, space, tried=set(genes), near=0.2)
    assert set(near) == set(front) | {g for g in neighbours(genes[2], space) if g not in genes}


def test_reference_front_scores(toy_cube):
    evaluator = CubeEvaluator(toy_cube)
    space = ConfigSpace.from_cube(toy_cube)
    objectives = list(evaluator.objectives)
    senses = ["max" if o == "accuracy" else "min" for o in objectives]
    keys = [tuple(int(x) for x in g) for g in space.genes]
    values = np.array([[evaluator.lookup(space.decode(g))[o] for o in objectives]
                       for g in space.genes])
    ref = ReferenceFront(values, senses, keys)
    whole = ref.score(values, keys)
    assert whole.hv_ratio == pytest.approx(1.0) and whole.igd_plus == pytest.approx(0.0)
    assert whole.front_share == 1.0
    # the front normalised by its own ideal and nadir spans the unit box
    assert ref.front.min(axis=0) == pytest.approx(np.zeros(len(objectives)))
    assert ref.front.max(axis=0) == pytest.approx(np.ones(len(objectives)))
    # a strict subset of the front scores less on every figure
    front_rows = [i for i, k in enumerate(keys) if k in ref.keys]
    half = front_rows[::2]
    part = ref.score(values[half], [keys[i] for i in half])
    assert part.hv_ratio < 1.0 and part.igd_plus > 0.0
    assert part.front_share == pytest.approx(len(half) / len(ref))


def test_a_line_gene_moves_to_every_other_valid_value(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    f = space.gene_names.index("cpu_freq")
    g = tuple(int(x) for x in space.genes[len(space.genes) // 2])

    def on_line(c):
        return c[:f] + c[f + 1:] == g[:f] + g[f + 1:]

    whole = {c for c in ((*g[:f], v, *g[f + 1:]) for v in range(space.gene_sizes[f]))
             if c != g and space.is_valid(c)}
    step, line = neighbours(g, space), neighbours(g, space, [f])
    assert {c for c in line if on_line(c)} == whole and len(whole) > 2
    assert {c for c in step if on_line(c)} < whole          # one step either way
    assert {c for c in line if not on_line(c)} == {c for c in step if not on_line(c)}


@pytest.mark.parametrize("line_genes", [(), ("cpu_freq",)])
def test_final_phase_searches_the_front_neighbourhood(toy_cube, line_genes):
    """In the local phase every evaluation is a neighbour of an earlier one."""
    space = ConfigSpace.from_cube(toy_cube)
    result = Optimizer(space, CubeEvaluator(toy_cube), seed=0, local_share=1.0,
                       line_genes=line_genes, progress=False).run(0.3)
    lines = [space.gene_names.index(g) for g in line_genes]
    genes = [tuple(int(x) for x in space.encode(e.config)) for e in result.evaluated]
    later = [i for i, e in enumerate(result.evaluated) if e.generation > 0]
    assert later
    for i in later:
        assert any(genes[i] in neighbours(g, space, lines) for g in genes[:i]), genes[i]


def test_unknown_line_genes_are_refused(toy_cube):
    with pytest.raises(ConfigError, match=r"unknown line_genes \['freq'\]; valid: split, "):
        Optimizer(ConfigSpace.from_cube(toy_cube), CubeEvaluator(toy_cube), line_genes=["freq"])


def test_front_quality_of_results_is_the_reference_fronts_score(toy_cube):
    """``front_quality(found, exhaustive)``, what notebook 03 and the panel show, is the
    benchmark's score of the found configurations against the exhaustive front."""
    from toolkit.optimize import front_quality, optimize

    space, evaluator = ConfigSpace.from_cube(toy_cube), CubeEvaluator(toy_cube)
    exhaustive = optimize(space, evaluator, 1.0, surrogate=False, progress=False)
    whole = front_quality(exhaustive, exhaustive)
    assert (whole.hv_ratio, whole.igd_plus, whole.front_share) == (1.0, 0.0, 1.0)
    found = optimize(space, evaluator, 0.1, seed=2, progress=False)
    objectives = list(exhaustive.objectives)
    senses = [exhaustive.objectives[o] for o in objectives]
    keys = [tuple(sorted(e.config.items())) for e in exhaustive.evaluated]
    ref = ReferenceFront([[e.values[o] for o in objectives] for e in exhaustive.evaluated],
                         senses, keys)
    direct = ref.score([[e.values[o] for o in objectives] for e in found.evaluated],
                       [tuple(sorted(e.config.items())) for e in found.evaluated])
    assert front_quality(found, exhaustive) == direct
    assert direct.front_share < 1.0  # a tenth of the space misses some of the front
