"""Policies, replay and the scheduler over configurations with extra keys.

Candidates are keyed by the full configuration: the canonical keys plus the
cube's ``codec``, ``strategy`` and ``devices`` dimensions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from toolkit.cli import main
from toolkit.cube import cube_from_runs, pareto_configs, save_cube, to_dataframe
from toolkit.errors import ToolkitError
from toolkit.optimize import ConfigSpace, CubeEvaluator, Optimizer
from toolkit.policy import Policy, make_policy
from toolkit.scheduler import export_script
from toolkit.simulate import simulate

from .conftest import front_doc, toy_runs

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
OBJECTIVES = {"latency_ms": "min", "energy_j": "min"}


def codec_cube(attrs: dict | None = None):
    """The online toy cube measured with two codecs: int8 sends 30 % of the bytes."""
    runs = []
    for run in toy_runs():
        for codec in ("fp32", "int8"):
            shrink = 0.3 if codec == "int8" else 1.0
            saved = run["transfer_ms"] * (1 - shrink)
            runs.append({**run, "codec": codec, "transfer_ms": run["transfer_ms"] * shrink,
                         "latency_ms": run["latency_ms"] - saved,
                         "energy_j": run["energy_j"] - 0.001 * saved,
                         "accuracy": run["accuracy"] - (0.02 if codec == "int8"
                                                        and run["split"] < 3 else 0.0)})
    return cube_from_runs(runs, {"testbed": "test", "energy_source": "model:test",
                                 **(attrs or {})})


def partition_cube(strategies=("spatial", "layer-wise", "hybrid-spatial"), devices=(2, 4)):
    """A partitioning study's cube: strategies x devices x two frequencies, 3 runs each."""
    rng = np.random.default_rng(1)
    runs = []
    for strategy in strategies:
        split = 2 if strategy.startswith("hybrid-") else 3
        for n in devices:
            for freq in (600, 1800):
                for _ in range(3):
                    compute = 240.0 * split / 3 / n * 1800 / freq
                    comm = 12.0 * (n - 1) * (2.0 if "spatial" in strategy else 0.5)
                    cloud = 15.0 if split < 3 else 0.0
                    lat = (compute + comm + cloud) * rng.lognormal(0, 0.03)
                    runs.append({"model": "stack", "split": split, "cpu_freq": freq,
                                 "edge_accel": "none", "cloud_accel": "none",
                                 "strategy": strategy, "devices": n, "latency_ms": lat,
                                 "transfer_ms": comm, "accuracy": 0.9,
                                 "energy_j": n * (1.0 + freq / 1800) * lat / 1e3
                                 + 0.3 * cloud})
    return cube_from_runs(runs, {"testbed": "local-partition", "energy_source": "model:test"})


# --------------------------------------------------------------------------- policies


def test_candidates_differing_only_in_codec_are_two_candidates(tmp_path):
    cube = codec_cube()
    base = {"model": "toy", "split": 1, "cpu_freq": 1800, "edge_accel": "int8",
            "cloud_accel": "none"}
    doc = make_policy([{**base, "codec": "fp32"}, {**base, "codec": "int8"}], cube)
    assert doc["candidates"]["config"]["codec"] == ["fp32", "int8"]
    assert "codec" not in doc                      # the cube has a codec dimension
    policy = Policy.from_dict(doc)
    fp32, int8 = policy.candidate(0), policy.candidate(1)
    assert int8["latency_ms"]["mean"] < fp32["latency_ms"]["mean"]
    assert int8["transfer_ms"] == pytest.approx(0.3 * fp32["transfer_ms"])
    df = to_dataframe(cube)
    mine = df[(df["split"] == 1) & (df["cpu_freq"] == 1800) & (df["edge_accel"] == "int8")
              & (df["codec"] == "int8")]
    assert int8["latency_ms"]["n"] == len(mine)
    assert int8["latency_ms"]["mean"] == pytest.approx(mine["latency_ms"].mean(), abs=1e-3)
    assert [policy.codec(i) for i in range(2)] == ["fp32", "int8"]
    path = Policy.from_dict(doc).save(tmp_path / "policy.json")
    loaded = Policy.load(path)
    assert loaded.configs == [{**base, "codec": "fp32"}, {**base, "codec": "int8"}]
    assert list(loaded.configs[0]) == ["model", "split", "cpu_freq", "edge_accel",
                                       "cloud_accel", "codec"]
    with pytest.raises(ToolkitError, match=r"lacks codec; the cube's configurations have"):
        make_policy([base], cube)


