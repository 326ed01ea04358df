"""Extra genes: codec, strategy and devices as dimensions of the configuration space.

Synthetic cubes with a ``codec`` dimension and with ``strategy``/``devices``
dimensions (as a partitioning study writes them); the optimizer's front is
compared with the exhaustive one. The four-gene regression pins results
computed before extra genes existed.
"""

from __future__ import annotations

import hashlib
import itertools
import json

import numpy as np
import pytest

from toolkit.config import CONFIG_KEYS
from toolkit.cube import configurations, cube_from_runs, pareto_configs
from toolkit.devices.testbeds.local import LocalTestbed
from toolkit.errors import ConfigError
from toolkit.optimize import (
    CampaignEvaluator,
    ConfigSpace,
    CubeEvaluator,
    FunctionEvaluator,
    Optimizer,
    load_front,
    save_front,
)
from toolkit.optimize.surrogate import Surrogate
from toolkit.optimize.variation import crossover, mutate, neighbours
from toolkit.pareto import pareto_mask

from .conftest import synthetic_objectives

ATTRS = {"testbed": "synthetic", "energy_source": "model:synthetic"}

# --------------------------------------------------------------------------- cubes

CODEC_SHRINK = {"fp32": 1.0, "fp16": 0.5, "int8": 0.25}
CODEC_LOSS = {"fp32": 0.0, "fp16": 0.0005, "int8": 0.003}


def codec_runs() -> list[dict]:
    """Split inference with a codec: smaller tensors cost accuracy (nothing at the last split)."""
    runs = []
    for split, freq, edge, cloud, codec in itertools.product(
            range(8), (600, 1800), ("none", "tpu-max"), ("none", "gpu"), CODEC_SHRINK):
        if (split == 0 and edge != "none") or (split == 7 and cloud != "none"):
            continue
        values = synthetic_objectives(split, freq, edge, cloud)
        tensor_kb = [600, 900, 450, 300, 120, 90, 40, 0][split]
        saved_ms = tensor_kb * 0.08 * (1 - CODEC_SHRINK[codec])
        latency = values["latency_ms"] - saved_ms
        runs.append({"model": "toy", "split": split, "cpu_freq": freq, "edge_accel": edge,
                     "cloud_accel": cloud, "codec": codec, "latency_ms": latency,
                     "energy_j": values["energy_j"] - 4.0 * saved_ms / 1000,
                     "accuracy": values["accuracy"] - (CODEC_LOSS[codec] if split < 7 else 0)})
    return runs


STRATEGIES = ("input-channel", "layer-wise", "output-channel", "spatial")
HYBRIDS = ("hybrid-output-channel", "hybrid-spatial")
SYNC = {"layer-wise": 0.2, "spatial": 0.5, "output-channel": 1.5, "input-channel": 2.5}


def partition_objectives(strategy: str, devices: int, split: int, freq: int) -> dict:
    """Per-strategy compute balance and communication over 1..4 devices (+ a cloud tail)."""
    head = strategy.removeprefix("hybrid-")
    share = split / 7
    imbalance = 1.0 if head != "layer-wise" else 1.0 + 0.3 * (devices - 1)
    compute_ms = 400.0 * share * imbalance / devices * 1800 / freq
    comm_ms = 25.0 * SYNC[head] * (devices - 1) * share
    cloud_ms = 0.0 if split == 7 else 30.0 + 20.0 * (7 - split)
    latency = compute_ms + comm_ms + cloud_ms
    device_w = 2.0 + 2.0 * freq / 1800
    energy = devices * device_w * latency / 1000 + 0.6 * cloud_ms
    return {"latency_ms": latency, "energy_j": energy}


def partition_runs() -> list[dict]:
    """A partitioning study's cube rows: strategies x devices x frequencies (x hybrid splits)."""
    runs = []
    plans = [(s, 7) for s in STRATEGIES] + [(h, k) for h in HYBRIDS for k in (3, 5)]
    for (strategy, split), devices, freq in itertools.product(plans, (1, 2, 3, 4),
                                                                (600, 1200, 1800)):
        runs.append({"model": "stack", "split": split, "cpu_freq": freq, "edge_accel": "none",
                     "cloud_accel": "none", "strategy": strategy, "devices": devices,
                     **partition_objectives(strategy, devices, split, freq)})
    return runs


