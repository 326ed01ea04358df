"""DynaSplit's ViT data: pools without accuracy, the ViT layer mapping, splinter-table."""

from __future__ import annotations

import json

import pytest

from toolkit.cli import main
from toolkit.cube import configurations, cube_info, pareto_configs, select
from toolkit.errors import ToolkitError
from toolkit.splinter import (
    SPLIT_MAPS,
    experiment_model,
    experiment_summary,
    read_pool,
)

# the column list of DynaSplit's ViT simulation pool (no accuracy column)
VIT_HEADER = ("latency,energy,avg energy edge (J),avg latency edge (ms),avg latency cloud (ms),"
              "avg latency transfer (ms),avg energy cloud (J),avg energy cloud gpu (J),"
              "utilization cloud cpu (%),utilization cloud gpu (%),utilization edge cpu (%),"
              "tensor size (KB),cpu-freq,layer,edge-accelerator,server-accelerator")


def _row(latency, energy, freq, layer, accel, server):
    return f"{latency},{energy},1,10,20,5,{energy - 1},0.5,10,5,50,100,{freq},{layer},{accel}," \
           f"{server}"


@pytest.fixture
def vit_pool(tmp_path):
    path = tmp_path / "simulation_pool_vit.csv"
    path.write_text("\n".join([
        VIT_HEADER,
        _row(120, 60, 1800, 0, "off", "True"),
        _row(300, 20, 1800, 5, "off", "True"),      # encoder block 0, int8 head on the CPU
        _row(250, 25, 1800, 5, "max", "True"),
        _row(900, 8, 1800, 16, "std", "False"),     # encoder block 11
        _row(2000, 6, 600, 19, "off", "False"),     # everything on the edge
    ]) + "\n")
    return path


def test_pool_without_accuracy_has_no_accuracy_variable(vit_pool):
    cube = read_pool(vit_pool, model="vit-b16")
    assert cube.attrs["accuracy_mode"] == "absent"
    assert "accuracy" not in cube.data_vars
    info = cube_info(cube)
    assert info["pareto_objectives"] == {"latency_ms": "min", "energy_j": "min"}
    # (1800, 5, max) is faster and (1800, 16, std) spends less than (1800, 5, off)
    front = {(c["split"], c["edge_accel"]) for c in pareto_configs(cube)}
    assert front == {(0, "none"), (6, "tpu-max"), (6, "int8"), (28, "tpu-std"), (31, "int8")}


def test_constant_accuracy_is_stored_but_not_an_objective(vit_pool):
    cube = read_pool(vit_pool, model="vit-b16", accuracy=0.8)
    assert cube.attrs["accuracy_mode"] == "constant"
    assert float(cube["accuracy"].min()) == float(cube["accuracy"].max()) == 0.8
    assert "constant" in cube["accuracy"].attrs["comment"]
    assert list(cube_info(cube)["pareto_objectives"]) == ["latency_ms", "energy_j"]
    for accuracy in (80, "0.8", True):  # a string was float()'s ValueError, True taken as 1
        with pytest.raises(ToolkitError, match=f"accuracy {accuracy!r} is not a fraction"):
            read_pool(vit_pool, model="vit-b16", accuracy=accuracy)


def test_vit_layer_index_maps_to_toolkit_splits(vit_pool):
    cube = read_pool(vit_pool, model="vit-b16")
    table = SPLIT_MAPS["vit-b16"]
    assert len(table) == 20 and table[:5] == (0, 1, 2, 3, 4)
    assert table[5:17] == tuple(range(6, 29, 2)) and table[17:] == (29, 30, 31)
    assert sorted({c["split"] for c in configurations(cube)}) == [0, 6, 28, 31]
    run = select(cube, {"split": 28, "cpu_freq": 1800, "edge_accel": "tpu-std",
                        "cloud_accel": "none"}).sel(model="vit-b16")
    assert float(run["latency_ms"].values[0]) == 900
    # the same file read as another model keeps DynaSplit's index
    assert sorted({c["split"] for c in configurations(read_pool(vit_pool, model="vgg16"))}) == \
        [0, 5, 16, 19]


@pytest.mark.parametrize(("name", "model"), [("vit", "vit-b16"), ("ViT", "vit-b16"),
                                             ("vit_b16", "vit-b16"), ("vit:igelu", "vit-b16:igelu"),
                                             ("vit-b16:tanh", "vit-b16:tanh")])
