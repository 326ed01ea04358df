"""DynaSplit (SPLINTER) testbed data: simulation pools and testbed results.

The DynaSplit authors (hpc-tuwien/SPLINTER, CC-BY-SA) published their VGG16
measurements as CSV files:

- ``simulation_pool_<model>.csv``: one row per run (1000 ImageNet images,
  per-image averages); :func:`read_pool` turns it into a cube.
- ``experiment_progress_<model>.csv``: their testbed evaluation, each request
  served by several strategies; :func:`read_experiment` turns it into a tidy
  table and :func:`experiment_table` into their per-strategy result table.

``docs/cube.md`` ("DynaSplit (SPLINTER) data") says how their names map to the
canonical ones (:data:`EDGE_ACCEL_MAP`, :data:`CLOUD_ACCEL_MAP`,
:data:`POOL_VARIABLES`: their TPU "off" is ``int8`` above split 0, ``none`` at
split 0), how their ViT-B/16 ``layer`` maps to the toolkit's split
(:data:`SPLIT_MAPS`), what the cube's ``accuracy_mode`` says (``measured``,
``absent``, ``constant``) and what their energy columns hold (``avg energy cloud
(J)`` includes the GPU, whose NVML share is not imported).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from toolkit.config import ACCELERATORS
from toolkit.cube import cube_from_runs
from toolkit.errors import ToolkitError, choices, in_range, short_repr
from toolkit.fileio import as_path, integer_column, numeric_column, read_table
from toolkit.models.names import GELU_NAMES, MODEL_NAMES, split_variant
from toolkit.trace import NETWORK_MODELS

__all__ = [
    "CLOUD_ACCEL_MAP",
    "EDGE_ACCEL_MAP",
    "ENERGY_SOURCE",
    "POOL_VARIABLES",
    "SAMPLES_PER_RUN",
    "SPLIT_MAPS",
    "VIT_LAYER_NAMES",
    "edge_accel_of",
    "experiment_model",
    "experiment_summary",
    "experiment_table",
    "pool_model",
    "read_experiment",
    "read_pool",
]

#: DynaSplit edge-accelerator value (the Coral TPU's state) -> canonical ``edge_accel``
#: (``off`` is ``int8`` above split 0: see :func:`edge_accel_of`)
EDGE_ACCEL_MAP: dict[str, str] = {m.tpu: a for a, m in ACCELERATORS["edge"].items() if m.int8}
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
#: DynaSplit's ViT ``layer`` index -> the toolkit's layer (the ``vit_keras``
#: ``vit_b16`` layers in order, ``Transformer/`` dropped; index 0 is the input)
VIT_LAYER_NAMES: tuple[str, ...] = (
    "image", "embedding", "reshape", "class_token", "posembed_input",
    *(f"encoderblock_{i}" for i in range(12)),
    "encoder_norm", "extract_token", "head",
)
#: model -> (their ``layer`` index -> toolkit split), where the two differ;
#: ``vit-b16``: layers 0-4 are splits 0-4, encoder block i (layer 5+i) is split
#: 6+2i, then 29, 30, 31 (checked against the cut points found in the model)
SPLIT_MAPS: dict[str, tuple[int, ...]] = {
    "vit-b16": (0, 1, 2, 3, 4, *range(6, 29, 2), 29, 30, 31),
}
#: cube attribute saying where accuracy comes from
ACCURACY_MODES = ("measured", "absent", "constant")
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


def _read(path: str | os.PathLike, model: str, kind: str, extra: tuple[str, ...] = ()
          ) -> tuple[Path, str, pd.DataFrame]:
    """The file's path, the checked model name and the table (every run column
    but accuracy, the configuration columns and ``extra`` required)."""
    model = pool_model(model)
    path = as_path(path, f"a {kind}")
    required = [c for c in POOL_VARIABLES if c != "accuracy"]
    return path, model, read_table(path, kind, [*required, *_CONFIG_COLUMNS, *extra])


def pool_model(model: str) -> str:
    """The toolkit's name of the model a DynaSplit file was measured with.

    DynaSplit's network names become the toolkit's (``vit`` -> ``vit-b16``,
    :data:`~toolkit.trace.NETWORK_MODELS`), in any case (``VGG16`` -> ``vgg16``);
    a GELU variant is kept (``vit-b16:igelu``).

    Raises:
        ToolkitError: no name, or not a model of the zoo: the cube's ``split``
            is the toolkit's cut-point index of the model (mapped from their
            ``layer`` by :data:`SPLIT_MAPS`), which only a known model has.
    """
    if not isinstance(model, str) or not model.strip():
        raise ToolkitError(f"a model name is needed; valid: {choices(MODEL_NAMES)}")
    network, sep, variant = model.strip().partition(":")
    key = network.lower()  # their file names and traces spell networks in any case
    name = NETWORK_MODELS.get(key, key if key in MODEL_NAMES else network) + sep + variant
    base, gelu = split_variant(name)
    if base not in MODEL_NAMES:
        raise ToolkitError(
            f"unknown model {model.strip()!r}; valid: {choices(MODEL_NAMES)} (DynaSplit's "
            f"{choices(NETWORK_MODELS)} read as {choices(sorted(set(NETWORK_MODELS.values())))})")
    if gelu is not None and gelu not in GELU_NAMES[1:]:
        raise ToolkitError(f"unknown GELU variant {gelu!r} in {model.strip()!r}; valid: "
                           f"{choices(GELU_NAMES[1:])} (exact GELU is plain {base})")
    return name


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


def _splits(df: pd.DataFrame, path: Path, model: str) -> pd.Series:
    """Their ``layer`` column as the toolkit's split index for ``model``."""
    layers = integer_column(df, "layer", path, 0)
    table = SPLIT_MAPS.get(split_variant(model)[0])
    if table is None:
        return layers
    bad = layers >= len(table)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ToolkitError(
            f"{path} line {row + 2}: column 'layer' holds {layers.iloc[row]}; {model} has "
            f"layers 0..{len(table) - 1}")
    return layers.map(dict(enumerate(table))).astype(np.int64)


