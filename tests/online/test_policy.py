"""Policy documents: made from a front and a cube, saved, loaded, refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from refusals import assert_refused

from toolkit.adapt import DriftTracker
from toolkit.cube import select
from toolkit.devices.controllers.base import KnobChange, switch_time_ms
from toolkit.errors import ToolkitError
from toolkit.policy import POLICY_SCHEMA, Policy, front_configs, make_policy, read_front
from toolkit.switching import (
    HardwareState,
    hardware_state,
    next_state,
    switch_cost,
    switch_steps,
)

from .conftest import front_doc, toy_cube


def test_document_holds_distributions_from_the_cube(toy):
    cube, _, front_path, policy_path = toy
    doc = json.loads(policy_path.read_text())
    assert doc["schema"] == POLICY_SCHEMA
    assert doc["energy_source"] == "model:test" and doc["last_split"] == 3
    assert doc["rule"]["name"] == "mean"
    assert doc["hardware"]["costs"]["tpu_power_on_ms"] > 0
    policy = Policy.load(policy_path)
    front = read_front(front_path)
    assert policy.configs == front
    for i, config in enumerate(policy.configs):
        runs = select(cube, config)["latency_ms"].values
        runs = np.sort(runs[~np.isnan(runs)])
        entry = policy.candidate(i)
        assert entry["latency_ms"]["n"] == len(runs)
        assert entry["runs_ms"] == pytest.approx(runs, abs=1e-3)
        assert entry["latency_ms"]["mean"] == pytest.approx(runs.mean(), abs=1e-3)
        assert entry["latency_ms"]["p99"] == pytest.approx(np.percentile(runs, 99), abs=1e-3)
        energy = select(cube, config)["energy_j"].mean().item()
        assert entry["energy_j"] == pytest.approx(energy)


def test_a_front_is_read_from_a_result_a_file_or_a_list(toy):
    from toolkit.optimize import load_front

    _, _, front_path, _ = toy
    configs = read_front(front_path)
    assert front_configs(front_path) == front_configs(str(front_path)) == configs
    assert front_configs(load_front(front_path)) == configs
    assert front_configs([*configs, dict(configs[0])]) == configs  # duplicates dropped
    with pytest.raises(ToolkitError, match="the front is empty"):
        front_configs([])
    assert_refused(front_configs, (None, 3, {"front": configs}),
                   r"a front should be an OptimizationResult, a FRONT.json path or a list of "
                   r"configurations \(mappings\)")
    with pytest.raises(ToolkitError, match=r"^front entry 1 should be a configuration \(a "
                                           r"mapping of configuration keys\), got 'split 3'$"):
        front_configs([configs[0], "split 3"])


def test_a_policy_takes_its_front_as_front_configs_does(toy):
    cube, _, front_path, _ = toy
    by_list = make_policy(read_front(front_path), cube)
    by_path = make_policy(front_path, cube)
    for doc in (by_list, by_path):
        doc.pop("created_at")
    assert by_path == by_list
    with pytest.raises(ToolkitError, match=r"^a front should be an OptimizationResult"):
        make_policy(None, cube)
    for kwargs, message in (({"rule": "tail", "target": None}, "the tail target must be a number, "
                                                               "got None"),
                            ({"confidence": "high"}, "the confidence must be a number, got 'high'"),
                            ({"accuracy_floor": []}, "the accuracy floor must be a number, got"),
                            ({"max_runs": 0}, r"max_runs \(per-run latencies kept per candidate\) "
                                              "must be an integer >= 1, got 0")):
        with pytest.raises(ToolkitError, match=rf"^{message}"):
            make_policy(front_path, cube, **kwargs)


def test_many_runs_are_kept_as_a_sorted_sample(toy):
    cube, _, front_path, _ = toy
    doc = make_policy(read_front(front_path), cube, max_runs=8)
    policy = Policy.from_dict(doc)
    many = [i for i in range(len(policy)) if policy.candidate(i)["latency_ms"]["n"] == 40]
    assert many, "the toy front holds the 40-run configuration"
    runs = policy.candidate(many[0])["runs_ms"]
    assert len(runs) == 8 and runs == sorted(runs)


def test_save_load_round_trip_decides_the_same(toy, tmp_path):
    _, _, _, policy_path = toy
    policy = Policy.load(policy_path)
    again = tmp_path / "again.json"
    policy.with_rule(name="tail", target=0.9).save(again)
    loaded = Policy.load(again)
    assert loaded.rule["name"] == "tail"
    thresholds = np.linspace(30, 700, 200)
    tail = policy.with_rule(name="tail", target=0.9)
    assert [loaded.choose(t) for t in thresholds] == [tail.choose(t) for t in thresholds]


def test_decide_reports_switch_costs_and_state(toy):
    _, _, _, policy_path = toy
    policy = Policy.load(policy_path)
    first = policy.decide(1000.0)
    assert first.switch_ms == 0.0 and first.meets
    assert first.config == policy.configs[first.index]
    fast = policy.decide(65.0, first.state)
    assert fast.config["split"] == 0
    if fast.state.cpu_freq != first.state.cpu_freq:
        assert fast.switch_ms == policy.costs["cpu_freq_ms"]
    assert fast.predicted_ms == pytest.approx(policy.candidates.mean_ms[fast.index]
                                              + fast.switch_ms)
    # the policy keeps each pair's cost: the same figures as the switching module's
    on = HardwareState(first.state.cpu_freq, "std", first.state.cloud)
    for _ in range(2):
        assert policy.switch_cost(first.state, on) == switch_cost(policy.costs, first.state, on)
    assert policy.switch_cost(first.state, on)[0] >= policy.costs["tpu_power_on_ms"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(last_split="x"), "key 'last_split' should be an integer, got 'x'"),
    (lambda d: d.update(last_split=-2), "key 'last_split' should be an integer >= 0, got -2"),
    (lambda d: d.update(model=3), "key 'model' should be a string or null, got 3"),
    (lambda d: d.update(hardware="x"), "key 'hardware' should be a table, got 'x'"),
    (lambda d: d["hardware"].update(costs=[]), "key 'hardware.costs' should be a table"),
    (lambda d: d["hardware"]["costs"].update(tpu_power_on_ms="slow"),
     "key 'hardware.costs.tpu_power_on_ms' should be a number, got 'slow'"),
    (lambda d: d["hardware"]["costs"].update(cpu_freq_j=-1),
     "key 'hardware.costs.cpu_freq_j' should be a number >= 0, got -1"),
    (lambda d: d["rule"].update(target=None),
     r"the tail target must be a number in \(0, 1\), got None"),
    (lambda d: d["rule"].update(confidence="high"),
     r"confidence must be a number in \[0.5, 1\), got 'high'"),
    (lambda d: d["rule"].update(accuracy_floor="x"),
     "the accuracy floor must be a number or none, got 'x'"),
    (lambda d: d["rule"].update(reconfiguration="yes"),
     "key 'rule.reconfiguration' should be true or false, got 'yes'"),
    (lambda d: d["candidates"]["config"]["edge_accel"].__setitem__(0, "gpu"),
     "candidates: config.edge_accel: unknown edge accelerator.*gpu; valid: none, int8"),
    (lambda d: d["candidates"]["config"]["split"].__setitem__(0, "1"),
     "candidates: config.split holds '1', not an integer"),
    (lambda d: d["candidates"]["config"]["model"].__setitem__(0, None),
     "candidates: config.model holds None, not a name"),
    # numbers a decision rests on: a negative or infinite energy would win every pick
    (lambda d: d["candidates"]["energy_j"].__setitem__(0, -1.0),
     "candidates: energy_j must hold finite numbers >= 0"),
    (lambda d: d["candidates"]["energy_j"].__setitem__(0, float("inf")),
     "candidates: energy_j must hold finite numbers >= 0"),
    (lambda d: d["candidates"]["latency_ms"]["mean"].__setitem__(0, -5.0),
     "candidates: latency_ms.mean must hold finite numbers >= 0"),
    (lambda d: d["candidates"]["runs_ms"].__setitem__(0, [-1.0]),
     "candidates: runs_ms must hold finite numbers >= 0"),
    (lambda d: d["candidates"]["energy_j"].__setitem__(0, 10**400),
     r"malformed candidates block \(OverflowError"),
    (lambda d: d["candidates"]["config"]["split"].__setitem__(0, 10**400),
     r"candidates: config.split holds 1000+\.\.\., not an integer \(of at most 2\*\*53\)"),
    (lambda d: d["candidates"]["config"]["split"].__setitem__(0, d["last_split"] + 1),
     "candidates: config.split holds 4, beyond last_split 3"),
    (lambda d: d["candidates"].update(accuracy=[1.5] * len(d["candidates"]["energy_j"])),
     r"candidates: accuracy must hold fractions in 0..1 \(null: not measured\)"),
])
def test_a_policy_file_with_a_value_of_the_wrong_type_is_refused_naming_it(toy, tmp_path,
                                                                           change, message):
    """POLICY.json is read by the scheduler on its own: a hand-edited one is checked, not
    read into a traceback (or, for a configuration, applied to a testbed)."""
    doc = json.loads(toy[3].read_text())
    change(doc)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ToolkitError, match=f"{path}: " + message):
        Policy.load(path)


def test_refusals_name_the_problem(toy, tmp_path):
    cube, _, front_path, policy_path = toy
    with pytest.raises(ToolkitError, match="does not exist"):
        Policy.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ToolkitError, match="not a readable JSON"):
        Policy.load(tmp_path / "bad.json")
    with pytest.raises(ToolkitError, match="that is a front: run `dynasplit export`"):
        Policy.load(front_path)
    doc = json.loads(policy_path.read_text())
    with pytest.raises(ToolkitError, match="unknown rule 'fastest'; valid: dynasplit, mean"):
        Policy.from_dict({**doc, "rule": {"name": "fastest"}})
    broken = json.loads(policy_path.read_text())
    broken["candidates"]["runs_ms"][0] = [*broken["candidates"]["runs_ms"][0][::-1], 1.0]
    with pytest.raises(ToolkitError, match="candidates: runs_ms must be sorted per candidate"):
        Policy.from_dict(broken)
    other = [{"model": "toy", "split": 1, "cpu_freq": 1000, "edge_accel": "none",
              "cloud_accel": "none"}]
    with pytest.raises(ToolkitError, match="no measured run of the front configuration"):
        make_policy(other, cube)
    (tmp_path / "f.json").write_text(json.dumps({**front_doc([]), "schema": "x/1"}))
    with pytest.raises(ToolkitError, match="schema 'x/1'"):
        read_front(tmp_path / "f.json")
    with pytest.raises(ToolkitError, match=r"accuracy floor 0\.99"):
        make_policy(read_front(front_path), cube, accuracy_floor=0.99)
    with pytest.raises(ToolkitError, match=r"target must be a number in \(0, 1\), got 1.5"):
        make_policy(read_front(front_path), cube, rule="tail", target=1.5)
    with pytest.raises(ToolkitError, match="the front is empty; a policy needs at least one"):
        make_policy([], cube)
    policy = Policy.load(policy_path)
    for bad in (float("nan"), -1.0, "soon", None):
        with pytest.raises(ToolkitError, match=r"a latency threshold is a number of ms >= 0"):
            policy.choose(bad)
        with pytest.raises(ToolkitError, match=r"a latency threshold is a number of ms >= 0"):
            policy.decide(bad)
    assert policy.choose(0.0) == policy.choose(0)  # nothing met: the fastest, as for any miss
    with pytest.raises(ToolkitError, match="the cube has no latency_ms; a policy needs "
                                           "latency_ms, energy_j per run"):
        make_policy(read_front(front_path), cube.drop_vars("latency_ms"))
    with pytest.raises(ToolkitError, match="latency but no energy for the front configuration"):
        make_policy(read_front(front_path), cube.assign(energy_j=cube.energy_j * np.nan))


def test_accuracy_floor_from_the_document(toy):
    cube, _, front_path, _ = toy
    plain = Policy.from_front(front_path, cube)
    floor = Policy.from_front(front_path, cube, accuracy_floor=0.88)
    picks = {plain.configs[plain.choose(t)]["edge_accel"] for t in range(60, 700, 5)}
    assert "int8" in picks
    assert all(floor.configs[floor.choose(t)]["edge_accel"] == "none"
               for t in range(60, 700, 5))


def test_hardware_states_and_switch_costs():
    costs = {"cpu_freq_ms": 5.0, "cpu_freq_j": 0.02, "tpu_power_on_ms": 450.0,
             "tpu_power_on_j": 1.5, "tpu_power_off_ms": 120.0, "tpu_power_off_j": 0.3,
             "tpu_mode_switch_ms": 350.0, "tpu_mode_switch_j": 1.2, "gpu_switch_ms": 2500.0,
             "gpu_switch_j": 500.0}
    cloud = hardware_state({"split": 0, "cpu_freq": 1800, "edge_accel": "none",
                            "cloud_accel": "gpu"}, 22)
    edge = hardware_state({"split": 22, "cpu_freq": 600, "edge_accel": "tpu-max",
                           "cloud_accel": "none"}, 22)
    assert cloud == HardwareState(1800, "off", "gpu") and edge == HardwareState(600, "max", None)
    assert switch_cost(costs, None, edge) == (0.0, 0.0)
    assert switch_cost(costs, cloud, edge) == (455.0, pytest.approx(1.52))
    after = next_state(cloud, edge)
    assert after == HardwareState(600, "max", "gpu")     # the cloud stays on its GPU
    assert switch_cost(costs, after, cloud) == (125.0, pytest.approx(0.32))
    std = HardwareState(600, "std", None)
    assert switch_cost(costs, after, std) == (350.0, 1.2)
    cpu_cloud = HardwareState(1800, "off", "none")
    assert switch_cost(costs, cloud, cpu_cloud) == (2500.0, 500.0)   # in parallel with edge
    # the steps behind the costs, edge ones in order, the cloud's on its own side
    assert [s[:4] for s in switch_steps(costs, cloud, edge)] == [
        ("edge", "cpu_freq", "600", 5.0), ("edge", "tpu_power", "on", 450.0)]
    assert [s[:4] for s in switch_steps(costs, after, HardwareState(1800, "off", "none"))] == [
        ("edge", "cpu_freq", "1800", 5.0), ("edge", "tpu_power", "off", 120.0),
        ("cloud", "cloud_accel", "none", 2500.0)]
    assert switch_steps(costs, after, std)[0][:3] == ("edge", "tpu_mode", "std")
    assert switch_steps(costs, None, edge) == [] == switch_steps(costs, edge, edge)


def test_switch_time_is_per_host_in_sequence_and_hosts_in_parallel():
    pi = [KnobChange("pi", "cpu_freq", "600", 5.0), KnobChange("pi", "tpu_power", "on", 450.0),
          KnobChange("pi", "tpu_mode", "std", 9.0, changed=False)]
    assert switch_time_ms(pi) == 455.0
    assert switch_time_ms([*pi, KnobChange("cloud", "cloud_accel", "gpu", 300.0)]) == 455.0
    assert switch_time_ms([*pi, KnobChange("cloud", "cloud_accel", "gpu", 2500.0)]) == 2500.0
    assert switch_time_ms([]) == 0.0


def test_drift_tracker_follows_transfer_and_decays_when_idle():
    tracker = DriftTracker(alpha=0.5, step=0.05)
    assert tracker.grid_factor == 1.0
    for _ in range(10):
        tracker.observe(10.0, 40.0)
    assert tracker.factor == pytest.approx(4.0, rel=1e-2)
    assert tracker.grid_factor >= tracker.factor
    assert tracker.grid_factor / tracker.factor < 1.05 + 1e-9
    before = tracker.factor
    tracker.observe(0.0, 0.0)                               # nothing sent: idle decay
    assert 1.0 < tracker.factor < before
    with pytest.raises(ToolkitError, match="alpha"):
        DriftTracker(alpha=0.0)


def test_policy_for_another_model_cube(tmp_path):
    cube = toy_cube(model="other")
    with pytest.raises(ToolkitError, match="no measured run"):
        make_policy([{"model": "toy", "split": 0, "cpu_freq": 600, "edge_accel": "none",
                      "cloud_accel": "none"}], cube)


@pytest.mark.parametrize("quantile", [0.1, 0.5, 0.9])
def test_compare_rules_runs_each_rule_and_dynasplit_over_every_configuration(quantile):
    from toolkit.cube import config_means, pareto_configs
    from toolkit.policy import compare_rules
    from toolkit.rules import RULES

    cube = toy_cube()
    means = config_means(cube).dropna(subset=["latency_ms", "energy_j"])
    threshold = float(means.latency_ms.quantile(quantile))
    table = compare_rules(cube, threshold, target=0.9)
    assert list(table.rule) == [*(("tail τ=0.900" if r == "tail" else r) for r in RULES),
                                "dynasplit-exhaustive (every configuration)"]
    front = Policy.from_front(pareto_configs(cube), cube)
    for name, row in zip(RULES, table.to_dict("records"), strict=False):
        decision = front.with_rule(name=name, target=0.9).decide(threshold)
        assert {k: row[k] for k in decision.config} == decision.config
        assert row["candidates"] == len(front)
    # DynaSplit after an exhaustive search: the least energy among the configurations
    # whose mean latency meets the threshold (else the fastest), found here by pandas
    meeting = means[means.latency_ms <= threshold]
    best = (meeting.nsmallest(1, "energy_j") if len(meeting)
            else means.nsmallest(1, "latency_ms")).iloc[0]
    last = table.iloc[-1]
    assert last["candidates"] == len(means)
    assert (last["split"], last["cpu_freq"], last["edge_accel"]) == (
        best["split"], best["cpu_freq"], best["edge_accel"])
    assert last["energy_j"] == pytest.approx(best["energy_j"])
