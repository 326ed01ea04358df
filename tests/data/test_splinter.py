"""DynaSplit (SPLINTER) data import, checked against their published files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from refusals import assert_file_refused

from toolkit.config import Config, config_problems
from toolkit.cube import configurations, cube_info, select, to_dataframe
from toolkit.errors import ToolkitError
from toolkit.splinter import experiment_table, read_experiment, read_pool

POOL = "simulation_pool_vgg16.csv"
EXPERIMENT = "experiment_progress_vgg16.csv"


@pytest.fixture(scope="module")
def pool_cube(splinter_dir):
    return read_pool(splinter_dir / POOL, model="vgg16")


def test_pool_shape_names_and_attrs(pool_cube):
    cube = pool_cube
    assert dict(cube.sizes) == {"model": 1, "split": 23, "cpu_freq": 7, "edge_accel": 4,
                                "cloud_accel": 2, "repeat": 123}
    assert cube["split"].values.tolist() == list(range(23))
    assert cube["cpu_freq"].values.tolist() == list(range(600, 1801, 200))
    assert sorted(cube["edge_accel"].values.tolist()) == ["int8", "none", "tpu-max",
                                                          "tpu-std"]
    assert sorted(cube["cloud_accel"].values.tolist()) == ["gpu", "none"]
    assert cube.attrs["testbed"] == "splinter"
    assert cube.attrs["energy_source"] == "meter:splinter"
    assert cube.attrs["source"] == POOL
    assert cube.attrs["samples_per_run"] == 1000
    assert cube.attrs["accuracy_mode"] == "measured"
    assert len(configurations(cube)) == 747


def test_tpu_off_is_an_int8_head_above_split_0(pool_cube, splinter_dir):
    raw = pd.read_csv(splinter_dir / POOL)
    runs = to_dataframe(pool_cube)
    # every run keeps its accelerator: off -> int8 above split 0, none at split 0
    off = raw["edge-accelerator"] == "off"
    counts = runs.groupby(["edge_accel"]).size().to_dict()
    assert counts["int8"] == int((off & (raw["layer"] > 0)).sum()) > 0
    assert counts["none"] == int((off & (raw["layer"] == 0)).sum()) > 0
    assert set(runs.loc[runs["split"] == 0, "edge_accel"]) == {"none"}
    assert "none" not in set(runs.loc[runs["split"] > 0, "edge_accel"])


def test_every_run_is_imported_once(pool_cube, splinter_dir):
    raw = pd.read_csv(splinter_dir / POOL)
    runs = to_dataframe(pool_cube)
    assert len(runs) == len(raw) == 1082
    assert runs["latency_ms"].sum() == pytest.approx(raw["latency"].sum(), rel=1e-12)
    assert runs["energy_j"].sum() == pytest.approx(raw["energy"].sum(), rel=1e-12)
    # the file's first row: layer 22, 1200 MHz, TPU max, no server accelerator
    first = select(pool_cube, {"split": 22, "cpu_freq": 1200, "edge_accel": "tpu-max",
                               "cloud_accel": "none"}).sel(model="vgg16")
    assert first["latency_ms"].values[0] == pytest.approx(428.239975815)
    assert first["energy_j"].values[0] == pytest.approx(2.236007854890859)
    assert first["edge_cpu_util"].values[0] == pytest.approx(15.6)
    # the cloud-only, GPU row keeps its mapping: layer 0, off, True
    cloud = select(pool_cube, {"split": 0, "edge_accel": "none", "cloud_accel": "gpu"})
    assert float(cloud["tensor_kb"].max()) == pytest.approx(588.025390625)


def test_energy_is_edge_plus_cloud_with_gpu_inside_cloud(pool_cube, splinter_dir):
    runs = to_dataframe(pool_cube)
    np.testing.assert_allclose(runs["energy_j"], runs["edge_energy_j"] + runs["cloud_energy_j"],
                               rtol=0, atol=1e-9)
    raw = pd.read_csv(splinter_dir / POOL)
    assert (raw["avg energy cloud gpu (J)"] <= raw["avg energy cloud (J)"]).all()
    assert "GPU included" in pool_cube["cloud_energy_j"].attrs["comment"]


def test_measured_configurations_are_valid_and_coverage(pool_cube):
    for c in configurations(pool_cube):
        assert config_problems(Config.from_mapping(c), 23) == []
    info = cube_info(pool_cube)
    # fp32 Keras heads (none above split 0) are valid but DynaSplit never ran them
    assert (info["measured"], info["possible"]) == (747, 1218)
    assert info["runs"] == 1082 and info["pareto_front_size"] > 0


@pytest.mark.parametrize(("column", "value", "message"), [
    ("qos", "", r"line 2: column 'qos' holds nothing; every run needs a number >= 0"),
    ("qos", "-5", "column 'qos' holds -5"),
    ("qos", "inf", "column 'qos' holds inf"),
    ("strategy", "", "line 2: column 'strategy' is empty"),
])
def test_an_experiment_row_without_its_threshold_or_strategy_is_named(splinter_dir, tmp_path,
                                                                      column, value, message):
    """A missing threshold made the request silently unmet; it is named instead."""
    header, first, *rest = (splinter_dir / EXPERIMENT).read_text().splitlines()
    cells = first.split(",")
    cells[header.split(",").index(column)] = value
    assert_file_refused(read_experiment, tmp_path / EXPERIMENT,
                        "\n".join([header, ",".join(cells), *rest]) + "\n", message)


def test_experiment_reproduces_their_testbed_table(splinter_dir):
    df = read_experiment(splinter_dir / EXPERIMENT)
    assert len(df) == 300 and df["request"].nunique() == 50
    assert list(df.columns[:6]) == ["request", "strategy", "energy_j", "latency_ms", "qos_ms",
                                    "met"]
    assert set(df["edge_accel"]) <= {"none", "int8", "tpu-std", "tpu-max"}
    assert set(df.loc[df["split"] > 0, "edge_accel"]) <= {"int8", "tpu-std", "tpu-max"}
    assert set(df["cloud_accel"]) <= {"none", "gpu"}
    assert (df["met"] == (df["latency_ms"] <= df["qos_ms"])).all()
    table = experiment_table(df)
    cloud, theirs = table.loc["cloud"], table.loc["splinter:latency"]
    assert cloud["energy_j_mean"] == pytest.approx(69.06, abs=0.005)
    assert cloud["qos_met"] == pytest.approx(0.98)
    assert theirs["energy_j_mean"] == pytest.approx(19.22, abs=0.005)
    assert theirs["qos_met"] == pytest.approx(0.96)
    assert round(theirs["energy_saving_vs_cloud"], 2) == 0.72
    assert cloud["energy_saving_vs_cloud"] == 0.0
    assert (table["requests"] == 50).all()
    assert (table["energy_source"] == "meter:splinter").all()


def test_experiment_qos_matches_their_trace(splinter_dir):
    from toolkit.trace import read_trace

    df = read_experiment(splinter_dir / EXPERIMENT)
    trace = read_trace(splinter_dir / "network_latency_50_samples.csv", model="vgg16")
    qos = df[df["strategy"] == "cloud"].set_index("request")["qos_ms"].sort_index()
    np.testing.assert_allclose(qos.to_numpy(), trace["Latency"].to_numpy(), rtol=1e-12)


HEADER = ("accuracy,latency,energy,avg energy edge (J),avg latency edge (ms),"
          "avg latency cloud (ms),avg latency transfer (ms),avg energy cloud (J),"
          "tensor size (KB),utilization edge cpu (%),cpu-freq,layer,edge-accelerator,"
          "server-accelerator")


def test_small_pool_without_shared_data(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text(HEADER + "\n"
                    "0.6,100,3,1,50,40,10,2,10,50,600,1,std,True\n"
                    "0.6,110,3,1,50,40,20,2,10,50,600,1,std,True\n"
                    "0.6,400,2,2,400,0,0,0,0,30,1800.0,2,off,False\n")
    cube = read_pool(path, model="resnet50")
    assert configurations(cube) == [
        {"model": "resnet50", "split": 1, "cpu_freq": 600, "edge_accel": "tpu-std",
         "cloud_accel": "gpu"},
        {"model": "resnet50", "split": 2, "cpu_freq": 1800, "edge_accel": "int8",
         "cloud_accel": "none"},
    ]
    runs = select(cube, configurations(cube)[0])
    assert runs["transfer_ms"].values.tolist() == [10.0, 20.0]


@pytest.mark.parametrize(("row", "message"), [
    ("0.6,100,3,1,50,40,10,2,10,50,600,1,turbo,True", r"line 2: column 'edge-accelerator' "
                                                       r"holds 'turbo'; valid: off, std, max"),
    ("0.6,100,3,1,50,40,10,2,10,50,600,1,std,maybe", "valid: True, False"),
    ("0.6,100,3,1,50,40,10,2,10,50,600,1.5,std,True", "expected an integer >= 0"),
    ("0.6,100,3,1,50,40,10,2,10,50,600," + "9" * 400 + ",std,True",
     r"line 2: column 'layer' holds .*\.\.\.; expected an integer >= 0"),
    ("0.6,100,3,1,50,40,10,2,10,50,inf,1,std,True", "column 'cpu-freq' holds"),
    ("0.6,fast,3,1,50,40,10,2,10,50,600,1,std,True", "column 'latency' holds 'fast'"),
    # values the cube could not hold: its reader refuses inf and negative objectives
    ("0.6,inf,3,1,50,40,10,2,10,50,600,1,std,True",
     r"line 2: column 'latency' holds inf; every run needs a number >= 0"),
    ("0.6,100,-3,1,50,40,10,2,10,50,600,1,std,True", "column 'energy' holds -3; every run"),
    ("0.6,100,3,1,50,40,10,2,10,1e309,600,1,std,True", "column 'utilization edge cpu"),
    ("0.6,100,3,1,,40,10,2,10,50,600,1,std,True",
     r"column 'avg latency edge \(ms\)' holds nothing; every run needs"),
    ("61.1,100,3,1,50,40,10,2,10,50,600,1,std,True",
     r"column 'accuracy' holds 61.1; every run needs a number in 0..1"),
])
def test_bad_values_name_their_line(tmp_path, row, message):
    assert_file_refused(read_pool, tmp_path / "pool.csv", HEADER + "\n" + row + "\n", message)


@pytest.mark.parametrize(("content", "message"), [
    (b"Index,Network,Latency\n0,vgg16,90.6\n",
     r"not a DynaSplit simulation-pool CSV: missing columns latency, .*layer, cpu-freq"),
    (bytes(range(256)) * 8, "simulation-pool CSV"),
    (b"", "is empty"),
])
def test_files_that_are_not_pools(tmp_path, content, message):
    assert_file_refused(read_pool, tmp_path / "pool.csv", content, message)


def test_missing_files_and_models_are_named(tmp_path):
    with pytest.raises(ToolkitError, match="does not exist"):
        read_pool(tmp_path / "missing.csv")
    with pytest.raises(ToolkitError, match="missing columns index, qos, strategy"):
        read_experiment(_pool_only(tmp_path))
    with pytest.raises(ToolkitError, match="model name"):
        read_pool(_pool_only(tmp_path), model=" ")


def _pool_only(tmp_path):
    path = tmp_path / "pool_ok.csv"
    path.write_text(HEADER + "\n0.6,100,3,1,50,40,10,2,10,50,600,1,std,True\n")
    return path


def test_shipped_files_match_their_recorded_checksums(splinter_dir):
    """The data under ``datasets/splinter/`` is DynaSplit's, unchanged (see its README)."""
    import hashlib

    sums = dict(reversed(line.split()) for line in
                (splinter_dir / "SHA256SUMS").read_text().splitlines() if line.strip())
    shipped = sorted(p.name for p in splinter_dir.glob("*.csv"))
    assert shipped == sorted(sums), "every shipped CSV has a recorded checksum"
    for name, digest in sums.items():
        assert hashlib.sha256((splinter_dir / name).read_bytes()).hexdigest() == digest, name
    assert "Attribution-ShareAlike 4.0 International" in (splinter_dir / "LICENSE").read_text()


def test_their_10000_sample_trace_is_our_generator_with_their_seed(splinter_dir):
    """``trace generate`` reproduces DynaSplit's workload: same draws, same rescaling."""
    from toolkit.trace import generate_trace, read_trace

    theirs = read_trace(splinter_dir / "network_latency_10000_samples.csv", model="vgg16")
    ours = generate_trace("vgg16", 90.6, 5026.8, 10_000, seed=123456789)
    assert len(theirs) == 10_000
    np.testing.assert_allclose(ours["Latency"], theirs["Latency"], rtol=1e-12)
    assert ours["Index"].tolist() == theirs["Index"].tolist()


def test_an_experiment_table_of_something_that_is_no_table_is_named():
    for value in (None, "experiment_progress_vgg16.csv"):
        with pytest.raises(ToolkitError, match=r"^experiment_table needs a table from "
                                               rf"read_experiment, got {type(value).__name__}$"):
            experiment_table(value)
