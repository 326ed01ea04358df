"""Cube files: round trip, refusal of foreign or damaged files, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from toolkit.cube import (
    SCHEMA,
    configurations,
    cube_from_runs,
    open_cube,
    save_cube,
    select,
    to_dataframe,
)
from toolkit.errors import ToolkitError

CONFIGS = [
    {"model": "m", "split": s, "cpu_freq": f, "edge_accel": "none", "cloud_accel": "none"}
    for s in (0, 1, 2) for f in (600, 1200)
]


def small_cube():
    rng = np.random.default_rng(0)
    runs = [{**c, "latency_ms": float(rng.random()), "energy_j": float(rng.random())}
            for c in CONFIGS for _ in range(2)]
    runs.append({**CONFIGS[0], "latency_ms": 1.0})  # ragged: a third repeat for one config
    return cube_from_runs(runs, {"testbed": "unit", "energy_source": "rapl",
                                 "profiles": {"edge": "pi4"}, "seed": 3})


def test_round_trip_keeps_values_attrs_and_units(tmp_path):
    cube = small_cube()
    path = save_cube(cube, tmp_path / "sub" / "c.nc")
    back = open_cube(path)
    assert configurations(back) == configurations(cube)
    assert to_dataframe(back).equals(to_dataframe(cube))
    assert back.attrs["schema"] == SCHEMA and back.attrs["energy_source"] == "rapl"
    assert back.attrs["profiles"] == '{"edge": "pi4"}'
    assert back["energy_j"].attrs["units"] == "J"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    # a part of an opened cube saves too (inherited encodings do not get in the way)
    part = select(back, {"split": [1, 2]})
    assert open_cube(save_cube(part, tmp_path / "part.nc"))["split"].values.tolist() == [1, 2]


def test_empty_cube_round_trips(tmp_path):
    back = open_cube(save_cube(cube_from_runs([], {}), tmp_path / "empty.nc"))
    assert back.sizes["repeat"] == 0 and configurations(back) == []


def test_missing_file(tmp_path):
    with pytest.raises(ToolkitError, match="does not exist"):
        open_cube(tmp_path / "nope.nc")


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "noise.nc"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(ToolkitError, match="not a NetCDF-4 file"):
        open_cube(path)


def test_truncated_netcdf_is_refused(tmp_path):
    whole = save_cube(small_cube(), tmp_path / "whole.nc").read_bytes()
    path = tmp_path / "cut.nc"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ToolkitError, match="damaged or truncated"):
        open_cube(path)


def test_foreign_netcdf4_is_refused(tmp_path):
    path = tmp_path / "foreign.nc"
    xr.Dataset({"t": ("x", np.arange(3.0))}, attrs={"title": "weather"}).to_netcdf(
        path, engine="h5netcdf")
    with pytest.raises(ToolkitError, match=r"not a DynaSplit cube \(no 'schema' attribute\)"):
        open_cube(path)


def test_netcdf3_is_refused(tmp_path):
    path = tmp_path / "classic.nc"
    xr.Dataset({"t": ("x", np.arange(3.0))}).to_netcdf(path, engine="scipy")
    with pytest.raises(ToolkitError, match="classic NetCDF-3 file"):
        open_cube(path)


def test_other_schema_version_is_refused(tmp_path):
    cube = small_cube()
    cube.attrs["schema"] = "dynasplit.cube/2"
    path = save_cube(cube, tmp_path / "future.nc")
    with pytest.raises(ToolkitError, match=r"schema 'dynasplit.cube/2'; this toolkit reads"):
        open_cube(path)


def test_schema_without_the_dims_is_refused(tmp_path):
    path = tmp_path / "hollow.nc"
    xr.Dataset({"t": ("x", np.arange(3.0))}, attrs={"schema": SCHEMA}).to_netcdf(
        path, engine="h5netcdf")
    with pytest.raises(ToolkitError, match="lacks the cube dimensions model, split"):
        open_cube(path)


@pytest.mark.parametrize(("variable", "value", "shown"), [
    ("latency_ms", -2.5, "-2.5"), ("energy_j", np.inf, "inf"), ("accuracy", -0.1, "-0.1"),
    ("edge_energy_j", -np.inf, "-inf")])
def test_a_measured_value_that_is_negative_or_infinite_is_refused_naming_where(
        tmp_path, variable, value, shown):
    """A hand-made or converted cube with impossible values would give a meaningless front;
    it is refused when opened, with the configuration that holds the value."""
    cube = small_cube()
    cube[variable].values[0, 1, 1, 0, 0, 1] = value
    path = tmp_path / "odd.nc"
    cube.to_netcdf(path, engine="h5netcdf")  # written by another tool: save_cube refuses it
    with pytest.raises(ToolkitError, match=rf"odd.nc: {variable} holds {shown} at \{{'model': "
                                           r"'m', 'split': 1, 'cpu_freq': 1200.*values are finite"):
        open_cube(path)
    with pytest.raises(ToolkitError, match=rf"again.nc: {variable} holds {shown} at"):
        save_cube(cube, tmp_path / "again.nc")  # never written: it could not be read back
    assert not (tmp_path / "again.nc").exists()
    cube[variable].values[0, 1, 1, 0, 0, 1] = -1.0  # the energy split may read below 0
    if variable not in ("latency_ms", "energy_j", "accuracy"):
        assert open_cube(save_cube(cube, tmp_path / "odd.nc"))[variable].min() == -1.0


def test_a_configuration_coordinate_that_is_not_integer_is_refused(tmp_path):
    cube = small_cube()
    cube = cube.assign_coords(cpu_freq=[str(f) for f in cube.cpu_freq.values])
    path = tmp_path / "text.nc"
    cube.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ToolkitError, match=r"the cpu_freq coordinate holds \['600', '1200'\], "
                                           r"not integers"):
        open_cube(path)
    with pytest.raises(ToolkitError, match=r"the cpu_freq coordinate holds"):
        save_cube(cube, path)


def test_failed_save_leaves_the_existing_file_untouched(tmp_path):
    path = save_cube(small_cube(), tmp_path / "c.nc")
    before = path.read_bytes()
    broken = small_cube()
    broken.attrs["nested"] = {"not": "serialisable"}  # NetCDF attrs cannot hold a dict
    with pytest.raises((TypeError, ValueError)):
        save_cube(broken, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["c.nc"]  # no temporary file left behind
    open_cube(path)


def test_save_replaces_an_existing_cube(tmp_path):
    path = save_cube(small_cube(), tmp_path / "c.nc")
    save_cube(cube_from_runs([{**CONFIGS[1], "latency_ms": 5.0}], {}), path)
    assert configurations(open_cube(path)) == [CONFIGS[1]]
    assert sorted(os.listdir(tmp_path)) == ["c.nc"]