@pytest.fixture(scope="module")
def codec_cube():
    return cube_from_runs(codec_runs(), ATTRS)


@pytest.fixture(scope="module")
def partition_cube():
    return cube_from_runs(partition_runs(), ATTRS)


def _hv_ratio(result, evaluator) -> float:
    """Hypervolume of the optimizer's front / of the exhaustive front (cube-normalised)."""
    objectives = list(result.objectives)
    table = np.array([[v[o] for o in objectives] for v in evaluator.table.values()])
    senses = [result.objectives[o] for o in objectives]
    exhaustive = result.normalization.hypervolume(table[pareto_mask(table, senses)])
    return result.hypervolume / exhaustive


# --------------------------------------------------------------------------- spaces


def test_codec_dimension_becomes_a_categorical_gene(codec_cube):
    space = ConfigSpace.from_cube(codec_cube)
    assert space.gene_names == ("split", "cpu_freq", "edge_accel", "cloud_accel", "codec")
    assert space.values["codec"] == ("fp32", "fp16", "int8")
    assert space.ordinal == (True, True, False, False, False)
    assert len(space) == len(codec_runs())
    assert space.config_keys == (*CONFIG_KEYS, "codec")
    members = {json.dumps(c, sort_keys=True) for c in configurations(codec_cube)}
    assert {json.dumps(c, sort_keys=True) for c in space} == members
    config = {"model": "toy", "split": 3, "cpu_freq": 600, "edge_accel": "tpu-max",
              "cloud_accel": "gpu", "codec": "int8"}
    assert config in space and space.decode(space.encode(config)) == config
    assert list(space.decode(space.encode(config))) == [*CONFIG_KEYS, "codec"]
    assert {k: v for k, v in config.items() if k != "codec"} not in space  # codec needed
    with pytest.raises(ConfigError, match=r"lacks 'codec'.*codec"):
        space.encode({k: v for k, v in config.items() if k != "codec"})
    with pytest.raises(ConfigError, match=r"codec='bf16' is not in the space; valid: fp32"):
        space.encode({**config, "codec": "bf16"})
    # the categorical codec gene: a neighbour may take any other codec
    codecs = {space.decode(g)["codec"] for g in neighbours(space.encode(config), space)}
    assert codecs == {"fp32", "fp16", "int8"}
    accurate = space.constrain(min_accuracy=0.7575)
    assert len(accurate) and all(c["codec"] != "int8" or c["split"] == 7 for c in accurate)


def test_strategy_and_devices_from_a_partition_cube(partition_cube):
    space = ConfigSpace.from_cube(partition_cube)
    assert space.gene_names[4:] == ("strategy", "devices")
    assert space.values["devices"] == (1, 2, 3, 4)
    assert space.ordinal[4:] == (False, True)
    assert len(space) == len(partition_runs()) == 96
    assert space.n_splits == 8
    genes = space.encode({"model": "stack", "split": 7, "cpu_freq": 1200,
                          "edge_accel": "none", "cloud_accel": "none",
                          "strategy": "spatial", "devices": 2})
    moves = [space.decode(g) for g in neighbours(genes, space)]
    devices = sorted(m["devices"] for m in moves if m["strategy"] == "spatial"
                     and m["cpu_freq"] == 1200 and m["split"] == 7)
    assert devices == [1, 3]                                  # ordinal: one step each way
    assert {m["strategy"] for m in moves} == set(STRATEGIES)  # categorical: any other
    # features: ordinal genes scaled, categorical one-hot (split, freq, strategy, devices)
    x = Surrogate(space).features(space.genes[:5])
    assert x.shape == (5, 1 + 1 + 6 + 1)
    rng = np.random.default_rng(0)
    for _ in range(200):                                      # operators stay valid
        a, b = (space.genes[i] for i in rng.integers(len(space), size=2))
        assert space.is_valid(mutate(a, space, rng))
        assert all(space.is_valid(c) for c in crossover(a, b, space, rng))