def edge_accel_of(value: str, split: int) -> str:
    """The canonical ``edge_accel`` of their edge-accelerator ``value`` at ``split``.

    ``off`` is ``int8`` above split 0 (their TPU-off head is a full-int8 TFLite
    model on the Pi's CPU) and ``none`` at split 0 (no head).
    """
    if value == "off" and split == 0:
        return "none"
    return EDGE_ACCEL_MAP[value]


def _canonical(df: pd.DataFrame, path: Path, model: str,
               accuracy: float | None = None) -> pd.DataFrame:
    """Configuration columns and cube variables, canonically named."""
    splits = _splits(df, path, model)
    _mapped(df, "edge-accelerator", EDGE_ACCEL_MAP, path)  # names a bad value's line
    raw = df["edge-accelerator"].astype(str).str.strip()
    out = pd.DataFrame({
        "model": model,
        "split": splits,
        "cpu_freq": integer_column(df, "cpu-freq", path, 1),
        "edge_accel": [edge_accel_of(v, int(s)) for v, s in zip(raw, splits, strict=True)],
        "cloud_accel": _mapped(df, "server-accelerator", CLOUD_ACCEL_MAP, path),
    }, index=df.index)
    for column, var in POOL_VARIABLES.items():
        if column in df.columns:
            out[var] = _measured(df, column, path, 1.0 if var == "accuracy" else math.inf)
        elif var == "accuracy" and accuracy is not None:
            out[var] = float(accuracy)
    return out


def _measured(df: pd.DataFrame, column: str, path: Path, high: float) -> pd.Series:
    """A run's measured value: a finite number in ``0..high`` on every line (an
    empty cell, ``nan``, ``inf`` or a negative time or energy is no measurement)."""
    values = numeric_column(df, column, path)
    bad = ~(np.isfinite(values) & (values >= 0) & (values <= high))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        valid = "a number >= 0" if math.isinf(high) else f"a number in 0..{high:g}"
        raw = df[column].iloc[row]
        shown = "nothing" if pd.isna(raw) else short_repr(getattr(raw, "item", lambda: raw)())
        raise ToolkitError(f"{path} line {row + 2}: column {column!r} holds {shown}; every "
                           f"run needs {valid}")
    return values


def _accuracy_mode(df: pd.DataFrame, accuracy: float | None, path: Path) -> str:
    if "accuracy" in df.columns:
        if accuracy is not None:
            raise ToolkitError(
                f"{path} has an accuracy column; --accuracy is for pools without one")
        return "measured"
    if accuracy is None:
        return "absent"
    if not in_range(accuracy, 0.0, 1.0):
        raise ToolkitError(f"accuracy {short_repr(accuracy)} is not a fraction; use a value "
                           "in 0..1")
    return "constant"