def test_dynasplit_names_and_gelu_variants_get_the_vit_mapping(vit_pool, name, model):
    cube = read_pool(vit_pool, model=name)
    assert [str(m) for m in cube["model"].values] == [model]
    assert sorted({c["split"] for c in configurations(cube)}) == [0, 6, 28, 31]


@pytest.mark.parametrize(("name", "message"), [
    ("vgg-16", r"unknown model 'vgg-16'; valid: .*vgg16.*vit-b16 \(DynaSplit's vit, "),
    ("m", "unknown model 'm'"),
    ("vit-b16:fast", r"unknown GELU variant 'fast' in 'vit-b16:fast'; valid: tanh, igelu"),
    ("", "a model name is needed; valid: .*vgg16"),
])
def test_a_model_the_toolkit_does_not_know_is_refused(vit_pool, tmp_path, capsys, name, message):
    with pytest.raises(ToolkitError, match=message):
        read_pool(vit_pool, model=name)
    out = tmp_path / "c.nc"
    assert main(["cube", "import-splinter", str(vit_pool), "-o", str(out), "--model", name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not out.exists()


def test_vit_layer_beyond_19_is_refused(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text(VIT_HEADER + "\n" + _row(100, 5, 600, 20, "off", "False") + "\n")
    with pytest.raises(ToolkitError, match=r"line 2: column 'layer' holds 20; vit-b16 has "
                                           r"layers 0..19"):
        read_pool(path, model="vit-b16")


def test_accuracy_flag_on_a_pool_with_accuracy_is_refused(splinter_dir, tmp_path, capsys):
    pool = splinter_dir / "simulation_pool_vgg16.csv"
    status = main(["cube", "import-splinter", str(pool), "-o", str(tmp_path / "c.nc"),
                   "--model", "vgg16", "--accuracy", "0.7"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--accuracy is for pools without one" in err[0]


def test_import_cli_says_which_accuracy(vit_pool, tmp_path, capsys):
    out = tmp_path / "vit.nc"
    assert main(["cube", "import-splinter", str(vit_pool), "-o", str(out), "--model",
                 "vit-b16"]) == 0
    assert "accuracy absent" in capsys.readouterr().out
    assert main(["cube", "import-splinter", str(vit_pool), "-o", str(out), "--model",
                 "vit-b16", "--accuracy", "0.79"]) == 0
    assert "accuracy constant" in capsys.readouterr().out


def test_splinter_table_reproduces_their_vgg16_table(splinter_dir, capsys):
    path = splinter_dir / "experiment_progress_vgg16.csv"
    assert main(["cube", "splinter-table", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "vgg16"
    strategies = doc["strategies"]
    assert set(strategies) == {"cloud", "edge", "energy", "latency", "splinter:latency",
                               "splinter:latency_exhaustive"}
    cloud, theirs = strategies["cloud"], strategies["splinter:latency"]
    for row in strategies.values():
        assert {"requests", "energy_j_mean", "qos_met", "accuracy_mean",
                "energy_saving_vs_cloud"} <= set(row)
        assert row["requests"] == 50 and 0.5 < row["accuracy_mean"] < 0.7
    assert round(cloud["energy_j_mean"], 2) == 69.06 and cloud["qos_met"] == 0.98
    assert round(theirs["energy_j_mean"], 2) == 19.22 and theirs["qos_met"] == 0.96
    assert round(theirs["energy_saving_vs_cloud"], 2) == 0.72
    assert main(["cube", "splinter-table", str(path)]) == 0
    text = capsys.readouterr().out
    line = next(s for s in text.splitlines() if s.startswith("splinter:latency "))
    assert "19.22" in line and "96%" in line and "72.2% less" in line


def test_splinter_table_model_from_the_file_name(splinter_dir, tmp_path, capsys):
    assert experiment_model("x/experiment_progress_vgg16.csv") == "vgg16"
    assert experiment_model("experiment_progress_vit.csv") == "vit-b16"
    odd = tmp_path / "results.csv"
    odd.write_bytes((splinter_dir / "experiment_progress_vgg16.csv").read_bytes())
    assert main(["cube", "splinter-table", str(odd)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pass --model NAME" in err[0]
    assert experiment_summary(odd, "vgg16")["strategies"]["cloud"]["requests"] == 50
    assert experiment_summary(odd, "VGG16")["model"] == "vgg16"
