"""Measurement cubes: the xarray Dataset every measurement ends up in.

Dimensions: ``model, split, cpu_freq, edge_accel, cloud_accel`` (the canonical
configuration keys), optional extra dimensions (``codec``, ``strategy``,
``devices``) where a study varies them, and ``repeat`` (one entry per run;
repeats are ragged, so unmeasured cells are NaN). Each data variable carries
``units`` and ``long_name``. Dataset attributes are strings or numbers only;
nested values are JSON strings. Cubes are stored as NetCDF-4 with ``h5netcdf``.

A *run* is one ``(configuration, repeat)`` cell where at least one variable is
not NaN; a configuration is *measured* when at least one of its runs has a
latency. The API (see ``docs/cube.md``):

- :func:`cube_from_runs`, :func:`save_cube`, :func:`open_cube`: build and store;
- :func:`configurations`, :func:`select`, :func:`to_dataframe`, :func:`config_dims`,
  :func:`single_codec`: look inside;
- :func:`summary`: statistics over ``repeat`` along a ``stat`` dimension;
- :func:`merge_cubes`: concatenate the runs of several cubes;
- :func:`pareto_configs`: the non-dominated configurations;
- :func:`cube_info`, :func:`format_cube_info`: what ``dynasplit cube info`` prints.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from toolkit import __version__
from toolkit.config import (
    CONFIG_KEYS,
    EXTRA_KEYS,
    KEYS,
    OBJECTIVES,
    PARTITION_VARIABLES,
    VARIABLES,
    Config,
    config_keys,
    is_whole,
)
from toolkit.config import config_problems as _config_problems
from toolkit.errors import ConfigError, ToolkitError, choices, short_repr
from toolkit.fileio import as_path, atomic_output, not_a_file, plain_value, utc_timestamp
from toolkit.pareto import SENSES, pareto_mask

__all__ = [
    "DEFAULT_OBJECTIVES",
    "SCHEMA",
    "STATS",
    "VARIABLES",
    "CubeAccessor",
    "as_cube",
    "as_dataset",
    "config_dims",
    "config_means",
    "configurations",
    "cube_from_runs",
    "cube_info",
    "format_cube_info",
    "has_objective_data",
    "measured_runs",
    "merge_cubes",
    "open_cube",
    "pareto_configs",
    "save_cube",
    "select",
    "select_model",
    "single_codec",
    "summary",
    "to_dataframe",
]

SCHEMA = "dynasplit.cube/1"

#: what the functions here take as a cube: a Dataset, or a cube file's path
CubeLike = xr.Dataset | str | os.PathLike

#: objectives of :func:`pareto_configs` by default: variable -> sense
DEFAULT_OBJECTIVES: dict[str, str] = OBJECTIVES

#: statistics :func:`summary` computes by default; ``pNN`` is any percentile
STATS: tuple[str, ...] = ("mean", "median", "p90", "p99", "count")

_COORD_DTYPES = {k: np.int64 if key.type is int else str for k, key in KEYS.items()}

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


# --------------------------------------------------------------------------- building


def cube_from_runs(runs: Iterable[Mapping[str, Any]], attrs: Mapping[str, Any],
                   variables: Mapping[str, tuple[str, str]] | None = None) -> xr.Dataset:
    """Build a cube from run records.

    Args:
        runs: one mapping per run with the configuration keys (and any extra keys
            used), and values for some of :data:`VARIABLES`. Runs of the same
            configuration become successive repeats, in the order given.
        attrs: provenance attributes (``testbed``, ``energy_source``,
            ``samples_per_run``, ``seed``...); ``schema``, ``toolkit_version`` and
            ``created_at`` are filled in when absent. Non-scalar values are stored
            as JSON strings.
        variables: study-specific variables stored besides :data:`VARIABLES`,
            name -> ``(units, long_name)`` (e.g. the partitioning study's
            ``max_device_energy_j``).

    Returns:
        The cube as an :class:`xarray.Dataset`.

    Raises:
        ConfigError: a run lacks a configuration key that the cube has.
        ToolkitError: a configuration key's value is not a whole number or a
            string as the key needs, or a variable's value is not a number
            (the run, the key and the value named).
    """
    if isinstance(runs, str | Mapping) or not isinstance(runs, Iterable):
        raise ToolkitError(f"cube_from_runs needs the runs as a list of mappings (configuration "
                           f"keys and variables), got {type(runs).__name__}")
    if not isinstance(attrs, Mapping):
        raise ToolkitError(f"cube_from_runs needs the cube's attributes as a mapping (e.g. "
                           f"{{'testbed': 'local', 'energy_source': 'model:...'}}), got "
                           f"{type(attrs).__name__}")
    runs = list(runs)
    bad = next((i for i, r in enumerate(runs) if not isinstance(r, Mapping)), None)
    if bad is not None:
        raise ToolkitError(f"run {bad} should be a mapping of configuration keys and variables, "
                           f"got {short_repr(runs[bad])}")
    keys = config_keys({*CONFIG_KEYS, *(k for r in runs for k in r)})
    for i, r in enumerate(runs):
        missing = [k for k in keys if k not in r]
        if missing:
            raise ConfigError(f"run {i} lacks the configuration key(s) {choices(missing)}; "
                              f"every run of this cube needs {choices(keys)}")
    coords = {k: _coordinate(k, runs) for k in keys}
    index = {k: {v: i for i, v in enumerate(coords[k].tolist())} for k in keys}
    repeats: dict[tuple, int] = {}
    cells = []
    for i, r in enumerate(runs):
        key = tuple(r[k] for k in keys)
        rep = repeats.get(key, 0)
        repeats[key] = rep + 1
        cells.append((tuple(index[k][r[k]] for k in keys), rep, i))
    n_rep = max(repeats.values(), default=0)
    shape = [len(coords[k]) for k in keys] + [n_rep]
    data = {}
    for var, (units, long_name) in {**VARIABLES, **(variables or {})}.items():
        arr = np.full(shape, np.nan)
        for idx, rep, i in cells:
            if (value := runs[i].get(var)) is not None:
                try:
                    arr[(*idx, rep)] = float(value)
                except (TypeError, ValueError):
                    raise ToolkitError(f"run {i}: {var} should be a number, got "
                                       f"{short_repr(value)}") from None
        data[var] = xr.Variable([*keys, "repeat"], arr, {"units": units, "long_name": long_name})
    coords["repeat"] = np.arange(n_rep)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(_clean_attrs(attrs))
    return ds


def _coordinate(key: str, runs: list[Mapping[str, Any]]) -> np.ndarray:
    """The sorted values of configuration key ``key`` over ``runs``, as the cube stores them."""
    whole = _COORD_DTYPES[key] is not str
    for i, r in enumerate(runs):
        value = r[key]
        ok = (is_whole(value) and -2**63 <= value < 2**63) if whole else isinstance(value, str)
        if not ok:
            kind = "a whole number" if whole else "a string"
            raise ToolkitError(f"run {i}: {key} should be {kind}, got {short_repr(value)}")
    return np.asarray(sorted({r[key] for r in runs}), dtype=_COORD_DTYPES[key])


def _clean_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "toolkit_version": __version__,
        "created_at": utc_timestamp(),
    }
    for key, value in attrs.items():
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, (str, int, float, np.integer, np.floating)):
            out[key] = value
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out


# --------------------------------------------------------------------------- storage


def save_cube(cube: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a cube to NetCDF atomically.

    The cube goes to a temporary file beside the target, is flushed to disk and
    renamed over the target, so a failed write (or a crash) never leaves a
    half-written file and never destroys an existing one. Float variables are
    stored zlib-compressed (mostly-NaN ragged repeats shrink ~50x); encodings
    inherited from an opened file are dropped.

    Raises:
        ToolkitError: the cube cannot be written to ``path``, or holds values
            :func:`open_cube` would refuse (infinite values, negative objectives,
            fractional integer coordinates), named with ``path``; nothing is written.
    """
    path = as_path(path, "a cube file")
    _check_values(cube, path)  # never write what open_cube refuses to read back
    out = cube.copy(deep=False)
    for var in out.variables.values():
        var.encoding = {}
    encoding = {str(v): {"zlib": True, "complevel": 4}
                for v, da in out.data_vars.items() if da.dtype.kind == "f"}
    with atomic_output(path) as tmp:
        out.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    return path