def read_pool(path: str | os.PathLike, model: str = "vgg16",
              accuracy: float | None = None) -> xr.Dataset:
    """A cube from a DynaSplit ``simulation_pool_*.csv``.

    Args:
        path: the CSV file.
        model: the model the pool was measured with (the file holds no model
            column), e.g. ``vgg16`` or ``vit-b16`` (whose ``layer`` index is
            mapped to the toolkit's split by :data:`SPLIT_MAPS`).
        accuracy: for a pool without an ``accuracy`` column (their ViT pool),
            a constant accuracy to store; without it the cube has no
            ``accuracy`` variable and everything downstream works on latency
            x energy.

    Returns:
        A cube with one repeat per CSV row (run), in file order per
        configuration; attrs ``testbed="splinter"``, ``energy_source=
        "meter:splinter"``, ``source`` (the file name), ``origin``,
        ``samples_per_run=1000`` and ``accuracy_mode`` (``measured``,
        ``absent`` or ``constant``).

    Raises:
        ToolkitError: the file is not such a CSV (missing columns are named), or
            a value cannot be mapped (its line is named).
    """
    path, model, df = _read(path, model, _POOL_KIND)
    mode = _accuracy_mode(df, accuracy, path)
    runs = _canonical(df, path, model, accuracy)
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
               for r in runs.to_dict("records")]
    cube = cube_from_runs(records, {
        "testbed": "splinter",
        "energy_source": ENERGY_SOURCE,
        "source": path.name,
        "origin": "hpc-tuwien/SPLINTER (DynaSplit), CC-BY-SA",
        "samples_per_run": SAMPLES_PER_RUN,
        "accuracy_mode": mode,
    })
    if mode == "absent":
        cube = cube.drop_vars("accuracy")
    elif mode == "constant":
        cube["accuracy"].attrs["comment"] = "constant given at import (not measured)"
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
    path, model, df = _read(path, model, _EXPERIMENT_KIND, ("index", "qos", "strategy"))
    config = _canonical(df, path, model)
    unnamed = df["strategy"].isna().to_numpy().nonzero()[0]
    if len(unnamed):
        raise ToolkitError(f"{path} line {int(unnamed[0]) + 2}: column 'strategy' is empty; "
                           "each request names the strategy that served it")
    table = pd.DataFrame({
        "request": integer_column(df, "index", path, 0),
        "strategy": df["strategy"].astype(str),
        "energy_j": config.pop("energy_j"),
        "latency_ms": config.pop("latency_ms"),
        "qos_ms": _measured(df, "qos", path, math.inf),  # the threshold, ms
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
        the threshold), ``accuracy_mean`` (NaN without an ``accuracy``
        column), ``energy_saving_vs_cloud`` (1 − mean energy / the
        ``cloud`` strategy's; NaN without a ``cloud`` strategy) and
        ``energy_source``.

    Raises:
        ToolkitError: a required column is missing.
    """
    required = ["strategy", "energy_j", "latency_ms", "met"]
    if not isinstance(df, pd.DataFrame):
        raise ToolkitError(f"experiment_table needs a table from read_experiment, got "
                           f"{type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ToolkitError(f"experiment table needs columns {choices(missing)}")
    grouped = df.groupby("strategy", sort=True)
    table = pd.DataFrame({
        "requests": grouped.size(),
        "energy_j_mean": grouped["energy_j"].mean(),
        "latency_ms_mean": grouped["latency_ms"].mean(),
        "qos_met": grouped["met"].mean(),
        "accuracy_mean": (grouped["accuracy"].mean() if "accuracy" in df.columns
                          else np.nan),
    })
    cloud = table["energy_j_mean"].get("cloud", np.nan)
    table["energy_saving_vs_cloud"] = 1.0 - table["energy_j_mean"] / cloud
    source = df.attrs.get("energy_source") or (
        df["energy_source"].iloc[0] if "energy_source" in df.columns else "unknown")
    table["energy_source"] = source
    table.attrs = dict(df.attrs)
    return table



def experiment_model(path: str | os.PathLike) -> str:
    """The model of an ``experiment_progress_<model>.csv``, from its file name.

    Raises:
        ToolkitError: the name does not follow that pattern (pass the model).
    """
    stem = as_path(path, "a DynaSplit experiment file").stem
    prefix = "experiment_progress_"
    if not stem.startswith(prefix) or stem == prefix:
        raise ToolkitError(
            f"cannot tell the model from the file name {Path(path).name!r} (expected "
            "experiment_progress_<model>.csv); pass --model NAME")
    tag = stem[len(prefix):].lower()
    return NETWORK_MODELS.get(tag, tag)


def _finite(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def experiment_summary(path: str | os.PathLike, model: str | None = None) -> dict:
    """DynaSplit's testbed table of an experiment, JSON-ready.

    Args:
        path: an ``experiment_progress_<model>.csv``.
        model: the model (default: from the file name, see :func:`experiment_model`).

    Returns:
        ``{"model", "source", "energy_source", "strategies": {name: {"requests",
        "energy_j_mean", "latency_ms_mean", "qos_met", "accuracy_mean",
        "energy_saving_vs_cloud"}}}``, fractions in 0..1 and null where a
        figure does not exist (no accuracy column, no cloud strategy).
    """
    model = pool_model(model or experiment_model(path))
    table = experiment_table(read_experiment(path, model=model))
    strategies = {
        str(name): {
            "requests": int(row["requests"]),
            "energy_j_mean": float(row["energy_j_mean"]),
            "latency_ms_mean": float(row["latency_ms_mean"]),
            "qos_met": float(row["qos_met"]),
            "accuracy_mean": _finite(row["accuracy_mean"]),
            "energy_saving_vs_cloud": _finite(row["energy_saving_vs_cloud"]),
        }
        for name, row in table.iterrows()
    }
    return {"model": model, "source": Path(path).name,
            "energy_source": ENERGY_SOURCE, "strategies": strategies}
