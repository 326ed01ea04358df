"""DynaSplit (SPLINTER) testbed data: simulation pools and testbed results.

The DynaSplit authors (hpc-tuwien/SPLINTER, CC-BY-SA) published their VGG16
measurements as CSV files (see ``docs/cube.md``):

- ``simulation_pool_<model>.csv``: one row per run (1000 ImageNet images,
  per-image averages); :func:`read_pool` turns it into a cube.
- ``experiment_progress_<model>.csv``: their testbed evaluation, each request
  served by several strategies; :func:`read_experiment` turns it into a tidy
  table and :func:`experiment_table` into their per-strategy result table.

Names are mapped to the canonical ones: ``layer``→``split``,
``cpu-freq``→``cpu_freq``, edge accelerator ``off``/``std``/``max`` →
``none``/``tpu-std``/``tpu-max``, server accelerator ``True``/``False`` →
``gpu``/``none``.

Their energy figures: ``energy`` is exactly ``avg energy edge (J)`` + ``avg
energy cloud (J)`` (to 1e-14 J over the whole pool). ``avg energy cloud (J)`` is
the cloud node's wattmeter and *includes* the GPU: ``avg energy cloud gpu (J)``
(NVML) is never larger than it, is a part of it and is not added again (it is
non-zero even for CPU-only cloud runs: the idle GPU). It is not imported, nor
are the cloud CPU/GPU utilisations.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from toolkit.cube import cube_from_runs
from toolkit.errors import ToolkitError, choices
from toolkit.fileio import numeric_column, read_table

__all__ = [
    "CLOUD_ACCEL_MAP",
    "EDGE_ACCEL_MAP",
    "ENERGY_SOURCE",
    "POOL_VARIABLES",
    "SAMPLES_PER_RUN",
    "experiment_table",
    "read_experiment",
    "read_pool",
]

#: DynaSplit edge-accelerator value -> canonical ``edge_accel``
EDGE_ACCEL_MAP: dict[str, str] = {"off": "none", "std": "tpu-std", "max": "tpu-max"}
#: DynaSplit server-accelerator value -> canonical ``cloud_accel``
CLOUD_ACCEL_MAP: dict[str, str] = {"True": "gpu", "False": "none"}
#: DynaSplit column -> cube variable
POOL_VARIABLES: dict[str, str] = {
    "latency": "latency_ms",
    "avg latency edge (ms)": "edge_ms",
    "avg latency transfer (ms)": "transfer_ms",
    "avg latency cloud (ms)": "cloud_ms",
    "energy": "energy_j",
    "avg energy edge (J)": "edge_energy_j",
    "avg energy cloud (J)": "cloud_energy_j",
    "accuracy": "accuracy",
    "tensor size (KB)": "tensor_kb",  # their KB are KiB: 588.03 for a 224x224x3 fp32 input
    "utilization edge cpu (%)": "edge_cpu_util",
}
#: their energy figures come from their power meters (edge meter, cloud wattmeter)
ENERGY_SOURCE = "meter:splinter"
#: ImageNet validation images per run (each row holds per-image averages)
SAMPLES_PER_RUN = 1000

_CONFIG_COLUMNS = ("layer", "cpu-freq", "edge-accelerator", "server-accelerator")
_POOL_KIND = "DynaSplit simulation-pool CSV"
_EXPERIMENT_KIND = "DynaSplit experiment-progress CSV"
_CLOUD_NOTE = (
    "cloud node wattmeter, GPU included (their 'avg energy cloud gpu (J)' is a part of it)"
)


def _check_model(model: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise ToolkitError("a model name is needed, e.g. vgg16")
    return model.strip()


def _integral(df: pd.DataFrame, column: str, path: Path, minimum: int) -> pd.Series:
    values = numeric_column(df, column, path)
    bad = values.isna() | (values != values.round()) | (values < minimum)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ToolkitError(
            f"{path} line {row + 2}: column {column!r} holds {df[column].iloc[row]!r}; "
            f"expected an integer >= {minimum}"
        )
    return values.astype(np.int64)


def _mapped(df: pd.DataFrame, column: str, mapping: dict[str, str], path: Path) -> pd.Series:
    raw = df[column].astype(str).str.strip()
    mapped = raw.map(mapping)
    if mapped.isna().any():
        row = int(mapped.isna().to_numpy().nonzero()[0][0])
        raise ToolkitError(
            f"{path} line {row + 2}: column {column!r} holds {raw.iloc[row]!r}; "
            f"valid: {choices(mapping)}"
        )
    return mapped


def _canonical(df: pd.DataFrame, path: Path, model: str) -> pd.DataFrame:
    """Configuration columns and cube variables, canonically named."""
    out = pd.DataFrame({
        "model": model,
        "split": _integral(df, "layer", path, 0),
        "cpu_freq": _integral(df, "cpu-freq", path, 1),
        "edge_accel": _mapped(df, "edge-accelerator", EDGE_ACCEL_MAP, path),
        "cloud_accel": _mapped(df, "server-accelerator", CLOUD_ACCEL_MAP, path),
    })
    for column, var in POOL_VARIABLES.items():
        out[var] = numeric_column(df, column, path)
    return out


def read_pool(path: str | os.PathLike, model: str = "vgg16") -> xr.Dataset:
    """A cube from a DynaSplit ``simulation_pool_*.csv``.

    Args:
        path: the CSV file.
        model: the model the pool was measured with (the file holds no model
            column), e.g. ``vgg16``.

    Returns:
        A cube with one repeat per CSV row (run), in file order per
        configuration; attrs ``testbed="splinter"``, ``energy_source=
        "meter:splinter"``, ``source`` (the file name), ``origin`` and
        ``samples_per_run=1000``.

    Raises:
        ToolkitError: the file is not such a CSV (missing columns are named), or
            a value cannot be mapped (its line is named).
    """
    path = Path(path)
    model = _check_model(model)
    df = read_table(path, _POOL_KIND, [*POOL_VARIABLES, *_CONFIG_COLUMNS])
    runs = _canonical(df, path, model)
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
               for r in runs.to_dict("records")]
    cube = cube_from_runs(records, {
        "testbed": "splinter",
        "energy_source": ENERGY_SOURCE,
        "source": path.name,
        "origin": "hpc-tuwien/SPLINTER (DynaSplit), CC-BY-SA",
        "samples_per_run": SAMPLES_PER_RUN,
    })
    cube["cloud_energy_j"].attrs["comment"] = _CLOUD_NOTE
    return cube


def read_experiment(path: str | os.PathLike, model: str = "vgg16") -> pd.DataFrame:
    """Their testbed results (``experiment_progress_*.csv``) as a tidy table.

    Args:
        path: the CSV file.
        model: the model of the experiment, e.g. ``vgg16``.

    Returns:
        One row per (request, strategy), in file order, with columns
        ``request, strategy, energy_j, latency_ms, qos_ms, met`` (latency ≤
        QoS threshold), the configuration the strategy chose (``model, split,
        cpu_freq, edge_accel, cloud_accel``) and the other cube variables
        (``edge_ms`` ... ``edge_cpu_util``). ``df.attrs`` holds
        ``energy_source`` and ``source``.

    Raises:
        ToolkitError: the file is not such a CSV (missing columns are named), or
            a value cannot be mapped (its line is named).
    """
    path = Path(path)
    model = _check_model(model)
    df = read_table(path, _EXPERIMENT_KIND,
                    [*POOL_VARIABLES, *_CONFIG_COLUMNS, "index", "qos", "strategy"])
    config = _canonical(df, path, model)
    table = pd.DataFrame({
        "request": _integral(df, "index", path, 0),
        "strategy": df["strategy"].astype(str),
        "energy_j": config.pop("energy_j"),
        "latency_ms": config.pop("latency_ms"),
        "qos_ms": numeric_column(df, "qos", path),
    })
    table["met"] = table["latency_ms"] <= table["qos_ms"]
    table = pd.concat([table, config], axis=1)
    table.attrs = {"energy_source": ENERGY_SOURCE, "source": path.name}
    return table


def experiment_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per-strategy results of a testbed experiment, as in DynaSplit's table.

    Args:
        df: a table from :func:`read_experiment` (or any with ``strategy``,
            ``energy_j``, ``latency_ms`` and ``met`` columns).

    Returns:
        One row per strategy (the index): ``requests``, ``energy_j_mean``,
        ``latency_ms_mean``, ``qos_met`` (fraction of requests whose latency met
        the threshold), ``energy_saving_vs_cloud`` (1 − mean energy / the
        ``cloud`` strategy's; NaN without a ``cloud`` strategy) and
        ``energy_source``.

    Raises:
        ToolkitError: a required column is missing.
    """
    required = ["strategy", "energy_j", "latency_ms", "met"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ToolkitError(f"experiment table needs columns {choices(missing)}")
    grouped = df.groupby("strategy", sort=True)
    table = pd.DataFrame({
        "requests": grouped.size(),
        "energy_j_mean": grouped["energy_j"].mean(),
        "latency_ms_mean": grouped["latency_ms"].mean(),
        "qos_met": grouped["met"].mean(),
    })
    cloud = table["energy_j_mean"].get("cloud", np.nan)
    table["energy_saving_vs_cloud"] = 1.0 - table["energy_j_mean"] / cloud
    source = df.attrs.get("energy_source") or (
        df["energy_source"].iloc[0] if "energy_source" in df.columns else "unknown")
    table["energy_source"] = source
    table.attrs = dict(df.attrs)
    return table