def open_cube(path: str | os.PathLike) -> xr.Dataset:
    """Open a cube written by :func:`save_cube`, refusing anything else.

    The whole cube is loaded into memory and the file is closed.

    Raises:
        ToolkitError: the file is missing, not NetCDF-4, damaged, not a DynaSplit
            cube, or of another schema version; the message says which.
    """
    path = as_path(path, "a cube file")
    if problem := not_a_file(path):
        raise ToolkitError(f"cube file {path} {problem}")
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic[:3] == b"CDF":
        raise ToolkitError(
            f"{path} is a classic NetCDF-3 file, not a DynaSplit cube (cubes are NetCDF-4)"
        )
    if magic != _HDF5_MAGIC:
        raise ToolkitError(f"{path} is not a NetCDF-4 file (no HDF5 signature)")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            cube = ds.load()
    except Exception as exc:  # h5py/xarray raise many types for a damaged file
        raise ToolkitError(
            f"{path} is damaged or truncated, cannot read it as NetCDF ({exc})"
        ) from None
    schema = cube.attrs.get("schema")
    if schema is None:
        raise ToolkitError(f"{path} is not a DynaSplit cube (no 'schema' attribute)")
    if schema != SCHEMA:
        raise ToolkitError(f"{path} has cube schema {schema!r}; this toolkit reads {SCHEMA!r}")
    missing = [d for d in (*CONFIG_KEYS, "repeat") if d not in cube.dims]
    if missing:
        raise ToolkitError(f"{path} lacks the cube dimensions {', '.join(missing)}")
    _check_values(cube, path)
    return cube