def test_single_valued_extra_dimensions_are_fixed_and_carried(partition_cube):
    one = partition_cube.sel(strategy=["spatial"], devices=[4])
    space = ConfigSpace.from_cube(one)
    assert space.gene_names == ("split", "cpu_freq", "edge_accel", "cloud_accel")
    assert space.fixed == {"strategy": "spatial", "devices": 4}
    assert all(c["strategy"] == "spatial" and c["devices"] == 4 for c in space)
    config = space.configs()[0]
    assert {k: v for k, v in config.items() if k not in ("strategy", "devices")} in space
    assert {**config, "devices": 2} not in space
    assert "(fixed)" in repr(space)
    evaluator = CubeEvaluator(one)
    assert evaluator.fixed == {"strategy": "spatial", "devices": 4}
    assert evaluator.lookup(config) is not None
    assert evaluator.lookup({**config, "devices": 2}) is None


def test_from_profiles_with_codecs_strategies_and_devices():
    base = ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server",
                                     edge_accels=["none"], cloud_accels=["none"])
    codecs = ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server",
                                       edge_accels=["none"], cloud_accels=["none"],
                                       codecs=("int8", "fp32"))
    assert "codec" not in base.configs()[0]
    assert codecs.values["codec"] == ("fp32", "int8") and len(codecs) == 2 * len(base)
    one = ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server",
                                    edge_accels=["none"], cloud_accels=["none"],
                                    codecs=["int8"])
    assert one.fixed == {"codec": "int8"} and len(one) == len(base)
    parts = ConfigSpace.from_profiles(
        "vgg16", 5, "raspberry-pi-4", "cloud-gpu-server", edge_accels=["none"],
        cloud_accels=["none"], strategies=["spatial", "hybrid-spatial"], devices=[2, 4],
        cpu_freqs=[600, 1800])
    splits = {s: {c["split"] for c in parts if c["strategy"] == s}
              for s in ("spatial", "hybrid-spatial")}
    assert splits == {"spatial": {4}, "hybrid-spatial": {1, 2, 3}}   # PartitionSplits
    assert len(parts) == (1 + 3) * 2 * 2
    with pytest.raises(ConfigError, match="both strategies and devices"):
        ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server",
                                  strategies=["spatial"])
    with pytest.raises(ConfigError, match=r"unknown codec\(s\) bf16; valid: fp32, fp16, int8"):
        ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server",
                                  codecs=["bf16"])
    with pytest.raises(ConfigError, match=r"unknown strategy\(ies\) diagonal; valid: "):
        ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server",
                                  strategies=["diagonal"], devices=[2])
    with pytest.raises(ConfigError, match="devices must be integers >= 1"):
        ConfigSpace.from_profiles("vgg16", 5, "raspberry-pi-4", "cloud-gpu-server",
                                  strategies=["spatial"], devices=[0, 2])


def test_unknown_varying_dimension_is_refused(codec_cube):
    with pytest.raises(ConfigError, match=r"varies 'link'.*cube.sel\(link=...\)"):
        ConfigSpace.from_cube(codec_cube.expand_dims(link=[10, 100]))
    assert len(ConfigSpace.from_cube(codec_cube.expand_dims(link=[10]))) == len(codec_runs())


def test_cube_evaluator_keys_and_the_campaign_codec_attribute(codec_cube):
    evaluator = CubeEvaluator(codec_cube)
    assert evaluator.keys[-1] == "codec" and evaluator.fixed == {}
    config = {"model": "toy", "split": 2, "cpu_freq": 1800, "edge_accel": "none",
              "cloud_accel": "gpu"}
    fp32, int8 = (evaluator.lookup({**config, "codec": c}) for c in ("fp32", "int8"))
    assert int8["latency_ms"] < fp32["latency_ms"] and int8["accuracy"] < fp32["accuracy"]
    with pytest.raises(ConfigError, match="lacks 'codec'"):
        evaluator.lookup(config)
    # a campaign cube of one codec has no codec dimension but records it
    single = cube_from_runs([{k: v for k, v in r.items() if k != "codec"}
                             for r in codec_runs() if r["codec"] == "int8"],
                            {**ATTRS, "codecs": "int8"})
    evaluator = CubeEvaluator(single)
    assert evaluator.fixed == {"codec": "int8"}
    assert evaluator.lookup({**config, "codec": "int8"}) == int8
    assert evaluator.lookup({**config, "codec": "fp32"}) is None
    assert evaluator.lookup(config) == int8


