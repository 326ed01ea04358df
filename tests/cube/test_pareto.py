"""toolkit.pareto.pareto_mask (moocore underneath) against a plain definition of dominance."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import ToolkitError
from toolkit.pareto import pareto_mask


def dominance_reference(points: np.ndarray, senses: list[str]) -> np.ndarray:
    """Non-dominated rows by the definition, one pair at a time."""
    costs = points * np.array([1.0 if s == "min" else -1.0 for s in senses])
    keep = []
    for i, ci in enumerate(costs):
        if np.isnan(ci).any():
            keep.append(False)
            continue
        dominated = any(
            (cj <= ci).all() and (cj < ci).any()
            for j, cj in enumerate(costs) if j != i and not np.isnan(cj).any()
        )
        keep.append(not dominated)
    return np.array(keep, dtype=bool)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_matches_definition_on_random_points_with_ties(k):
    rng = np.random.default_rng(k)
    for trial in range(150):
        n = int(rng.integers(1, 40))
        points = rng.integers(0, 5, size=(n, k)).astype(float)  # many ties and duplicates
        if trial % 2:
            points += rng.random((n, k)) * 1e-3
        if trial % 5 == 0:
            points[rng.integers(0, n)] = np.nan
        if trial % 7 == 0:
            points[rng.integers(0, n), 0] = np.inf
        senses = [("min", "max")[int(b)] for b in rng.integers(0, 2, size=k)]
        np.testing.assert_array_equal(pareto_mask(points, senses),
                                      dominance_reference(points, senses))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_infinities_anywhere_and_duplicate_rows_match_the_definition(k):
    rng = np.random.default_rng(10 + k)
    for _ in range(100):
        n = int(rng.integers(2, 30))
        points = rng.integers(0, 4, size=(n, k)).astype(float)
        for _ in range(3):  # ±inf in any column (moocore's own sweep cannot take -inf)
            points[rng.integers(0, n), rng.integers(0, k)] = rng.choice([np.inf, -np.inf])
        points[1] = points[0]  # a duplicate: both kept, or both dropped
        senses = [("min", "max")[int(b)] for b in rng.integers(0, 2, size=k)]
        mask = pareto_mask(points, senses)
        np.testing.assert_array_equal(mask, dominance_reference(points, senses))
        assert mask[0] == mask[1]


def test_the_filter_is_moocores(monkeypatch):
    import moocore

    calls = []
    real = moocore.is_nondominated

    def spy(points, **kwargs):
        calls.append(kwargs)
        return real(points, **kwargs)

    monkeypatch.setattr(moocore, "is_nondominated", spy)
    assert pareto_mask(np.array([[1.0, 3.0], [1.0, 3.0], [2.0, 2.0]]),
                       ["min", "max"]).tolist() == [True, True, False]
    assert calls == [{"maximise": [False, True], "keep_weakly": True}]


def test_two_objectives_small_example():
    points = np.array([[1.0, 5.0], [2.0, 2.0], [3.0, 3.0], [2.0, 2.0], [1.0, 6.0], [0.5, 9.0]])
    mask = pareto_mask(points, ["min", "min"])
    # duplicates (rows 1 and 3) are both kept; row 4 is dominated by row 0 (same f0, worse f1)
    assert mask.tolist() == [True, True, False, True, False, True]


def test_max_sense_flips_the_front():
    points = np.array([[1.0, 1.0], [2.0, 2.0], [0.0, 3.0]])
    assert pareto_mask(points, ["min", "min"]).tolist() == [True, False, True]
    assert pareto_mask(points, ["max", "max"]).tolist() == [False, True, True]


def test_three_objectives_large_front_is_exact():
    rng = np.random.default_rng(0)
    points = rng.random((400, 3))
    points /= points.sum(axis=1, keepdims=True)  # on a simplex: nobody dominates anybody
    assert pareto_mask(points, ["min"] * 3).all()
    worse = points + 0.01
    mask = pareto_mask(np.vstack([points, worse]), ["min"] * 3)
    assert mask[:400].all() and not mask[400:].any()


def test_empty_and_all_nan():
    assert pareto_mask(np.empty((0, 2)), ["min", "min"]).shape == (0,)
    assert not pareto_mask(np.full((3, 3), np.nan), ["min"] * 3).any()


def test_bad_input_is_a_toolkit_error():
    with pytest.raises(ToolkitError, match="valid: min, max"):
        pareto_mask(np.zeros((2, 2)), ["min", "smallest"])
    with pytest.raises(ToolkitError, match="2 senses given for 3 objectives"):
        pareto_mask(np.zeros((2, 3)), ["min", "min"])
    with pytest.raises(ToolkitError, match="numeric"):
        pareto_mask([["a", "b"]], ["min", "min"])
