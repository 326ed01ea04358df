"""OptimizationResult views and FRONT.json: schema, round trip, refusal of others."""

from __future__ import annotations

import json

import pytest

from toolkit.errors import ToolkitError
from toolkit.optimize import (
    FRONT_SCHEMA,
    ConfigSpace,
    CubeEvaluator,
    load_front,
    optimize,
    save_front,
)
from toolkit.pareto import pareto_mask


@pytest.fixture(scope="module")
def result(toy_cube):
    return optimize(ConfigSpace.from_cube(toy_cube), CubeEvaluator(toy_cube), 0.3, seed=4,
                    progress=False)


def test_front_json_schema(result, tmp_path):
    path = save_front(result, tmp_path / "FRONT.json")
    doc = json.loads(path.read_text())
    for key in ("schema", "model", "algorithm", "seed", "objectives", "space_size",
                "evaluations", "evaluated", "front", "history"):
        assert key in doc
    assert doc["schema"] == FRONT_SCHEMA == "dynasplit.front/1"
    assert doc["objectives"] == {"latency_ms": "min", "energy_j": "min", "accuracy": "max"}
    assert doc["model"] == "toy" and doc["algorithm"] == "nsga2" and doc["seed"] == 4
    assert doc["evaluations"] == len(doc["evaluated"]) == len(doc["values"])
    assert doc["energy_source"] == "model:synthetic"
    keys = {"model", "split", "cpu_freq", "edge_accel", "cloud_accel"}
    assert all(set(c) == keys for c in doc["evaluated"])
    for entry in doc["front"]:
        assert set(entry) == {"config", "latency_ms", "energy_j", "accuracy"}
        assert entry["config"] in doc["evaluated"]  # every front entry was evaluated
    # the front is exactly the non-dominated part of the evaluated values
    values = [[v[o] for o in doc["objectives"]] for v in doc["values"]]
    mask = pareto_mask(values, list(doc["objectives"].values()))
    assert sum(mask) == len(doc["front"])
    assert doc["history"][-1]["hypervolume"] == pytest.approx(doc["hypervolume"])
    assert doc["normalization"]["reference"] == 1.1
    assert doc["normalization"]["source"] == "cube"


def test_round_trip(result, tmp_path):
    path = save_front(result, tmp_path / "front.json")
    back = load_front(path)
    assert back.as_dict() == result.as_dict()
    assert back.hypervolume == pytest.approx(result.hypervolume)


def test_load_refuses_other_schemas(tmp_path):
    other = tmp_path / "policy.json"
    other.write_text(json.dumps({"schema": "dynasplit.policy/1"}))
    with pytest.raises(ToolkitError, match=r"schema 'dynasplit\.policy/1'.*'dynasplit\.front/1'"):
        load_front(other)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ToolkitError, match="not a readable JSON"):
        load_front(tmp_path / "bad.json")
    with pytest.raises(ToolkitError, match="does not exist"):
        load_front(tmp_path / "missing.json")
    (tmp_path / "partial.json").write_text(json.dumps({"schema": FRONT_SCHEMA, "model": "x"}))
    with pytest.raises(ToolkitError, match="lacks the front key"):
        load_front(tmp_path / "partial.json")