# --------------------------------------------------------------------------- optimizer


@pytest.mark.parametrize("algorithm", ["nsga2", "nsga3"])
def test_optimizer_over_a_codec_dimension_finds_the_front(codec_cube, algorithm):
    space = ConfigSpace.from_cube(codec_cube)
    evaluator = CubeEvaluator(codec_cube)
    ratios = []
    for seed in range(3):
        result = Optimizer(space, evaluator, algorithm=algorithm, seed=seed,
                           progress=False).run(0.3)
        assert result.evaluations == round(0.3 * len(space))
        assert all(e.config in space and "codec" in e.config for e in result.evaluated)
        ratios.append(_hv_ratio(result, evaluator))
    assert min(ratios) >= 0.99, ratios  # random search at this budget: median 0.97
    front_codecs = {e.config["codec"] for e in result.front if e.config["split"] < 7}
    assert len(front_codecs) >= 2  # the codec trade-off is on the front


def test_optimizer_over_strategy_and_devices_finds_the_front(partition_cube):
    space = ConfigSpace.from_cube(partition_cube)
    evaluator = CubeEvaluator(partition_cube)
    ratios = []
    for seed in range(3):
        result = Optimizer(space, evaluator, seed=seed, progress=False).run(0.3)
        assert all(e.config in space for e in result.evaluated)
        ratios.append(_hv_ratio(result, evaluator))
    assert min(ratios) >= 0.995, ratios  # random search at this budget: median 0.98
    exhaustive = {json.dumps(c, sort_keys=True) for c in pareto_configs(
        partition_cube, {"latency_ms": "min", "energy_j": "min"})}
    found = {json.dumps(e.config, sort_keys=True) for e in result.front}
    assert found <= exhaustive  # every configuration it reports is truly Pareto-optimal


def test_front_json_round_trip_with_extra_keys(partition_cube, tmp_path):
    space = ConfigSpace.from_cube(partition_cube)
    result = Optimizer(space, CubeEvaluator(partition_cube), seed=1, progress=False).run(30)
    path = save_front(result, tmp_path / "FRONT.json")
    loaded = load_front(path)
    assert [e.config for e in loaded.evaluated] == [e.config for e in result.evaluated]
    assert [e.config for e in loaded.front] == [e.config for e in result.front]
    assert loaded.hypervolume == pytest.approx(result.hypervolume)
    doc = json.loads(path.read_text())
    assert all({"strategy", "devices"} <= set(f["config"]) for f in doc["front"])
    frame = loaded.to_dataframe()
    assert list(frame.columns[:7]) == [*CONFIG_KEYS, "strategy", "devices"]
    assert frame["devices"].isin([1, 2, 3, 4]).all()
    ds = loaded.to_xarray()
    assert "strategy" in ds and ds.sizes["evaluation"] == 30


def test_campaign_evaluator_refuses_partition_configurations(tmp_path):
    evaluator = CampaignEvaluator(LocalTestbed(log_dir=tmp_path / "logs"), tmp_path / "c.nc")
    with pytest.raises(ConfigError, match="PartitionStudy"):
        evaluator.evaluate([{"model": "digits-cnn", "split": 9, "cpu_freq": 1800,
                             "edge_accel": "none", "cloud_accel": "none",
                             "strategy": "spatial", "devices": 2}])
    assert not (tmp_path / "c.nc").exists()


# --------------------------------------------------------------------------- 4 genes


def _digest(configs) -> str:
    rows = [[c["split"], c["cpu_freq"], c["edge_accel"], c["cloud_accel"]] for c in configs]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