def _check_values(cube: xr.Dataset, path: Path) -> None:
    """Integer configuration coordinates, finite measured values, and objectives >= 0
    (a negative latency, energy or accuracy would make a meaningless front; other
    variables, e.g. an energy split read from a noisy meter, are left as measured).
    NaN marks "not measured"."""
    for key in config_dims(cube):
        coord = cube[key].values
        if key in KEYS and KEYS[key].type is int and coord.dtype.kind not in "iu":
            shown = f"{coord[:3].tolist()}{'...' if len(coord) > 3 else ''}"
            raise ToolkitError(f"{path}: the {key} coordinate holds {shown}, not integers")
    for name in (v for v in cube.data_vars if v in VARIABLES or v in PARTITION_VARIABLES):
        values = cube[name].values
        bad = ~np.isnan(values) & (np.isinf(values) | ((values < 0) & (name in OBJECTIVES)))
        if bad.any():
            where = np.unravel_index(int(np.flatnonzero(bad)[0]), values.shape)
            config = {d: plain_value(cube[d].values[i]) for d, i in
                      zip(cube[name].dims, where, strict=True) if d != "repeat"}
            rule = "finite and >= 0" if name in OBJECTIVES else "finite"
            raise ToolkitError(f"{path}: {name} holds {float(values[where])} at {config}; "
                               f"its values are {rule} (NaN: not measured)")


def as_dataset(cube: CubeLike, purpose: str = "this") -> xr.Dataset:
    """A cube or a part of one (a selection) as it is, or a cube file opened with
    :func:`open_cube`: what the functions here that also work on a selection take.

    Raises:
        ToolkitError: neither a Dataset nor a path, named with what needs it
            (``purpose``); :func:`open_cube`'s errors for a path.
    """
    if isinstance(cube, str | os.PathLike):
        cube = open_cube(cube)
    if not isinstance(cube, xr.Dataset):
        raise ToolkitError(f"{purpose} needs a cube (an xarray Dataset, e.g. from open_cube, "
                           f"or a cube file's path), got {type(cube).__name__}")
    return cube


def as_cube(cube: CubeLike, needs: Sequence[str] = (),
            purpose: str = "this") -> xr.Dataset:
    """The cube to work on: a Dataset as it is, or a cube file opened with :func:`open_cube`.

    Args:
        cube: a cube, or the path of a cube file.
        needs: data variables ``purpose`` cannot do without.
        purpose: what needs the cube, for messages (e.g. ``"a policy"``).

    Raises:
        ToolkitError: not a cube nor a path (named with what needs it), a dataset
            without the configuration dimensions, or a cube without a variable of
            ``needs``; :func:`open_cube`'s errors for a path.
    """
    cube = as_dataset(cube, purpose)
    lacking = [d for d in CONFIG_KEYS if d not in cube.dims]
    if lacking:
        raise ToolkitError(f"{purpose} needs a cube; this dataset lacks the cube dimensions "
                           f"{choices(lacking)}")
    missing = [v for v in needs if v not in cube.data_vars]
    if missing:
        raise ToolkitError(f"the cube has no {choices(missing)}; {purpose} needs "
                           f"{choices(needs)} per run")
    return cube


def select_model(cube: CubeLike, model: str | None = None) -> tuple[str, xr.Dataset]:
    """The model's name and its part of the cube, without the ``model`` dimension.

    The extra dimensions of :data:`~toolkit.config.EXTRA_KEYS` (``codec``,
    ``strategy``, ``devices``) are kept, whatever their size; any other
    dimension besides the canonical ones and ``repeat`` must have one value and
    is dropped.

    Raises:
        ConfigError: the model is not in the cube (or is needed and not given), or
            a dimension the toolkit does not know varies.
        ToolkitError: no cube (:func:`as_dataset`), or a dataset without the
            ``model`` dimension.
    """
    cube = as_dataset(cube, "select_model")
    if "model" not in cube.dims:
        raise ToolkitError("select_model needs a cube with a 'model' dimension; this dataset "
                           f"has {choices([str(d) for d in cube.dims])}")
    models = [str(m) for m in cube["model"].values]
    if model is None:
        if len(models) != 1:
            raise ConfigError(f"the cube holds several models; choose one of {choices(models)}")
        model = models[0]
    if model not in models:
        raise ConfigError(f"model {model!r} is not in the cube; valid: {choices(models)}")
    data = cube.sel(model=model)
    known = {*CONFIG_KEYS, *EXTRA_KEYS, "repeat"}
    for dim in [str(d) for d in data.dims if d not in known]:
        if data.sizes[dim] != 1:
            keys = (*(k for k in CONFIG_KEYS if k != "model"), *EXTRA_KEYS)
            raise ConfigError(
                f"the cube varies {dim!r} ({choices(data[dim].values)}), which is no "
                f"configuration key the toolkit knows ({choices(keys)}); select one value "
                f"first, e.g. cube.sel({dim}=...)"
            )
        data = data.isel({dim: 0}, drop=True)
    return model, data