def test_the_single_codec_of_a_campaign_cube_reaches_the_policy():
    runs = toy_runs()
    cube = cube_from_runs(runs, {"energy_source": "model:test", "codecs": "int8"})
    front = pareto_configs(cube, OBJECTIVES)
    doc = make_policy(front, cube)
    assert doc["codec"] == "int8"
    policy = Policy.from_dict(doc)
    assert "codec" not in policy.configs[0] and policy.codec(0) == "int8"
    assert make_policy([{**front[0], "codec": "int8"}], cube)["candidates"]["config"][
        "split"] == [front[0]["split"]]
    with pytest.raises(ToolkitError, match="has codec='fp32', but the cube has no 'codec'"):
        make_policy([{**front[0], "codec": "fp32"}], cube)
    plain = Policy.from_dict(make_policy(front, cube_from_runs(runs, {})))
    assert "codec" not in plain.doc and plain.codec(0) == "fp32"


def test_policy_and_replay_over_a_codec_dimension():
    cube = codec_cube()
    space = ConfigSpace.from_cube(cube)
    result = Optimizer(space, CubeEvaluator(cube), seed=0, progress=False).run(1.0)
    front = [e.config for e in result.front]
    assert {c["codec"] for c in front if c["split"] < 3} == {"fp32", "int8"}
    policy = Policy.from_front(front, cube)
    assert policy.configs == front
    thresholds = np.random.default_rng(3).uniform(30, 220, 400)
    sim = simulate(cube, policy, thresholds, seed=0, progress=False)
    assert all("codec" in c for c in sim.configs)
    assert len(sim.configs) == len(space)          # every (config, codec) is its own entry
    rows = sim.requests[sim.requests["strategy"] == "policy"]
    for threshold, pick in zip(rows["threshold_ms"], rows["config"], strict=True):
        assert sim.configs[pick] == policy.configs[policy.choose(threshold)]
    table = sim.table()
    assert table.loc["dynasplit-exhaustive", "expected_energy_j"] <= \
        table.loc["policy", "expected_energy_j"]
    # int8 sends less and costs less: wherever something is sent, DynaSplit's rule on
    # the whole cube takes it
    exhaustive = sim.requests[sim.requests["strategy"] == "dynasplit-exhaustive"]["config"]
    sent = {sim.configs[i]["codec"] for i in exhaustive if sim.configs[i]["split"] < 3}
    assert sent == {"int8"}


def test_policy_and_replay_over_strategy_and_devices(tmp_path):
    cube = partition_cube()
    front = pareto_configs(cube, OBJECTIVES)
    policy = Policy.from_front(front, cube)
    assert all({"strategy", "devices"} <= set(c) for c in policy.configs)
    assert policy.configs == front
    sim = simulate(cube, policy, np.linspace(20, 400, 300), seed=1, progress=False)
    assert len(sim.configs) == 3 * 2 * 2
    assert sim.as_dict()["strategies"]["policy"]["qos_met"] > 0
    # one strategy and device count: fronts without those keys are completed from the cube
    one = partition_cube(strategies=("spatial",), devices=(4,))
    bare = [{k: v for k, v in c.items() if k not in ("strategy", "devices")}
            for c in pareto_configs(one, OBJECTIVES)]
    filled = Policy.from_front(bare, one)
    assert all(c["strategy"] == "spatial" and c["devices"] == 4 for c in filled.configs)
    with pytest.raises(ToolkitError, match="lacks strategy, devices"):
        make_policy(bare, cube)