@pytest.mark.parametrize(("algorithm", "seed", "digest", "hypervolume", "front"), [
    ("nsga2", 0, "c4d5ebb1a5e29edc4b1f1c5c4947fcd417821c63fef83b06a5b46c7af977da7d",
     1.2899174703296652, 13),
    ("nsga3", 1, "dad1587b09c510177252ef58194e1a7acdf4d739e667eb319b4b0adb9d81d30a",
     1.2899174703296652, 13),
])
def test_four_gene_results_are_unchanged(toy_cube, algorithm, seed, digest, hypervolume,
                                         front):
    """Pinned: same evaluations, order and front (re-pinned when the final local
    search came, issue 17: the nsga3 run now finds the whole front, 13 of 13; the
    Latin start named since ``guided`` became the default, and the one-step
    frequency neighbourhood since whole frequency lines did)."""
    space = ConfigSpace.from_cube(toy_cube)
    assert space.gene_names == ("split", "cpu_freq", "edge_accel", "cloud_accel")
    result = Optimizer(space, CubeEvaluator(toy_cube), algorithm=algorithm, seed=seed,
                       initial="latin", line_genes=(), progress=False).run(0.3)
    assert all(list(e.config) == list(CONFIG_KEYS) for e in result.evaluated)
    assert _digest(e.config for e in result.evaluated) == digest
    assert result.hypervolume == pytest.approx(hypervolume, rel=1e-12)
    assert len(result.front) == front


def test_four_gene_profile_space_is_unchanged(toy_objectives):
    space = ConfigSpace.from_profiles("toy", 8, "raspberry-pi-4", "cloud-gpu-server",
                                      edge_accels=["none", "tpu-std", "tpu-max"])
    evaluator = FunctionEvaluator(lambda c: None if c["cpu_freq"] == 1400 else toy_objectives(
        c["split"], c["cpu_freq"], c["edge_accel"], c["cloud_accel"]))
    result = Optimizer(space, evaluator, seed=3, initial="latin", line_genes=(),
                       progress=False).run(60)
    assert _digest(e.config for e in result.evaluated) == (
        "d6b61f4d7c13e172bfb1ce4032b384e8bd009c2145bc47e722e6607164b948f3")
    assert len(result.unmeasured) == 4


@pytest.mark.slow
def test_live_optimisation_over_codecs_measures_each_with_its_codec(tmp_path, local_testbed):
    out = tmp_path / "live.nc"
    testbed = local_testbed  # started once for the session; the evaluators leave it running
    space = ConfigSpace.from_profiles("digits-cnn", 10, testbed.edge_profile,
                                      testbed.cloud_profile, edge_accels=("none",),
                                      cloud_accels=("none",), cpu_freqs=[1800],
                                      codecs=("fp32", "int8"))
    assert space.gene_names[-1] == "codec" and len(space) == 20
    evaluator = CampaignEvaluator(testbed, out, samples=5)
    result = Optimizer(space, evaluator, seed=2, progress=False).run(8)
    again = CampaignEvaluator(testbed, out, samples=5)
    replay = Optimizer(space, again, seed=2, progress=False).run(8)
    assert result.evaluations == 8
    codecs = {e.config["codec"] for e in result.evaluated}
    assert codecs == {"fp32", "int8"}
    cube = evaluator.cube
    assert list(cube["codec"].values) == ["fp32", "int8"]        # one cube, a codec dimension
    measured = {json.dumps(c, sort_keys=True) for c in configurations(cube)}
    assert {json.dumps(e.config, sort_keys=True) for e in result.evaluated} <= measured
    sent = {(c["split"], c["codec"]): float(cube["tensor_kb"].sel(
        model="digits-cnn", split=c["split"], cpu_freq=1800, edge_accel="none",
        cloud_accel="none", codec=c["codec"]).mean()) for c in configurations(cube)}
    pairs = [(kb, sent[(split, "fp32")]) for (split, codec), kb in sent.items()
             if codec == "int8" and (split, "fp32") in sent and split < 9]
    assert pairs and all(int8 < 0.35 * fp32 for int8, fp32 in pairs)  # int8 on the wire
    assert sum(c.summary.done_now for c in again.campaigns) == 0  # replayed from the journal
    assert [e.config for e in replay.evaluated] == [e.config for e in result.evaluated]