# --------------------------------------------------------------------------- looking inside


def config_dims(cube: CubeLike) -> list[str]:
    """The configuration dimensions of a cube: every dimension but ``repeat``.

    Canonical keys first (in :data:`~toolkit.config.CONFIG_KEYS` order), then
    extra dimensions (``codec``, ``strategy``, ``devices``, others).
    """
    cube = as_dataset(cube, "config_dims")
    known = config_keys(cube.dims)
    return [*known, *(str(d) for d in cube.dims if d not in known and d != "repeat")]


def single_codec(cube: CubeLike) -> str | None:
    """The one codec of a cube without a ``codec`` dimension, where it records it.

    A campaign cube keeps its codecs in the ``codecs`` attribute; with several
    of them it has a ``codec`` dimension instead.
    """
    cube = as_dataset(cube, "single_codec")
    codecs = [c for c in str(cube.attrs.get("codecs", "")).split(",") if c]
    return codecs[0] if len(codecs) == 1 and "codec" not in cube.dims else None


def _run_variables(cube: xr.Dataset) -> list[str]:
    return [str(v) for v, da in cube.data_vars.items() if "repeat" in da.dims]


def _run_array(cube: xr.Dataset, dims: Sequence[str], variables: Sequence[str]) -> np.ndarray:
    """Values as a float array ``(variable, cell, repeat)``, cells in ``dims`` order."""
    n_rep = cube.sizes.get("repeat", 0)
    n_cells = math.prod(cube.sizes[d] for d in dims)
    out = np.full((len(variables), n_cells, n_rep), np.nan)
    for i, var in enumerate(variables):
        if var in cube.data_vars:
            da = cube[var].transpose(*dims, "repeat")
            out[i] = np.asarray(da.values, dtype=float).reshape(n_cells, n_rep)
    return out


def _measured_cells(cube: xr.Dataset, dims: Sequence[str]) -> np.ndarray:
    """Flat indices (``dims`` order) of the cells with at least one latency."""
    latency = _run_array(cube, dims, ["latency_ms"])[0]
    return np.flatnonzero(~np.isnan(latency).all(axis=1))


def _cell_configs(cube: xr.Dataset, dims: Sequence[str], cells: np.ndarray) -> list[dict]:
    shape = [cube.sizes[d] for d in dims]
    values = {d: cube[d].values.tolist() for d in dims}
    idx = np.unravel_index(cells, shape) if dims else ()
    rows = zip(*idx, strict=True) if dims else [()] * len(cells)
    return [{d: values[d][int(i)] for d, i in zip(dims, row, strict=True)} for row in rows]


def configurations(cube: CubeLike) -> list[dict[str, Any]]:
    """The measured configurations: those with at least one non-NaN latency.

    Returns:
        One dict per configuration, in coordinate order, with the canonical keys
        (and extra dimensions where the cube has them) as plain Python values,
        ready for :func:`select`, :class:`~toolkit.config.Config` or JSON.
    """
    cube = as_dataset(cube, "configurations")
    dims = config_dims(cube)
    return _cell_configs(cube, dims, _measured_cells(cube, dims))


def _coerce(cube: xr.Dataset, key: str, value: Any) -> Any:
    """A mapping value in the type of the cube's coordinate (``"3"``/``3.0`` -> 3)."""
    if cube[key].dtype.kind in "iu" and not isinstance(value, bool):
        try:
            as_int = int(value)
            if as_int == float(value):
                return as_int
        except (TypeError, ValueError, OverflowError):
            pass
    return plain_value(value)


def select(cube: CubeLike, config: Mapping[str, Any] | Config) -> xr.Dataset:
    """The part of a cube that matches a configuration mapping.

    Args:
        cube: the cube.
        config: a (partial) configuration, e.g. ``{"split": 3, "edge_accel":
            "tpu-max"}`` or a :class:`~toolkit.config.Config`. A scalar value drops
            its dimension (like :meth:`xarray.Dataset.sel`); a list keeps it.

    Returns:
        The selected cube; a full configuration leaves just ``repeat``.

    Raises:
        ToolkitError: a key is not a dimension of the cube, or a value is not in
            its coordinate; the message lists the valid ones.
    """
    cube = as_dataset(cube, "select")
    if isinstance(config, Config):
        config = config.as_dict()
    if not isinstance(config, Mapping):
        raise ToolkitError(f"select needs a configuration mapping, got {type(config).__name__}")
    dims = config_dims(cube)
    indexers: dict[str, Any] = {}
    for key, value in config.items():
        if key not in dims:
            raise ToolkitError(f"{key!r} is not a dimension of this cube; valid: {choices(dims)}")
        valid = cube[key].values.tolist()
        many = isinstance(value, (list, tuple, set, np.ndarray, pd.Index))
        wanted = [_coerce(cube, key, v) for v in (value if many else [value])]
        for v in wanted:
            if v not in valid:
                raise ToolkitError(
                    f"{key}={v!r} is not in this cube; valid {key} values: {choices(valid)}"
                )
        indexers[key] = wanted if many else wanted[0]
    return cube.sel(indexers)


