"""The cube API on a small hand-made cube whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from toolkit.config import Config
from toolkit.cube import (
    as_cube,
    config_means,
    configurations,
    cube_from_runs,
    cube_info,
    format_cube_info,
    measured_runs,
    merge_cubes,
    pareto_configs,
    select,
    summary,
    to_dataframe,
)
from toolkit.errors import ToolkitError

A = {"model": "m", "split": 0, "cpu_freq": 600, "edge_accel": "none", "cloud_accel": "gpu"}
B = {"model": "m", "split": 1, "cpu_freq": 600, "edge_accel": "tpu-max", "cloud_accel": "gpu"}
C = {"model": "m", "split": 2, "cpu_freq": 1200, "edge_accel": "tpu-max", "cloud_accel": "none"}
D = {"model": "m", "split": 2, "cpu_freq": 600, "edge_accel": "none", "cloud_accel": "none"}
E = {"model": "m", "split": 1, "cpu_freq": 1200, "edge_accel": "none", "cloud_accel": "none"}


def run(config, latency, energy, accuracy=None):
    return {**config, "latency_ms": latency, "energy_j": energy, "accuracy": accuracy}


def make_cube(accuracy=True, source="meter:test"):
    acc = (lambda a: a) if accuracy else (lambda a: None)
    runs = [
        run(A, 10.0, 5.0, acc(0.9)), run(A, 12.0, 5.0, acc(0.9)), run(A, 14.0, 5.0, acc(0.9)),
        run(B, 20.0, 3.0, acc(0.9)),
        run(C, 30.0, 1.0, acc(0.8)), run(C, 40.0, 1.0, acc(0.8)),
        run(D, 50.0, 4.0, acc(0.8)),
        {**E, "energy_j": 2.0},  # a run without latency: E is not "measured"
    ]
    return cube_from_runs(runs, {"testbed": "unit", "energy_source": source, "seed": 1})


def test_configurations_are_the_measured_ones_in_plain_types():
    configs = configurations(make_cube())
    assert configs == [A, B, D, C]  # coordinate order: split, then cpu_freq
    for c in configs:
        assert type(c["split"]) is int and type(c["cpu_freq"]) is int
        assert type(c["model"]) is str and type(c["edge_accel"]) is str
        Config.from_mapping(c)  # canonical keys
    json.dumps(configs)


def test_configurations_include_extra_dimensions():
    runs = [{**A, "codec": "fp16", "latency_ms": 1.0}, {**A, "codec": "int8", "latency_ms": 2.0}]
    cube = cube_from_runs(runs, {})
    assert configurations(cube) == [{**A, "codec": "fp16"}, {**A, "codec": "int8"}]


def test_summary_statistics_over_repeats():
    s = summary(make_cube())
    assert list(s["stat"].values) == ["mean", "median", "p90", "p99", "count"]
    a = s["latency_ms"].sel(**A)
    assert a.sel(stat="mean") == pytest.approx(12.0)
    assert a.sel(stat="median") == pytest.approx(12.0)
    assert a.sel(stat="p90") == pytest.approx(np.percentile([10, 12, 14], 90))
    assert a.sel(stat="p99") == pytest.approx(np.percentile([10, 12, 14], 99))
    assert a.sel(stat="count") == 3
    assert s["latency_ms"].attrs["units"] == "ms" and s["energy_j"].attrs["units"] == "J"
    assert "repeat" not in s.dims
    assert s.attrs["energy_source"] == "meter:test"
    # an unmeasured cell: NaN statistics, count 0; E has energy but no latency
    assert np.isnan(s["latency_ms"].sel(**E, stat="mean"))
    assert s["latency_ms"].sel(**E, stat="count") == 0
    assert s["energy_j"].sel(**E, stat="mean") == pytest.approx(2.0)


def test_summary_other_statistics_and_errors():
    s = summary(make_cube(), stats=["min", "max", "std", "p50"])
    c = s["latency_ms"].sel(**C)
    assert c.sel(stat="min") == 30 and c.sel(stat="max") == 40
    assert c.sel(stat="std") == pytest.approx(5.0)
    assert c.sel(stat="p50") == pytest.approx(35.0)
    with pytest.raises(ToolkitError, match=r"unknown statistic 'p101'.*pNN"):
        summary(make_cube(), stats=["p101"])
    with pytest.raises(ToolkitError, match="unknown statistic 'avg'"):
        summary(make_cube(), stats=["avg"])


def test_select_by_full_partial_and_config_object():
    cube = make_cube()
    one = select(cube, A)
    assert set(one.dims) == {"repeat"}
    assert np.nanmean(one["latency_ms"].values) == pytest.approx(12.0)
    assert select(cube, Config.from_mapping(C))["latency_ms"].count() == 2
    part = select(cube, {"split": 2, "edge_accel": "tpu-max"})
    assert "split" not in part.dims and "cpu_freq" in part.dims
    assert select(cube, {"split": "2"}).identical(select(cube, {"split": 2}))
    assert select(cube, {"split": [1, 2]}).sizes["split"] == 2


def test_select_names_the_valid_values():
    cube = make_cube()
    with pytest.raises(ToolkitError, match="split=7 is not in this cube; valid split values: 0, 1"):
        select(cube, {"split": 7})
    with pytest.raises(ToolkitError, match="valid split values: 0, 1"):
        select(cube, {"split": 10**400})   # too large for a float: was an OverflowError
    with pytest.raises(ToolkitError, match="valid edge_accel values: none, tpu-max"):
        select(cube, {"edge_accel": "tpu"})
    with pytest.raises(ToolkitError, match=r"'gpu' is not a dimension.*cloud_accel"):
        select(cube, {"gpu": True})


def test_pareto_configs_on_the_mean():
    cube = make_cube()
    # D (50 ms, 4 J, 0.8) is dominated by C (35 ms mean, 1 J, 0.8); best latency first
    assert pareto_configs(cube) == [A, B, C]
    assert pareto_configs(cube, {"energy_j": "min"}) == [C]
    # maximising both: D (50 ms, 4 J) and A (12 ms, 5 J); best first in latency
    assert pareto_configs(cube, {"latency_ms": "max", "energy_j": "max"}) == [D, A]


def test_pareto_drops_objectives_without_data():
    cube = make_cube(accuracy=False)
    assert pareto_configs(cube) == pareto_configs(cube, {"latency_ms": "min", "energy_j": "min"})
    assert cube_info(cube)["pareto_objectives"] == {"latency_ms": "min", "energy_j": "min"}
    with pytest.raises(ToolkitError, match="none of the objectives accuracy has data"):
        pareto_configs(cube, {"accuracy": "max"})
    with pytest.raises(ToolkitError, match="unknown objective 'latncy_ms'"):
        pareto_configs(cube, {"latncy_ms": "min"})
    with pytest.raises(ToolkitError, match="valid: min, max"):
        pareto_configs(cube, {"latency_ms": "low"})
    for empty in ({}, ["latency_ms"]):
        with pytest.raises(ToolkitError, match=r"objectives must map a variable to 'min' or "
                                               r"'max', e\.g\. .*; got "):
            pareto_configs(cube, empty)


def test_to_dataframe_is_tidy_one_row_per_run():
    df = to_dataframe(make_cube())
    assert list(df.columns[:6]) == ["model", "split", "cpu_freq", "edge_accel", "cloud_accel",
                                    "repeat"]
    assert len(df) == 8
    assert df["split"].dtype == np.int64 and pd.api.types.is_string_dtype(df["model"])
    a = df[(df["split"] == 0) & (df["edge_accel"] == "none")]
    assert a["latency_ms"].tolist() == [10.0, 12.0, 14.0] and a["repeat"].tolist() == [0, 1, 2]
    e = df[(df["split"] == 1) & (df["cpu_freq"] == 1200)]
    assert len(e) == 1 and np.isnan(e["latency_ms"].iloc[0]) and e["energy_j"].iloc[0] == 2.0
    assert df.attrs["energy_source"] == "meter:test"
    assert df.attrs["units"]["latency_ms"] == "ms"


def test_measured_runs_and_means_name_what_the_cube_lacks():
    cube = make_cube()
    assert len(measured_runs(cube)) == 7  # E has energy but no latency
    with pytest.raises(ToolkitError, match="the cube has no energy_j; a replay needs "
                                           "latency_ms, energy_j per run"):
        measured_runs(cube.drop_vars("energy_j"), purpose="a replay")
    assert list(config_means(cube, ["energy_j"]).columns)[-1] == "energy_j"
    with pytest.raises(ToolkitError, match=r"the cube has no variable\(s\) power_w; valid: "
                                           r"latency_ms, edge_ms"):
        config_means(cube, ["energy_j", "power_w"])


def test_a_run_without_a_configuration_key_is_named():
    with pytest.raises(ToolkitError, match=r"run 1 lacks the configuration key\(s\) cpu_freq, "
                                           r"edge_accel, cloud_accel; every run of this cube "
                                           r"needs model, split"):
        cube_from_runs([run(A, 1.0, 1.0), {"model": "m", "split": 1, "latency_ms": 2.0}], {})


def test_merge_concatenates_repeats_and_records_sources():
    first = make_cube()
    second = cube_from_runs(
        [run(A, 16.0, 6.0, 0.9), run(A, 18.0, 6.0, 0.9), run({**A, "model": "m2"}, 1.0, 1.0)],
        {"testbed": "unit", "energy_source": "model:pi4", "seed": 2},
    )
    merged = merge_cubes([first, second])
    assert merged["model"].values.tolist() == ["m", "m2"]
    assert select(merged, A)["latency_ms"].values[:5].tolist() == [10, 12, 14, 16, 18]
    assert merged.sizes["repeat"] == 5
    assert select(merged, B)["latency_ms"].count() == 1
    assert len(to_dataframe(merged)) == len(to_dataframe(first)) + 3
    assert merged.attrs["testbed"] == "unit"
    assert merged.attrs["energy_source"] == "mixed"
    assert json.loads(merged.attrs["energy_sources"]) == ["meter:test", "model:pi4"]
    assert json.loads(merged.attrs["seed"]) == [1, 2]
    assert len(json.loads(merged.attrs["merged_from"])) == 2
    assert merged["latency_ms"].attrs["units"] == "ms"


def test_merge_drops_padding_and_keeps_one_source():
    cube = make_cube()
    merged = merge_cubes([cube, cube])
    assert merged.attrs["energy_source"] == "meter:test"
    assert select(merged, B)["latency_ms"].values[:2].tolist() == [20.0, 20.0]
    assert merged.sizes["repeat"] == 6  # A: 3 + 3; B's padding does not count
    with pytest.raises(ToolkitError, match="different dimensions"):
        merge_cubes([cube, cube_from_runs([{**A, "codec": "fp16", "latency_ms": 1.0}], {})])
    with pytest.raises(ToolkitError, match="at least one cube"):
        merge_cubes([])


def test_cube_info_counts_coverage_and_front():
    info = cube_info(make_cube())
    # 3 splits x 2 freqs x 2 edge x 2 cloud = 24, minus split 0 with tpu-max (4)
    # and the last split (2) with gpu (4)
    assert info["possible"] == 16
    assert info["measured"] == 4 and info["runs"] == 8
    assert info["coverage"] == pytest.approx(4 / 16)
    assert info["pareto_front_size"] == 3
    assert info["energy_source"] == "meter:test"
    assert info["dims"] == {"model": 1, "split": 3, "cpu_freq": 2, "edge_accel": 2,
                            "cloud_accel": 2, "repeat": 3}
    json.dumps(info)
    text = format_cube_info(info)
    assert "4 of 16 valid configurations measured (25.0%)" in text
    assert "energy source: meter:test" in text
    assert "pareto front:  3 configurations" in text


def test_empty_cube_is_described_not_crashed():
    cube = cube_from_runs([], {"energy_source": "rapl"})
    info = cube_info(cube)
    assert info["measured"] == 0 and info["possible"] == 0 and info["coverage"] is None
    assert info["pareto_front_size"] == 0
    assert configurations(cube) == [] and to_dataframe(cube).empty
    assert "no objective has data" in format_cube_info(info)


@pytest.mark.parametrize(("mapping", "message"), [
    (None, "a configuration is a mapping of model, split, cpu_freq, edge_accel, cloud_accel, "
           "got None"),
    ([1, 2], r"a configuration is a mapping of .*, got \[1, 2\]"),
    ({"model": "m"}, "configuration is missing split, cpu_freq, edge_accel, cloud_accel"),
])
def test_a_configuration_that_is_not_a_mapping_of_the_keys_is_named(mapping, message):
    with pytest.raises(ToolkitError, match=message):
        Config.from_mapping(mapping)


def test_the_accessor_is_the_module_functions(tmp_path):
    cube = make_cube()
    acc = cube.dynasplit
    assert acc.configurations() == configurations(cube)
    assert acc.means().equals(config_means(cube))
    assert acc.front() == pareto_configs(cube)
    assert acc.info() == cube_info(cube)
    assert acc.runs().equals(measured_runs(cube))
    assert acc.summary().equals(summary(cube))
    assert acc.select(A).equals(select(cube, A))
    assert acc.model().equals(cube.sel(model="m"))
    path = acc.save(tmp_path / "c.nc")
    assert configurations(as_cube(path)) == configurations(cube)


@pytest.mark.parametrize(("value", "message"), [
    (None, r"a policy needs a cube \(an xarray Dataset, e.g. from open_cube, or a cube "
           r"file's path\), got NoneType"),
    (3, "got int"),
    (pd.DataFrame(), "got DataFrame"),
])
def test_as_cube_names_what_is_no_cube(value, message):
    with pytest.raises(ToolkitError, match=message):
        as_cube(value, ("latency_ms",), "a policy")


def test_merge_cubes_takes_files_and_names_what_is_no_cube(tmp_path):
    from toolkit.cube import save_cube

    cube = make_cube()
    path = save_cube(cube, tmp_path / "c.nc")
    merged = merge_cubes([path, cube])
    assert int(merged.sizes["repeat"]) == 2 * int(cube.sizes["repeat"])
    with pytest.raises(ToolkitError, match=r"merge_cubes \(item 1\) needs a cube .*got int"):
        merge_cubes([cube, 3])


def test_as_cube_names_missing_dimensions_and_variables():
    import xarray as xr

    with pytest.raises(ToolkitError, match=r"a replay needs a cube; this dataset lacks the "
                                           r"cube dimensions model, split, cpu_freq"):
        as_cube(xr.Dataset(), purpose="a replay")
    with pytest.raises(ToolkitError, match=r"the cube has no energy_j; a replay needs "
                                           r"latency_ms, energy_j per run"):
        as_cube(make_cube().drop_vars("energy_j"), ("latency_ms", "energy_j"), "a replay")


CUBE_FUNCTIONS = {
    "configurations": lambda c: configurations(c),
    "select": lambda c: select(c, {"split": 1}),
    "to_dataframe": lambda c: to_dataframe(c),
    "measured_runs": lambda c: measured_runs(c),
    "config_means": lambda c: config_means(c),
    "summary": lambda c: summary(c),
    "pareto_configs": lambda c: pareto_configs(c),
    "cube_info": lambda c: cube_info(c),
}


@pytest.mark.parametrize("name", sorted(CUBE_FUNCTIONS))
def test_every_cube_function_takes_a_file_and_names_what_is_no_cube(name, tmp_path):
    from toolkit.cube import save_cube

    call = CUBE_FUNCTIONS[name]
    cube = make_cube()
    path = save_cube(cube, tmp_path / "c.nc")
    by_path, by_cube = call(path), call(cube)
    if hasattr(by_cube, "equals"):
        assert by_path.equals(by_cube)
    else:
        assert by_path == by_cube
    for value in (None, 3, pd.DataFrame()):
        with pytest.raises(ToolkitError, match=rf"^{name} needs a cube \(an xarray Dataset, "
                                               rf"e.g. from open_cube, or a cube file's path\), "
                                               rf"got {type(value).__name__}$"):
            call(value)


def test_functions_that_work_on_a_selection_still_do():
    part = make_cube().sel(model="m", split=1)
    assert to_dataframe(part)["cpu_freq"].tolist() == [600, 1200]  # B, and E's energy
    assert config_means(part)["energy_j"].tolist() == [3.0, 2.0]


def test_select_model_names_a_dataset_without_models():
    from toolkit.cube import select_model

    assert select_model(make_cube())[0] == "m"
    with pytest.raises(ToolkitError, match=r"select_model needs a cube with a 'model' "
                                           r"dimension; this dataset has split, cpu_freq"):
        select_model(make_cube().sel(model="m"))


def test_merge_and_build_name_what_is_no_list_of_cubes_or_runs(tmp_path):
    cube = make_cube()
    for value in (cube, None, str(tmp_path / "c.nc")):
        with pytest.raises(ToolkitError, match=r"^merge_cubes needs a list of cubes or cube "
                                               rf"files' paths, got {type(value).__name__}$"):
            merge_cubes(value)
    for value in (None, {"split": 1}, "runs.csv"):
        with pytest.raises(ToolkitError, match=r"^cube_from_runs needs the runs as a list of "
                                               r"mappings \(configuration keys and variables\), "
                                               rf"got {type(value).__name__}$"):
            cube_from_runs(value, {})
    with pytest.raises(ToolkitError, match=r"^run 1 should be a mapping of configuration keys "
                                           r"and variables, got \('m', 1\)$"):
        cube_from_runs([run(A, 1.0, 1.0), ("m", 1)], {})
    assert cube_from_runs((run(c, 1.0, 1.0) for c in (A, B)), {}).sizes["split"] == 2
    with pytest.raises(ToolkitError, match=r"^cube_from_runs needs the cube's attributes as a "
                                           r"mapping .*, got list$"):
        cube_from_runs([run(A, 1.0, 1.0)], [])


@pytest.mark.parametrize(("change", "message"), [
    ({"latency_ms": "fast"}, "latency_ms should be a number, got 'fast'"),
    ({"energy_j": [1, 2]}, r"energy_j should be a number, got \[1, 2\]"),
    ({"split": "1"}, "split should be a whole number, got '1'"),
    ({"split": 1.5}, "split should be a whole number, got 1.5"),
    ({"split": float("inf")}, "split should be a whole number, got inf"),
    ({"split": 10**400}, r"split should be a whole number, got 1000000000000000000\d+\.\.\."),
    ({"cpu_freq": True}, "cpu_freq should be a whole number, got True"),
    ({"edge_accel": 3}, "edge_accel should be a string, got 3"),
    ({"model": None}, "model should be a string, got None"),
])
def test_a_run_value_of_the_wrong_kind_is_named_with_its_run(change, message):
    # before: a ValueError or TypeError from NumPy, or a key stored as the string "None"
    with pytest.raises(ToolkitError, match=rf"^run 1: {message}$"):
        cube_from_runs([run(A, 1.0, 1.0), {**run(B, 1.0, 1.0), **change}], {})
    whole = cube_from_runs([run(A, 1.0, 1.0), {**run(B, 1.0, 1.0), "split": np.int64(B["split"]),
                                               "cpu_freq": float(B["cpu_freq"])}], {})
    assert whole["split"].dtype == np.int64 and whole.sizes["split"] == 2