def test_cli_optimize_export_simulate_over_strategy_and_devices(tmp_path, capsys):
    cube_path = save_cube(partition_cube(), tmp_path / "study.nc")
    front, policy = tmp_path / "front.json", tmp_path / "policy.json"
    assert main(["optimize", str(cube_path), "--budget", "0.5", "--quiet", "-o",
                 str(front)]) == 0
    doc = json.loads(front.read_text())
    assert doc["space_size"] == 12
    assert all({"strategy", "devices"} <= set(c) for c in doc["evaluated"])
    assert main(["export", str(front), "--cube", str(cube_path), "-o", str(policy)]) == 0
    trace = tmp_path / "trace.csv"
    trace.write_text("Index,Network,Latency\n" + "".join(
        f"{i},stack,{t}\n" for i, t in enumerate(np.linspace(40, 400, 50))))
    capsys.readouterr()
    assert main(["simulate", str(cube_path), "--policy", str(policy), "--trace", str(trace),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["requests"] == 50 and result["strategies"]["policy"]["qos_met"] > 0


# --------------------------------------------------------------------------- scheduler


def test_partition_policy_dry_run_and_live_refusal(tmp_path, capsys):
    cube = partition_cube()
    path = Policy.from_front(pareto_configs(cube, OBJECTIVES), cube).save(
        tmp_path / "policy.json")
    lines = "\n".join(json.dumps({"id": i, "deadline_ms": d})
                      for i, d in enumerate((30, 90, 400)))
    proc = subprocess.run([sys.executable, "-m", "toolkit", "schedule", str(path), "--dry-run"],
                          input=lines, capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [o["status"] for o in done] == ["ok"] * 3
    assert all(o["config"]["strategy"] in ("spatial", "layer-wise", "hybrid-spatial")
               for o in done)
    assert main(["schedule", str(path)]) == 2
    err = capsys.readouterr().err
    assert "multi-device partition configuration" in err and "--dry-run" in err


@pytest.mark.slow
def test_live_schedule_passes_each_candidate_codec_to_the_testbed(tmp_path):
    """A digits-CNN policy over two codecs: the run uses (and sends) the candidate's codec."""
    runs = []
    for codec, latency, energy in (("fp32", 10.0, 0.5), ("int8", 40.0, 0.3)):
        for freq in (1800,):
            runs.append({"model": "digits-cnn", "split": 3, "cpu_freq": freq,
                         "edge_accel": "none", "cloud_accel": "none", "codec": codec,
                         "latency_ms": latency, "transfer_ms": 2.0, "energy_j": energy,
                         "accuracy": 0.95})
    cube = cube_from_runs(runs, {"energy_source": "model:test"})
    front = pareto_configs(cube, OBJECTIVES)
    assert {c["codec"] for c in front} == {"fp32", "int8"}
    save_cube(cube, tmp_path / "cube.nc")
    (tmp_path / "front.json").write_text(json.dumps(front_doc(front, "digits-cnn")))
    assert main(["export", str(tmp_path / "front.json"), "--cube", str(tmp_path / "cube.nc"),
                 "-o", str(tmp_path / "policy.json")]) == 0
    script = export_script(tmp_path / "scheduler.py", tmp_path / "policy.json")
    requests = [json.dumps({"id": i, "deadline_ms": d, "input": i})
                for i, d in enumerate((20, 500, 20, 500))]
    proc = subprocess.run([sys.executable, str(script)], input="\n".join(requests),
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = {o["id"]: o for o in map(json.loads, proc.stdout.splitlines())}
    assert [done[i]["status"] for i in range(4)] == ["ok"] * 4, done
    assert [done[i]["config"]["codec"] for i in range(4)] == ["fp32", "int8", "fp32", "int8"]
    for o in done.values():
        assert o["measured"] is True and o["codec"] == o["config"]["codec"]
    fp32_kb, int8_kb = done[0]["tensor_kb"], done[1]["tensor_kb"]
    assert int8_kb < 0.35 * fp32_kb              # int8 on the wire: about a quarter


@pytest.mark.slow
def test_offline_and_online_phase_on_a_real_partition_study(tmp_path):
    """A measured study (strategy, devices, codec dims): optimise, export, replay, decide."""
    from toolkit.cube import open_cube
    from toolkit.partition import Link, PartitionCluster, PartitionStudy, StudySpec

    spec = StudySpec("digits-cnn", ["spatial", "hybrid-spatial"], [1, 2], split=3,
                     codecs=["fp32", "int8"], samples=2, warmup=0, runs=2, inputs="random",
                     link=Link(200.0, 0.5))
    with PartitionCluster(workers=2) as cluster:
        PartitionStudy(cluster, spec, tmp_path / "study.nc", progress=False).run()
    cube = open_cube(tmp_path / "study.nc")
    space = ConfigSpace.from_cube(cube)
    assert space.gene_names[4:] == ("codec", "strategy", "devices")
    assert len(space) == 2 + 2 * 2                 # spatial sends fp32 only; hybrid both codecs
    result = Optimizer(space, CubeEvaluator(cube), seed=0, progress=False).run(1.0)
    front = [e.config for e in result.front]
    policy = Policy.from_front(front, cube)
    assert policy.configs == front
    hybrid = [i for i, c in enumerate(policy.configs) if c["strategy"] == "hybrid-spatial"]
    assert all(policy.codec(i) == policy.configs[i]["codec"] for i in hybrid)
    sim = simulate(cube, policy, np.linspace(1, 100, 60), seed=0, progress=False)
    assert len(sim.configs) == len(space) and sim.energy_source == cube.attrs["energy_source"]
    decision = policy.decide(1e6)
    assert decision.config in front and decision.meets