def to_dataframe(cube: CubeLike) -> pd.DataFrame:
    """The runs of a cube as a tidy table, e.g. for seaborn.

    Returns:
        One row per run (a configuration and repeat with at least one non-NaN
        variable): configuration columns (canonical keys, then extra dimensions),
        ``repeat``, then one column per variable. ``df.attrs`` holds the cube's
        attributes (``energy_source``...) and ``df.attrs["units"]`` the units.
    """
    cube = as_dataset(cube, "to_dataframe")
    dims = config_dims(cube)
    variables = _run_variables(cube)
    values = _run_array(cube, dims, variables)
    cell, rep = np.nonzero(~np.isnan(values).all(axis=0))
    shape = [cube.sizes[d] for d in dims]
    columns: dict[str, Any] = {}
    for d, idx in zip(dims, np.unravel_index(cell, shape) if dims else (), strict=True):
        coord = cube[d].values
        columns[d] = coord[idx].astype(str) if coord.dtype.kind in "OUS" else coord[idx]
    columns["repeat"] = cube["repeat"].values[rep] if "repeat" in cube.coords else rep
    for i, var in enumerate(variables):
        columns[var] = values[i, cell, rep]
    df = pd.DataFrame(columns)
    df.attrs = {**cube.attrs,
                "units": {v: cube[v].attrs.get("units", "") for v in variables}}
    return df


def measured_runs(cube: CubeLike, needs: Sequence[str] = ("latency_ms", "energy_j"),
                  purpose: str = "measured_runs") -> pd.DataFrame:
    """The runs with a measured latency (:func:`to_dataframe`'s rows), where the cube
    has every variable in ``needs``.

    Raises:
        ToolkitError: a variable of ``needs`` is missing, named with what needs
            it (``purpose``).
    """
    df = to_dataframe(as_cube(cube, needs, purpose))
    return df[df["latency_ms"].notna()]