def _edited(doc, change):
    doc = json.loads(json.dumps(doc))
    change(doc)
    return doc


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(model=7), "key 'model' should be a string, got 7"),
    (lambda d: d.update(objectives=["latency_ms"]), "key 'objectives' should be a table"),
    (lambda d: d.update(objectives={}), "key 'objectives' should be a table of objectives"),
    (lambda d: d["objectives"].update(power_w="min"),
     "unknown key 'objectives.power_w'; valid keys: accuracy, energy_j, latency_ms"),
    (lambda d: d["objectives"].update(accuracy="min"),
     "key 'objectives.accuracy' should be one of max, got 'min'"),
    (lambda d: d.update(space_size="x"), "key 'space_size' should be an integer, got 'x'"),
    (lambda d: d.update(space_size=0), "key 'space_size' should be an integer >= 1, got 0"),
    (lambda d: d.update(evaluated="x"), "key 'evaluated' should be a list, got 'x'"),
    (lambda d: d["evaluated"].__setitem__(0, 5), r"key 'evaluated\[0\]' should be a table"),
    (lambda d: d["values"].pop(), "key 'values' should be one entry per entry of 'evaluated'"),
    (lambda d: d["values"][1].update(energy_j="x"),
     r"key 'values\[1\].energy_j' should be a number or null, got 'x'"),
    (lambda d: d["values"][0].update(generation=None),
     r"key 'values\[0\].generation' should be an integer, got None"),
    (lambda d: d.update(history=7), "key 'history' should be a list, got 7"),
    (lambda d: d.update(normalization="x"), "key 'normalization' should be a table, got 'x'"),
    (lambda d: d["normalization"].update(low=[0, 0]),
     r"key 'normalization.low' should have 3 values \(one per objective\), got 2"),
    (lambda d: d["normalization"].update(reference=None),
     "key 'normalization.reference' should be a number, got None"),
    (lambda d: d.update(cube=[]), "key 'cube' should be a string or null, got"),
    # objective values an export builds a policy on: finite, >= 0, accuracy a fraction
    (lambda d: d["values"][1].update(energy_j=-1.0),
     r"key 'values\[1\].energy_j' should be a number >= 0, got -1.0"),
    (lambda d: d["values"][1].update(latency_ms=float("inf")),
     r"key 'values\[1\].latency_ms' should be a number >= 0, got inf"),
    (lambda d: d["values"][0].update(accuracy=float("nan")),
     r"key 'values\[0\].accuracy' should be a number >= 0, got nan"),
    (lambda d: d["values"][0].update(accuracy=61.0),
     r"key 'values\[0\].accuracy' should be a fraction in 0..1, got 61.0"),
    (lambda d: d.update(budget=-3), "key 'budget' should be an integer >= 1, got -3"),
    (lambda d: d.update(seed=-1), "key 'seed' should be an integer >= 0 or null, got -1"),
])
def test_a_front_file_with_a_key_of_the_wrong_type_is_refused_naming_it(result, tmp_path,
                                                                        change, message):
    """FRONT.json is a documented format that users script against: a hand-edited or
    generated one is checked key by key, not read into a traceback."""
    path = save_front(result, tmp_path / "FRONT.json")
    path.write_text(json.dumps(_edited(json.loads(path.read_text()), change)))
    with pytest.raises(ToolkitError, match=f"{path}: " + message):
        load_front(path)


def test_a_minimal_front_file_is_read_from_its_front_entries(result, tmp_path):
    doc = json.loads(save_front(result, tmp_path / "FRONT.json").read_text())
    minimal = {k: doc[k] for k in ("schema", "model", "algorithm", "objectives", "space_size",
                                   "evaluated", "front")}
    (tmp_path / "minimal.json").write_text(json.dumps(minimal))
    back = load_front(tmp_path / "minimal.json")
    assert [e.config for e in back.front] == [e.config for e in result.front]
    minimal["front"][0]["config"] = "split 3"
    (tmp_path / "minimal.json").write_text(json.dumps(minimal))
    with pytest.raises(ToolkitError, match=r"key 'front\[0\].config' should be a table"):
        load_front(tmp_path / "minimal.json")


def test_table_views(result):
    df = result.to_dataframe()
    assert len(df) == result.evaluations
    assert df["on_front"].sum() == len(result.front)
    assert list(df.columns[:5]) == ["model", "split", "cpu_freq", "edge_accel", "cloud_accel"]
    ds = result.to_xarray()
    assert ds.sizes["evaluation"] == result.evaluations
    assert ds["energy_j"].attrs["units"] == "J"
    assert ds.attrs["energy_source"] == "model:synthetic"
    assert float(ds["history_hypervolume"][-1]) == pytest.approx(result.hypervolume)


