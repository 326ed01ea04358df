"""What every figure shares: axis labels with units, the energy source's kind,
means per configuration and the 2-D front mask.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import xarray as xr

from toolkit.config import OBJECTIVES
from toolkit.errors import ToolkitError
from toolkit.fileio import check_table

__all__ = [
    "OBJECTIVE_LABELS",
    "as_means",
    "axis_label",
    "energy_kind",
    "energy_label",
    "figure_data",
    "figure_object",
    "front_mask",
    "source_of",
]


#: axis label (with units) of each objective
OBJECTIVE_LABELS: dict[str, str] = {
    "latency_ms": "end-to-end latency per sample [ms]",
    "energy_j": "energy per sample [J]",
    "accuracy": "top-1 accuracy [1]",
}


def energy_kind(source: str) -> str:
    """``modelled`` for power-model figures (``model:<profile>``), ``unknown`` where
    the source is not recorded, else ``measured``."""
    source = str(source)
    if source.startswith("model:") or "+model:" in source:
        return "modelled"
    return "unknown" if source in ("", "unknown", "None") else "measured"


def energy_label(cube: xr.Dataset, what: str = "energy per sample") -> str:
    """Axis label for energy that says where the figures come from (two lines)."""
    source = str(cube.attrs.get("energy_source", "unknown"))
    return f"{what} [J]\n({energy_kind(source)}: {source})"


def source_of(data: xr.Dataset | pd.DataFrame, energy_source: str | None) -> str:
    if energy_source:
        return energy_source
    return str(data.attrs.get("energy_source", "unknown"))


def axis_label(name: str, source: str) -> str:
    if name == "energy_j" or name.endswith("_energy_j"):
        return energy_label(xr.Dataset(attrs={"energy_source": source}),
                            name.removesuffix("_j").replace("_", " ") + " per sample")
    return OBJECTIVE_LABELS.get(name, name)


def figure_data(data: xr.Dataset | pd.DataFrame | str, figure: str,
                needs: Sequence[str] = ()) -> xr.Dataset | pd.DataFrame:
    """What a figure was given, checked: a per-configuration table as it is, a cube
    or a cube file's path as the cube (:func:`toolkit.cube.as_cube`).

    Raises:
        ToolkitError: anything else, or a table or cube without a column or
            variable of ``needs``, named with the figure.
    """
    from toolkit.cube import as_cube

    if isinstance(data, pd.DataFrame):
        return check_table(data, figure, needs, "a cube's config_means")
    if not isinstance(data, xr.Dataset | str | os.PathLike):
        raise ToolkitError(f"{figure} needs a cube, a cube file's path or a per-configuration "
                           f"table (a cube's config_means), got {type(data).__name__}")
    return as_cube(data, needs, figure)


def figure_object(value: Any, figure: str, attributes: Sequence[str], what: str) -> Any:
    """``value`` where it has the ``attributes`` a figure reads, else one line naming
    ``what`` the figure needs (e.g. ``"a Simulation (toolkit.simulate.simulate)"``)."""
    if not all(hasattr(value, a) for a in attributes):
        raise ToolkitError(f"{figure} needs {what}, got {type(value).__name__}")
    return value


def check_values(cube: xr.Dataset, figure: str, values: Mapping[str, Any]) -> None:
    """Refuse a configuration value a figure was asked for that the cube does not
    hold (None: not asked), naming the figure and the cube's values."""
    from toolkit.cube import select

    try:
        select(cube, {k: v for k, v in values.items() if v is not None})
    except ToolkitError as exc:
        raise ToolkitError(f"{figure}: {exc}") from None


def as_means(data: xr.Dataset | pd.DataFrame) -> pd.DataFrame:
    """A cube's :func:`toolkit.cube.config_means`; a DataFrame is taken as such means."""
    from toolkit.cube import config_means

    return data if isinstance(data, pd.DataFrame) else config_means(data)


def front_mask(df: pd.DataFrame, objectives: list[str]) -> pd.Series:
    from toolkit.pareto import pareto_mask

    senses = [OBJECTIVES.get(o, "min") for o in objectives]
    if df.empty:
        return pd.Series([], dtype=bool, index=df.index)
    return pd.Series(pareto_mask(df[objectives].to_numpy(float), senses), index=df.index)

