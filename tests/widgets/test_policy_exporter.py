"""PolicyExporter driven through its widgets' values and its button; the exported script runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from toolkit.cube import pareto_configs
from toolkit.optimize import ConfigSpace, CubeEvaluator, optimize, save_front
from toolkit.policy import Policy
from toolkit.rules import RULES
from toolkit.simulate import simulate
from toolkit.splinter import read_pool
from toolkit.trace import read_trace
from toolkit.widgets import PolicyExporter


@pytest.fixture
def front(toy_cube) -> list[dict]:
    return pareto_configs(toy_cube)


def test_preview_replays_the_default_rule(toy_cube, front, tmp_path) -> None:
    exporter = PolicyExporter(front, toy_cube, folder=tmp_path)
    assert exporter.policy is not None and len(exporter.policy) == len(front)
    table = exporter.simulation.table()
    assert {"cloud", "edge", "policy", "clairvoyant"} <= set(table.index)
    assert f"{table.loc['policy', 'qos_met']:.1%} of the thresholds" in exporter.status.value
    assert "image/png" in exporter.plot.outputs[0]["data"]
    assert exporter.table.value.count("<tr") == len(table) + 1
    assert len(exporter.trace) == 200  # generated over the front's latency range


def test_controls_change_the_policy_and_match_the_api(toy_cube, front, tmp_path) -> None:
    thresholds = np.linspace(5.0, 60.0, 40)
    exporter = PolicyExporter(front, toy_cube, trace=thresholds, folder=tmp_path, seed=4)
    for rule in RULES:
        exporter.rule.value = rule
        assert exporter.policy.rule["name"] == rule
        assert exporter.target.disabled == (rule != "tail")
    exporter.rule.value = "tail"
    exporter.target.value = 0.9
    direct = simulate(toy_cube, Policy.from_front(front, toy_cube, rule="tail", target=0.9),
                      thresholds, seed=4, progress=False)
    mine = exporter.simulation.requests
    assert list(mine["config"]) == list(direct.requests["config"])
    assert list(mine["energy_j"]) == list(direct.requests["energy_j"])


def test_an_impossible_accuracy_floor_is_reported_and_not_exported(toy_cube, front,
                                                                   tmp_path) -> None:
    exporter = PolicyExporter(front, toy_cube, folder=tmp_path / "out")
    exporter.accuracy_floor.value = 0.999
    assert "accuracy floor" in exporter.status.value and exporter.policy is None
    assert exporter.export() == [] and "nothing to export" in exporter.status.value
    assert not (tmp_path / "out").exists()
    exporter.accuracy_floor.value = 0.93
    assert exporter.policy is not None and exporter.policy.rule["accuracy_floor"] == 0.93


def test_export_writes_a_policy_and_a_scheduler_that_runs(toy_cube, front, tmp_path) -> None:
    exporter = PolicyExporter(front, toy_cube, folder=tmp_path / "out")
    exporter.rule.value = "dynasplit"
    exporter.export_button.click()
    policy_path, script = exporter.exported
    assert Policy.load(policy_path).rule["name"] == "dynasplit"
    assert "exported" in exporter.status.value
    requests = "".join(json.dumps({"id": f"r{i}", "deadline_ms": d, "input": i}) + "\n"
                       for i, d in enumerate([8.0, 25.0, 80.0]))
    done = subprocess.run([sys.executable, str(script), "--dry-run"], input=requests,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outcomes = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [o["id"] for o in outcomes] == ["r0", "r1", "r2"]
    decided = [exporter.policy.decide(d).config for d in (8.0, 25.0, 80.0)]
    assert [o["config"] for o in outcomes] == decided
    assert all(o["energy_source"] == "model:toy" for o in outcomes)


def test_front_as_result_or_file(toy_cube, tmp_path) -> None:
    result = optimize(ConfigSpace.from_cube(toy_cube), CubeEvaluator(toy_cube), 0.5,
                      progress=False)
    from_result = PolicyExporter(result, toy_cube, folder=tmp_path)
    path = save_front(result, tmp_path / "FRONT.json")
    from_file = PolicyExporter(str(path), toy_cube, folder=tmp_path)
    assert from_result.policy.configs == from_file.policy.configs
    assert len(from_result.policy) == len({json.dumps(e.config, sort_keys=True)
                                           for e in result.front})


def test_on_dynasplit_vgg16_pool_and_trace(splinter_dir, tmp_path) -> None:
    cube = read_pool(splinter_dir / "simulation_pool_vgg16.csv")
    trace = read_trace(splinter_dir / "network_latency_50_samples.csv", model="vgg16")
    exporter = PolicyExporter(pareto_configs(cube), cube, trace=trace, folder=tmp_path)
    exporter.rule.value = "dynasplit"
    table = exporter.simulation.table()
    assert table.loc["policy", "energy_saving_vs_cloud"] > 0.5   # DynaSplit reports 72 %
    assert table.loc["policy", "qos_met"] >= 0.9