def test_cube_evaluator_statistics(toy_cube, toy_objectives):
    config = {"model": "toy", "split": 2, "cpu_freq": 1000, "edge_accel": "tpu-std",
              "cloud_accel": "gpu"}
    truth = toy_objectives(2, 1000, "tpu-std", "gpu")
    mean = CubeEvaluator(toy_cube).lookup(config)
    assert mean["latency_ms"] == pytest.approx(truth["latency_ms"])  # repeats at -1 %, +1 %
    assert mean["energy_j"] == pytest.approx(truth["energy_j"])
    tail = CubeEvaluator(toy_cube, latency_stat=0.99).lookup(config)
    assert tail["latency_ms"] == pytest.approx(truth["latency_ms"] * (1 - 0.01 + 0.02 * 0.99))
    assert CubeEvaluator(toy_cube).lookup({**config, "cpu_freq": 1234}) is None
    assert CubeEvaluator(toy_cube).lookup({**config, "model": "other"}) is None
    from toolkit.errors import ConfigError

    with pytest.raises(ConfigError, match="latency_stat must be 'mean', 'median' or a quantile"):
        CubeEvaluator(toy_cube, latency_stat="p99x")
    with pytest.raises(ConfigError, match=r"quantile must be in \(0, 1\]"):
        CubeEvaluator(toy_cube, latency_stat=1.5)


def test_load_minimal_front_document(tmp_path):
    """A FRONT.json with only the design page's keys (no values, no normalization)."""
    configs = [{"model": "m", "split": s, "cpu_freq": 600, "edge_accel": "none",
                "cloud_accel": "none"} for s in range(3)]
    front = [{"config": configs[0], "latency_ms": 1.0, "energy_j": 3.0, "accuracy": None},
             {"config": configs[2], "latency_ms": 2.0, "energy_j": 1.0, "accuracy": None}]
    doc = {"schema": FRONT_SCHEMA, "model": "m", "algorithm": "nsga2", "seed": 0,
           "objectives": {"latency_ms": "min", "energy_j": "min"}, "space_size": 3,
           "evaluations": 3, "evaluated": configs, "front": front, "history": []}
    (tmp_path / "min.json").write_text(json.dumps(doc))
    result = load_front(tmp_path / "min.json")
    assert [e.config for e in result.front] == [configs[0], configs[2]]
    assert result.evaluations == 3 and result.hypervolume > 0
    assert len(result.to_dataframe()) == 3


def test_saving_something_that_is_no_result_is_named(tmp_path):
    for value in (None, {"front": []}, "FRONT.json"):
        with pytest.raises(ToolkitError, match=r"^save_front needs an OptimizationResult \(from "
                                               r"optimize or Optimizer.run\), got "
                                               rf"{type(value).__name__}$"):
            save_front(value, tmp_path / "FRONT.json")
    assert not (tmp_path / "FRONT.json").exists()


def test_what_takes_a_result_testbed_or_evaluator_names_anything_else(result):
    from toolkit.optimize import CampaignEvaluator, DaskEvaluator, front_quality

    assert front_quality(result, result).hv_ratio == pytest.approx(1.0)
    for value in (None, "FRONT.json"):
        for found, reference, name in ((value, result, "found"), (result, value, "reference")):
            with pytest.raises(ToolkitError, match=rf"^front_quality needs {name} as an "
                                                   r"OptimizationResult \(from optimize or "
                                                   rf"load_front\), got {type(value).__name__}$"):
                front_quality(found, reference)
        with pytest.raises(ToolkitError, match=r"^CampaignEvaluator needs a testbed \(LocalTestbed,"
                                               rf" open_testbed's...\), got "
                                               rf"{type(value).__name__}$"):
            CampaignEvaluator(value, "c.nc")
        with pytest.raises(ToolkitError, match=r"^DaskEvaluator needs an evaluator to run in "
                                               r"parallel \(e\.g\. CubeEvaluator\(cube\)\), got "
                                               rf"{type(value).__name__}$"):
            DaskEvaluator(value, None)
