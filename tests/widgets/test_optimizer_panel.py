"""OptimizerPanel driven through its widgets' values and its button."""

from __future__ import annotations

import itertools
import re

import pytest

from toolkit.errors import ToolkitError
from toolkit.optimize import (
    ConfigSpace,
    CubeEvaluator,
    front_quality,
    load_front,
    optimize,
    resolve_budget,
)
from toolkit.splinter import read_pool
from toolkit.widgets import OptimizerPanel


def _rows(html_table: str) -> int:
    return len(re.findall(r"<tr>", html_table.split("<tbody>")[1]))


def test_budget_slider_sets_the_evaluation_count(toy_cube) -> None:
    panel = OptimizerPanel(toy_cube)
    panel.budget.value = 0.5
    expected = resolve_budget(0.5, panel.space.size)
    assert panel.progress.max == expected
    assert f"= {expected} of {panel.space.size} configurations" in panel.budget_info.value


def test_run_shows_live_hypervolume_and_the_front(toy_cube) -> None:
    panel = OptimizerPanel(toy_cube, budget=0.4, seed=3)
    panel.run_button.click()
    result = panel.result
    assert result is not None and panel.progress.bar_style == "success"
    assert result.evaluations == resolve_budget(0.4, panel.space.size) == panel.progress.value
    # live: one point per generation, counts and hypervolume never decrease, last = the
    # result's
    counts = [n for n, _ in panel.live]
    hvs = [hv for _, hv in panel.live]
    assert len(panel.live) >= 2 and counts == sorted(counts) and counts[-1] == result.evaluations
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(hvs))
    assert hvs[-1] == pytest.approx(result.hypervolume)
    assert result.hypervolume <= panel.exhaustive_hypervolume + 1e-12
    quality = front_quality(result, panel.exhaustive_result)
    n_front = len(panel.exhaustive_result.front)
    assert (f"against the exhaustive front: hypervolume {quality.hv_ratio:.1%} "
            f"(front-normalised), {round(quality.front_share * n_front)} of its {n_front} "
            "configurations found") in panel.status.value
    assert "image/png" in panel.plot.outputs[0]["data"]
    assert _rows(panel.table.value) == len(result.front)


def test_panel_matches_the_api_for_the_same_controls(toy_cube) -> None:
    panel = OptimizerPanel(toy_cube)
    panel.algorithm.value, panel.budget.value, panel.seed.value = "nsga3", 0.3, 11
    panel.run_button.click()
    direct = optimize(ConfigSpace.from_cube(toy_cube), CubeEvaluator(toy_cube), 0.3,
                      algorithm="nsga3", seed=11, progress=False)
    assert [e.config for e in panel.result.front] == [e.config for e in direct.front]
    assert panel.result.algorithm == "nsga3"


def test_save_needs_a_run_then_writes_front_json(toy_cube, tmp_path) -> None:
    panel = OptimizerPanel(toy_cube, budget=0.2)
    with pytest.raises(ToolkitError, match="run the optimizer first"):
        panel.save(tmp_path / "FRONT.json")
    panel.run()
    path = panel.save(tmp_path / "FRONT.json")
    assert len(load_front(path).front) == len(panel.result.front)


def test_on_dynasplit_vgg16_pool(splinter_dir) -> None:
    cube = read_pool(splinter_dir / "simulation_pool_vgg16.csv")
    panel = OptimizerPanel(cube, budget=0.1)
    panel.run_button.click()
    assert panel.result.evaluations == resolve_budget(0.1, 747)
    assert 0.5 < panel.result.hypervolume / panel.exhaustive_hypervolume <= 1.0
    assert "meter:splinter" in panel.widget.children[0].value
