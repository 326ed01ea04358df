"""Trace replay: the JSON result, strategy invariants, drift and adaptation, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from toolkit.cli import main
from toolkit.cube import cube_from_runs
from toolkit.errors import ToolkitError
from toolkit.policy import Policy
from toolkit.simulate import SIMULATION_SCHEMA, STRATEGIES, Drift, simulate
from toolkit.trace import generate_trace, read_trace, write_trace


@pytest.fixture()
def replay(toy):
    cube, _, _, policy_path = toy
    policy = Policy.load(policy_path)
    trace = generate_trace("toy", 50.0, 700.0, 3000, seed=1)
    return cube, policy, trace, simulate(cube, policy, trace, seed=3, progress=False)


def test_json_has_the_design_schema(replay):
    _, _, trace, sim = replay
    doc = json.loads(json.dumps(sim.as_dict()))
    assert doc["schema"] == SIMULATION_SCHEMA
    assert doc["requests"] == len(trace) and doc["seed"] == 3
    assert doc["energy_source"] == "model:test"
    assert list(doc["strategies"]) == list(STRATEGIES)
    for figures in doc["strategies"].values():
        assert set(figures) == {"energy_j_mean", "latency_ms_mean", "qos_met"}
        assert 0.0 <= figures["qos_met"] <= 1.0
    cloud = doc["strategies"]["cloud"]["energy_j_mean"]
    for name, saving in doc["energy_saving_vs_cloud"].items():
        assert saving == pytest.approx(1 - doc["strategies"][name]["energy_j_mean"] / cloud)


def test_strategy_invariants(replay):
    cube, policy, trace, sim = replay
    req = sim.requests
    by = {name: g.sort_values("request").reset_index(drop=True)
          for name, g in req.groupby("strategy")}
    configs = sim.configs
    assert {configs[i]["split"] for i in by["cloud"]["config"]} == {0}
    assert {configs[i]["split"] for i in by["edge"]["config"]} == {3}
    # static-energy-space spends least over the whole cube; static-energy is the
    # least-energy front configuration (DynaSplit's baseline), static-latency the fastest
    for name in STRATEGIES:
        assert by["static-energy-space"]["expected_energy_j"].mean() <= \
            by[name]["expected_energy_j"].mean() + 1e-12
    front = {tuple(sorted(c.items())) for c in policy.configs}
    for name in ("static-energy", "static-latency"):
        assert {tuple(sorted(configs[i].items())) for i in by[name]["config"]} <= front, name
    assert by["static-energy"]["expected_energy_j"].mean() <= min(
        by[n]["expected_energy_j"].mean() for n in ("dynasplit", "policy", "static-latency")
    ) + 1e-12
    assert sim.mean_latency_ms[by["static-latency"]["config"][0]] <= min(
        sim.mean_latency_ms[i] for i in np.unique(by["dynasplit"]["config"]))
    # the default (mean) rule picks what DynaSplit picks whenever a candidate meets the mean
    dyn, pol, exh = by["dynasplit"], by["policy"], by["dynasplit-exhaustive"]
    mean = policy.candidates.mean_ms.min()
    meetable = trace["Latency"].to_numpy() >= mean
    assert (dyn["config"][meetable] == pol["config"][meetable]).all()
    # DynaSplit's rule on the whole cube never spends more (in expectation) than a
    # strategy whose choice met the threshold on average
    for name in ("dynasplit", "policy", "cloud", "edge", "static-latency"):
        s = by[name]
        ok = sim.mean_latency_ms[s["config"]] <= s["threshold_ms"].to_numpy()
        assert ok.any(), name
        assert (exh["expected_energy_j"][ok] <= s["expected_energy_j"][ok] + 1e-9).all(), name
    # clairvoyant is a lower bound per request: wherever a strategy's drawn run met the
    # threshold, clairvoyant met it too and spent no more on it
    clair = by["clairvoyant"]
    for name in STRATEGIES:
        s = by[name]
        assert (clair["met"] >= s["met"]).all(), name
        assert (clair["energy_j"][s["met"]] <= s["energy_j"][s["met"]] + 1e-12).all(), name
    # same seed, same result; another seed draws other runs
    again = simulate(cube, policy, trace, seed=3, progress=False)
    pd.testing.assert_frame_equal(again.requests, sim.requests)
    other = simulate(cube, policy, trace, seed=4, progress=False)
    assert not np.array_equal(other.requests["latency_ms"], sim.requests["latency_ms"])


def test_switching_is_charged_and_reconfiguration_awareness_pays(toy):
    cube, _, _, policy_path = toy
    policy = Policy.load(policy_path)
    trace = generate_trace("toy", 50.0, 700.0, 2000, seed=2)
    plain = simulate(cube, policy, trace, seed=0, switching=True, progress=False).table()
    free = simulate(cube, policy, trace, seed=0, progress=False).table()
    assert plain.loc["dynasplit", "energy_j_mean"] > free.loc["dynasplit", "energy_j_mean"]
    assert plain.loc["cloud", "energy_j_mean"] == free.loc["cloud", "energy_j_mean"]
    aware = simulate(cube, policy.with_rule(reconfiguration=True), trace, seed=0,
                     switching=True, progress=False).table()
    assert aware.loc["policy", "qos_met"] >= plain.loc["policy", "qos_met"]


def drift_cube():
    """A: cloud-assisted, 100 ms of which 40 ms transfer, 1 J. B: edge only, 110 ms, 3 J."""
    runs = []
    for r in range(5):
        runs.append({"model": "m", "split": 1, "cpu_freq": 1800, "edge_accel": "none",
                     "cloud_accel": "none", "latency_ms": 100.0 + r * 0.1,
                     "transfer_ms": 40.0, "energy_j": 1.0})
        runs.append({"model": "m", "split": 2, "cpu_freq": 1800, "edge_accel": "none",
                     "cloud_accel": "none", "latency_ms": 110.0 + r * 0.1,
                     "transfer_ms": 0.0, "energy_j": 3.0})
    return cube_from_runs(runs, {"energy_source": "model:test"})


def test_adaptation_keeps_meeting_thresholds_under_drift():
    cube = drift_cube()
    front = [{"model": "m", "split": s, "cpu_freq": 1800, "edge_accel": "none",
              "cloud_accel": "none"} for s in (1, 2)]
    policy = Policy.from_front(front, cube)
    thresholds = np.full(1000, 120.0)
    drift = Drift(200, 700, 3.0)              # A's transfer 40 -> 120 ms: A takes 180 ms
    sim = simulate(cube, policy, thresholds, seed=0, drift=drift, adapt=True, progress=False)
    req = sim.requests
    during = req[(req["request"] >= 200) & (req["request"] < 700)]
    met = during.groupby("strategy")["met"].mean()
    assert met["policy"] == 0.0                 # the static rule keeps choosing A
    assert met["policy-adaptive"] >= 0.95       # adapts within a few requests
    before = req[req["request"] < 200].groupby("strategy")["met"].mean()
    assert before["policy"] == before["policy-adaptive"] == 1.0
    after = req[req["request"] >= 800]
    adaptive = after[after["strategy"] == "policy-adaptive"]
    assert adaptive["met"].all()
    assert adaptive["energy_j"].mean() < 1.5    # back on the cheap configuration


def test_refusals():
    cube = drift_cube()
    policy = Policy.from_front([{"model": "m", "split": 1, "cpu_freq": 1800,
                                 "edge_accel": "none", "cloud_accel": "none"}], cube)
    with pytest.raises(ToolkitError, match="no requests"):
        simulate(cube, policy, np.array([]), progress=False)
    with pytest.raises(ToolkitError, match="START:END:FACTOR"):
        Drift.parse("10-20")
    with pytest.raises(ToolkitError, match="0 <= start < end"):
        Drift(5, 5, 2.0)
    for args, message in (((None, 5, 2.0), "drift start must be a request index .*got None"),
                          ((0, 5.5, 2.0), "drift end must be a request index .*got 5.5"),
                          ((0, 5, "x"), "drift factor must be a number > 0, got 'x'"),
                          ((0, 5, float("nan")), "drift factor must be a number > 0, got nan")):
        with pytest.raises(ToolkitError, match=message):
            Drift(*args)
    with pytest.raises(ToolkitError, match="drift starts at request 50"):
        simulate(cube, policy, np.full(10, 100.0), drift=Drift(50, 60, 2.0), progress=False)
    other = cube_from_runs([{"model": "m", "split": 2, "cpu_freq": 1800, "edge_accel": "none",
                             "cloud_accel": "none", "latency_ms": 1.0, "energy_j": 1.0}], {})
    with pytest.raises(ToolkitError, match="not measured in the cube"):
        simulate(other, policy, np.full(10, 100.0), progress=False)
    for bad in ([100.0, np.nan], [100.0, -1.0], [np.inf]):
        with pytest.raises(ToolkitError, match=r"request \d of the trace has the threshold "
                                               r"(nan|-1.0|inf); a threshold is a number"):
            simulate(cube, policy, np.array(bad), progress=False)
    with pytest.raises(ToolkitError, match="the trace's thresholds are not numbers"):
        simulate(cube, policy, [100.0, "soon"], progress=False)
    table = np.array([[0, 100.0], [1, 150.0], [2, 120.0]])   # Index and Latency columns
    with pytest.raises(ToolkitError, match=r"^the trace's thresholds should be one column of ms, "
                                           r"got an array of shape \(3, 2\); pass the trace "):
        simulate(cube, policy, table, progress=False)
    column = simulate(cube, policy, table[:, 1:], progress=False).requests
    assert column.equals(simulate(cube, policy, table[:, 1], progress=False).requests)
    for kwargs, message in (
            ({"seed": -1}, "seed must be None or an integer >= 0, got -1"),
            ({"drift": "2000:6000:4"}, r"drift must be a Drift \(e.g. Drift\(2000, 6000, 4.0\)"),
            ({"alpha": 0}, r"alpha must be a number in \(0, 1\], got 0"),
            ({"alpha": "x"}, r"alpha must be a number in \(0, 1\], got 'x'")):
        with pytest.raises(ToolkitError, match=message):
            simulate(cube, policy, np.full(10, 100.0), progress=False, **kwargs)
    with pytest.raises(ToolkitError, match="the cube has no energy_j; a trace replay needs "
                                           "latency_ms, energy_j per run"):
        simulate(cube.drop_vars("energy_j"), policy, np.full(10, 100.0), progress=False)


def test_cli_export_then_simulate_json(toy, tmp_path, capsys):
    _, cube_path, front_path, _ = toy
    policy = tmp_path / "p.json"
    assert main(["export", str(front_path), "--cube", str(cube_path), "-o", str(policy),
                 "--rule", "tail", "--target", "0.9", "--confidence", "0.5"]) == 0
    assert "rule tail target 0.9" in capsys.readouterr().out
    trace = tmp_path / "trace.csv"
    write_trace(generate_trace("toy", 50.0, 700.0, 500, seed=0), trace)
    assert main(["simulate", str(cube_path), "--policy", str(policy), "--trace", str(trace),
                 "--seed", "1", "--json", "--drift", "100:300:2", "--adapt",
                 "--plot", str(tmp_path / "sim.png")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == SIMULATION_SCHEMA and doc["requests"] == 500
    assert "policy-adaptive" in doc["strategies"] and doc["drift"]["factor"] == 2.0
    assert doc["policy_rule"]["name"] == "tail"
    assert (tmp_path / "sim.png").stat().st_size > 10_000
    assert main(["simulate", str(cube_path), "--policy", str(policy), "--trace",
                 str(trace)]) == 0
    out = capsys.readouterr().out
    assert "dynasplit-exhaustive" in out and "clairvoyant" in out
    assert main(["simulate", str(cube_path), "--policy", str(front_path), "--trace",
                 str(trace)]) == 2
    assert "that is a front" in capsys.readouterr().err


def test_tail_tradeoff_figure():
    import matplotlib

    matplotlib.use("Agg")
    from toolkit.plots import tail_tradeoff

    points = pd.DataFrame({"target": [0.5, 0.9, 0.99, np.nan],
                           "confidence": [0.5, 0.5, 0.5, np.nan],
                           "energy_j_mean": [28.9, 29.0, 33.0, 28.8],
                           "qos_met": [0.987, 0.990, 0.991, 0.988],
                           "label": [None, None, None, "clairvoyant"]})
    fig = tail_tradeoff(points, energy_source="meter:splinter")
    ax = fig.axes[0]
    assert "measured: meter:splinter" in ax.get_xlabel()
    assert any(t.get_text() == "clairvoyant" for t in ax.texts)


def test_files_and_documents_are_taken_as_they_are_written(toy, tmp_path):
    """A notebook may pass what the command line writes: the cube, policy and trace
    files, or the policy's document; each gives the replay of the loaded objects."""
    cube, cube_path, _, policy_path = toy
    trace_path = write_trace(generate_trace("toy", 10.0, 80.0, 50, seed=1), tmp_path / "t.csv")
    policy = Policy.load(policy_path)
    expected = simulate(cube, policy, read_trace(trace_path), progress=False).as_dict()
    for args in ((cube_path, policy_path, trace_path),
                 (cube, json.loads(policy_path.read_text()), str(trace_path))):
        got = simulate(*args, progress=False).as_dict()
        assert got["strategies"] == expected["strategies"]
    with pytest.raises(ToolkitError, match=r"simulate needs a policy .*got int"):
        simulate(cube, 3, trace_path)