def config_means(cube: CubeLike, variables: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per measured configuration: the mean of each variable over its runs.

    Args:
        cube: a measurement cube.
        variables: the variables to average (default: every per-run variable).

    Returns:
        The configuration columns (:func:`config_dims`), then the means;
        ``df.attrs`` holds the cube's attributes, as in :func:`to_dataframe`.

    Raises:
        ConfigError: a variable the cube does not have (the valid ones named).
    """
    cube = as_dataset(cube, "config_means")
    df = to_dataframe(cube)
    keys = config_dims(cube)
    measured = _run_variables(cube)
    unknown = [v for v in variables or () if v not in measured]
    if unknown:
        raise ConfigError(f"the cube has no variable(s) {choices(unknown)}; "
                          f"valid: {choices(measured)}")
    wanted = measured if variables is None else list(variables)
    means = df.groupby(keys, as_index=False, sort=True)[wanted].mean()
    means.attrs = df.attrs
    return means


# --------------------------------------------------------------------------- statistics


def _stat_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """A NaN-aware reduction over the last axis for a statistic name."""
    simple = {"mean": np.nanmean, "median": np.nanmedian, "std": np.nanstd,
              "min": np.nanmin, "max": np.nanmax}
    match = re.fullmatch(r"p(\d+(?:\.\d+)?)", name)
    if match and 0 <= float(match.group(1)) <= 100:
        simple[name] = functools.partial(np.nanpercentile, q=float(match.group(1)))
    if name in simple:
        func = simple[name]
        return lambda a: func(a, axis=-1) if a.shape[-1] else np.full(a.shape[:-1], np.nan)
    if name == "count":
        return lambda a: (~np.isnan(a)).sum(axis=-1).astype(float)
    raise ToolkitError(
        f"unknown statistic {name!r}; valid: mean, median, std, min, max, count, "
        "pNN (a percentile such as p90 or p99.9)"
    )


def summary(cube: CubeLike, stats: Sequence[str] = STATS) -> xr.Dataset:
    """Statistics of every variable over ``repeat``, NaN-aware.

    Args:
        cube: the cube.
        stats: statistic names: ``mean``, ``median``, ``std``, ``min``, ``max``,
            ``count`` (number of non-NaN repeats) and ``pNN`` percentiles
            (``p90``, ``p99``, ``p99.9``; linear interpolation).

    Returns:
        A Dataset with the cube's variables, the ``repeat`` dimension replaced by
        a ``stat`` dimension (coordinate = the names given), so that
        ``summary(cube).sel(stat="p99")`` looks like a cube without repeats.
        Variable attrs (``units``, ``long_name``) and dataset attrs are kept;
        ``units`` hold for every statistic except ``count``, which is a number of
        runs. Cells without data are NaN (``count`` 0).

    Raises:
        ToolkitError: an unknown statistic, or none given.
    """
    cube = as_dataset(cube, "summary")
    stats = [stats] if isinstance(stats, str) else list(stats)
    if not stats:
        raise ToolkitError("summary needs at least one statistic, e.g. mean")
    funcs = [_stat_function(s) for s in stats]
    data = {}
    for name in _run_variables(cube):
        da = cube[name].transpose(..., "repeat")
        arr = np.asarray(da.values, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells give NaN
            values = np.stack([f(arr) for f in funcs], axis=-1)
        data[name] = xr.Variable([*da.dims[:-1], "stat"], values, dict(da.attrs))
    coords = {k: v for k, v in cube.coords.items() if "repeat" not in v.dims}
    coords["stat"] = xr.Variable("stat", np.asarray(stats, dtype=object), {
        "long_name": "statistic over repeats",
        "note": "count is a number of runs; other statistics carry the variable's units",
    })
    out = xr.Dataset(data, coords=coords, attrs=dict(cube.attrs))
    out.attrs["summary_over"] = "repeat"
    return out


# --------------------------------------------------------------------------- merging


def merge_cubes(cubes: Iterable[xr.Dataset | str | os.PathLike]) -> xr.Dataset:
    """Merge cubes of several campaigns or models into one.

    Coordinates are the union of the inputs'. The runs of a configuration
    present in several cubes are concatenated along ``repeat`` in input order
    (never overwritten); all-NaN repeats (padding) are dropped.

    Attributes: values all inputs agree on are kept; ``schema``,
    ``toolkit_version`` and ``created_at`` are renewed. A conflicting
    ``energy_source`` becomes ``"mixed"`` with the distinct sources, in input
    order, as a JSON list in ``energy_sources``; any other conflicting attribute
    becomes a JSON list of its distinct values. ``merged_from`` holds every
    input's attributes as a JSON list.

    Args:
        cubes: the cubes, or their files' paths (:func:`as_cube`).

    Raises:
        ToolkitError: no cube given, something that is not a cube, or the cubes
            have different dimensions.
    """
    if isinstance(cubes, xr.Dataset | str | os.PathLike) or not isinstance(cubes, Iterable):
        raise ToolkitError(f"merge_cubes needs a list of cubes or cube files' paths, got "
                           f"{type(cubes).__name__}")
    cubes = [as_cube(c, purpose=f"merge_cubes (item {i})") for i, c in enumerate(cubes)]
    if not cubes:
        raise ToolkitError("merge_cubes needs at least one cube")
    dims = config_dims(cubes[0])
    for n, other in enumerate(cubes[1:], start=1):
        if set(config_dims(other)) != set(dims):
            raise ToolkitError(
                f"cannot merge cubes with different dimensions: cube 0 has {choices(dims)}, "
                f"cube {n} has {choices(config_dims(other))}"
            )
    coords = {d: np.asarray(sorted({v for c in cubes for v in c[d].values.tolist()}),
                            dtype=_COORD_DTYPES.get(d, object)) for d in dims}
    variables = list(dict.fromkeys(v for c in cubes for v in _run_variables(c)))
    n_cells = math.prod(len(coords[d]) for d in dims)
    parts = []
    totals = np.zeros(n_cells, dtype=np.int64)
    for c in cubes:
        values = _run_array(c.reindex(coords), dims, variables)
        occupied = ~np.isnan(values).all(axis=0)
        parts.append((values, occupied))
        totals += occupied.sum(axis=1)
    n_rep = int(totals.max(initial=0))
    out = np.full((len(variables), n_cells, n_rep), np.nan)
    offset = np.zeros(n_cells, dtype=np.int64)
    for values, occupied in parts:
        cell, rep = np.nonzero(occupied)
        position = offset[cell] + np.cumsum(occupied, axis=1)[cell, rep] - 1
        out[:, cell, position] = values[:, cell, rep]
        offset += occupied.sum(axis=1)
    shape = [len(coords[d]) for d in dims]
    data = {}
    for i, var in enumerate(variables):
        attrs = next(dict(c[var].attrs) for c in cubes if var in c.data_vars)
        data[var] = xr.Variable([*dims, "repeat"], out[i].reshape([*shape, n_rep]), attrs)
    merged = xr.Dataset(data, coords={**coords, "repeat": np.arange(n_rep)})
    merged.attrs.update(_clean_attrs(_merge_attrs([dict(c.attrs) for c in cubes])))
    return merged


def _merge_attrs(all_attrs: list[dict[str, Any]]) -> dict[str, Any]:
    renewed = {"schema", "toolkit_version", "created_at"}
    out: dict[str, Any] = {}
    keys = dict.fromkeys(k for a in all_attrs for k in a if k not in renewed)
    for key in keys:
        distinct = list(dict.fromkeys(plain_value(a[key]) for a in all_attrs if key in a))
        if len(distinct) == 1:
            out[key] = distinct[0]
        elif key == "energy_source":
            out["energy_source"] = "mixed"
            out["energy_sources"] = distinct
        else:
            out[key] = distinct
    if len(all_attrs) > 1:
        out["merged_from"] = [{k: plain_value(v) for k, v in a.items()} for a in all_attrs]
    return out


# --------------------------------------------------------------------------- Pareto front


def has_objective_data(cube: CubeLike, name: str) -> bool:
    """Whether ``name`` can serve as an objective on ``cube``.

    It must be a variable with at least one value, and not a constant declared
    at import (``accuracy_mode = "constant"``: DynaSplit's ViT pool has one
    accuracy for every configuration, which ranks nothing). A cube without
    accuracy therefore optimises latency x energy.
    """
    cube = as_dataset(cube, "has_objective_data")
    if name == "accuracy" and cube.attrs.get("accuracy_mode") == "constant":
        return False
    return name in cube.data_vars and bool(cube[name].notnull().any())


def _objectives(cube: xr.Dataset, objectives: Mapping[str, str]) -> dict[str, str]:
    """The objectives usable on this cube: known, present and not all NaN."""
    if not isinstance(objectives, Mapping) or not objectives:
        raise ToolkitError("objectives must map a variable to 'min' or 'max', e.g. "
                           "{'latency_ms': 'min', 'energy_j': 'min'}; got "
                           f"{short_repr(objectives)}")
    used = {}
    for name, sense in objectives.items():
        if sense not in SENSES:
            raise ToolkitError(
                f"objective {name!r} has sense {sense!r}; valid: {choices(SENSES)}"
            )
        if name not in VARIABLES and name not in cube.data_vars:
            raise ToolkitError(
                f"unknown objective {name!r}; valid: {choices(_run_variables(cube) or VARIABLES)}"
            )
        if has_objective_data(cube, name):
            used[name] = sense
    return used


def _front(cube: xr.Dataset, objectives: Mapping[str, str]) -> tuple[list[dict], dict]:
    used = _objectives(cube, objectives)
    if not used:
        raise ToolkitError(
            f"none of the objectives {choices(objectives)} has data in this cube"
        )
    dims = config_dims(cube)
    cells = _measured_cells(cube, dims)
    values = _run_array(cube, dims, list(used))[:, cells, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values, axis=2).T if values.shape[2] else np.full(
            (len(cells), len(used)), np.nan)
    mask = pareto_mask(means, list(used.values()))
    first_sign = 1.0 if next(iter(used.values())) == "min" else -1.0
    keep = np.flatnonzero(mask)
    keep = keep[np.argsort(first_sign * means[keep, 0], kind="stable")]
    return _cell_configs(cube, dims, cells[keep]), used


def pareto_configs(
    cube: CubeLike, objectives: Mapping[str, str] = DEFAULT_OBJECTIVES
) -> list[dict[str, Any]]:
    """The Pareto-optimal measured configurations, on the mean over repeats.

    Args:
        cube: the cube.
        objectives: variable -> ``"min"`` or ``"max"``. Objectives that are
            schema variables but absent or all-NaN in this cube (e.g. accuracy
            was not measured) are dropped. A configuration with a NaN mean in a
            kept objective is not on the front.

    Returns:
        Configuration dicts as in :func:`configurations`, best first in the
        first kept objective. Identical objective vectors are all kept.

    Raises:
        ToolkitError: an unknown objective or sense, or no objective has data.
    """
    cube = as_dataset(cube, "pareto_configs")
    return _front(cube, objectives)[0]


# --------------------------------------------------------------------------- info


def _possible(cube: xr.Dataset) -> int:
    """Valid configurations spanned by the cube's coordinates.

    The last split is the maximum of the ``split`` coordinate; extra
    dimensions multiply the count.
    """
    if cube.sizes.get("split", 0) == 0:
        return 0
    n_splits = int(cube["split"].max()) + 1
    valid = 0
    for values in itertools.product(*(cube[k].values.tolist() for k in CONFIG_KEYS)):
        try:
            config = Config(**dict(zip(CONFIG_KEYS, values, strict=True)))
        except ConfigError:
            continue
        valid += not _config_problems(config, n_splits)
    extra = [d for d in config_dims(cube) if d not in CONFIG_KEYS]
    return valid * math.prod(cube.sizes[d] for d in extra)


def cube_info(cube: CubeLike) -> dict[str, Any]:
    """A JSON-ready description of a cube, as ``dynasplit cube info`` prints it.

    Returns:
        ``schema``, ``toolkit_version``, ``created_at``, ``testbed``,
        ``energy_source``, ``dims`` (name -> size), ``coords`` (configuration
        dimension -> values), ``variables`` (name -> units), ``runs``,
        ``measured`` (configurations), ``possible`` (valid configurations over
        the coordinates, per :func:`~toolkit.config.config_problems` with the
        largest split as the last), ``coverage`` (measured / possible, or None),
        ``pareto_objectives`` (those usable) and ``pareto_front_size``.
    """
    cube = as_dataset(cube, "cube_info")
    dims = config_dims(cube)
    variables = _run_variables(cube)
    values = _run_array(cube, dims, variables)
    measured = len(_measured_cells(cube, dims))
    possible = _possible(cube)
    try:
        front, used = _front(cube, DEFAULT_OBJECTIVES)
    except ToolkitError:
        front, used = [], {}
    return {
        **{k: cube.attrs.get(k) for k in ("schema", "toolkit_version", "created_at", "testbed",
                                          "energy_source")},
        "dims": {str(d): int(n) for d, n in cube.sizes.items()},
        "coords": {d: cube[d].values.tolist() for d in dims},
        "variables": {v: cube[v].attrs.get("units", "") for v in variables},
        "runs": int((~np.isnan(values).all(axis=0)).sum()),
        "measured": measured,
        "possible": possible,
        "coverage": measured / possible if possible else None,
        "pareto_objectives": used,
        "pareto_front_size": len(front),
    }


def _span(values: list[Any]) -> str:
    if len(values) > 4 and all(isinstance(v, int) for v in values):
        return f"{values[0]}..{values[-1]} ({len(values)} values)"
    return ", ".join(str(v) for v in values)


def format_cube_info(info: Mapping[str, Any]) -> str:
    """The text form of :func:`cube_info`, one fact per line."""
    coverage = info["coverage"]
    share = f" ({coverage:.1%})" if coverage is not None else ""
    objectives = ", ".join(f"{k} {s}" for k, s in info["pareto_objectives"].items())
    return "\n".join([
        f"schema:        {info['schema']} (toolkit {info['toolkit_version']}, "
        f"created {info['created_at']})",
        f"testbed:       {info['testbed']}",
        f"energy source: {info['energy_source']}",
        "dims:          " + ", ".join(f"{d}={n}" for d, n in info["dims"].items()),
        *(f"  {d:<12} {_span(v)}" for d, v in info["coords"].items()),
        "variables:     " + ", ".join(f"{v} [{u}]" for v, u in info["variables"].items()),
        f"runs:          {info['runs']}",
        f"coverage:      {info['measured']} of {info['possible']} valid configurations "
        f"measured{share}",
        f"pareto front:  {info['pareto_front_size']} configurations"
        + (f" ({objectives}, mean over repeats)" if objectives else " (no objective has data)"),
    ])


# --------------------------------------------------------------------------- the accessor


@xr.register_dataset_accessor("dynasplit")
class CubeAccessor:
    """``cube.dynasplit``: this module's cube operations as methods of any cube,
    xarray's convention for domain helpers (registered when :mod:`toolkit.cube`
    is imported, which opening or making a cube does).

    ::

        cube = open_cube("cube.nc")
        cube.dynasplit.means(["latency_ms", "energy_j"])
        cube.dynasplit.front()
    """

    def __init__(self, cube: xr.Dataset) -> None:
        self._cube = cube

    def configurations(self) -> list[dict[str, Any]]:
        """The measured configurations (:func:`configurations`)."""
        return configurations(self._cube)

    def select(self, config: Mapping[str, Any] | Config) -> xr.Dataset:
        """The part that matches a configuration (:func:`select`)."""
        return select(self._cube, config)

    def model(self, name: str | None = None) -> xr.Dataset:
        """One model's part, without the ``model`` dimension (:func:`select_model`)."""
        return select_model(self._cube, name)[1]

    def runs(self, needs: Sequence[str] = ("latency_ms", "energy_j")) -> pd.DataFrame:
        """One row per measured run (:func:`measured_runs`)."""
        return measured_runs(self._cube, needs)

    def means(self, variables: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per configuration, each variable's mean over runs (:func:`config_means`)."""
        return config_means(self._cube, variables)

    def summary(self, stats: Sequence[str] = STATS) -> xr.Dataset:
        """Statistics over the repeats (:func:`summary`)."""
        return summary(self._cube, stats)

    def front(self, objectives: Mapping[str, str] = DEFAULT_OBJECTIVES) -> list[dict[str, Any]]:
        """The Pareto-optimal measured configurations (:func:`pareto_configs`)."""
        return pareto_configs(self._cube, objectives)

    def info(self) -> dict[str, Any]:
        """Dimensions, coverage, energy source and front size (:func:`cube_info`)."""
        return cube_info(self._cube)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the cube atomically as NetCDF (:func:`save_cube`)."""
        return save_cube(self._cube, path)
