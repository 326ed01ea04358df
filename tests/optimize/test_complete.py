"""Front completion (toolkit.optimize.complete) and ``Optimizer(complete_fill=True)``."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.optimize import ConfigSpace, CubeEvaluator, Optimizer
from toolkit.optimize.complete import front_lines, line_probability, non_domination_probability


def test_front_lines_are_one_gene_away_from_front_members_at_any_distance(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    rows = np.flatnonzero((space.genes[:, 0] == 4) & (space.genes[:, 2] == 1)
                          & (space.genes[:, 3] == 1))            # split 4, tpu-std, gpu
    member, behind = (tuple(int(x) for x in space.genes[r]) for r in rows[:2])
    points = np.array([[0.0, 0.0], [1.0, 1.0]])                # the second is dominated
    lines = front_lines([member, behind], points, space, tried={member, behind})
    for g in lines:
        assert sum(a != b for a, b in zip(g, member, strict=True)) == 1
    # the whole frequency line of the member, not only its nearest neighbours
    assert {tuple(int(x) for x in space.genes[r]) for r in rows[2:]} <= set(lines)
    # every split with the member's other genes (where valid)
    same = np.all(space.genes[:, 1:] == np.asarray(member[1:]), axis=1)
    assert {tuple(int(x) for x in space.genes[r]) for r in np.flatnonzero(same)} - {member} \
        <= set(lines)
    assert member not in lines and behind not in lines
    assert set(lines) == set(front_lines([member, behind], points, space, tried=set()))\
        - {behind}


def test_line_probability_trusts_lines_whose_mates_are_on_the_front():
    genes = [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (3, 0)]
    # line split 0 (gene 1 varies): (0, 0), (0, 1), (0, 2) all on the front;
    # line freq 0 (gene 0 varies): (1, 0), (2, 0), (3, 0) dominated
    points = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0], [2.0, 2.0], [2.5, 2.5], [3.0, 3.0]])
    p = line_probability(genes, points, [(0, 3), (4, 0), (4, 3)], prior=2.0)
    base = 3 / 6
    assert p[0] == pytest.approx((3 + 2 * base) / (3 + 2))     # three front mates
    assert p[1] == pytest.approx((1 + 2 * base) / (4 + 2))     # 1 of 4; (4, x) has no mates
    assert p[2] == pytest.approx(base)                         # no mates: the base rate
    assert p[0] > p[2] > p[1]
    assert line_probability(genes, points, [(4, 0)], prior=2.0)[0] < base


def test_non_domination_probability_counts_draws():
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    draws = np.array([[[0.5, 0.5], [2.0, 2.0]],
                      [[1.5, 1.5], [2.0, 2.0]],
                      [[0.0, 0.9], [0.0, 1.0]]])                # 3 draws, 2 candidates
    assert non_domination_probability(draws, front) == pytest.approx([2 / 3, 1 / 3])


def test_complete_fill_measures_the_front_lines(toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    evaluator = CubeEvaluator(toy_cube)
    plain = Optimizer(space, evaluator, seed=3, progress=False).run(0.25)
    filled = Optimizer(space, evaluator, seed=3, progress=False, complete_fill=True).run(0.25)
    assert len(filled.evaluated) == len(plain.evaluated)
    first = [e.config for e in plain.evaluated]
    assert [e.config for e in filled.evaluated] != first      # the final phase differs
    first_change = next(i for i, (a, b) in enumerate(zip(first, filled.evaluated, strict=True))
                if a != b.config)
    assert first_change >= 0.6 * len(first)                   # ... and only the final phase
