"""What every figure shares: axis labels with units, the energy source's kind,
means per configuration and the 2-D front mask.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

__all__ = [
    "OBJECTIVE_LABELS",
    "as_means",
    "axis_label",
    "energy_kind",
    "energy_label",
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
    """``modelled`` for power-model figures (``model:<profile>``), else ``measured``."""
    return "modelled" if source.startswith("model:") or "+model:" in source else "measured"


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


def as_means(data: xr.Dataset | pd.DataFrame) -> pd.DataFrame:
    """A cube's :func:`toolkit.cube.config_means`; a DataFrame is taken as such means."""
    from toolkit.cube import config_means

    return data if isinstance(data, pd.DataFrame) else config_means(data)


def front_mask(df: pd.DataFrame, objectives: list[str]) -> pd.Series:
    from toolkit.config import OBJECTIVES
    from toolkit.pareto import pareto_mask

    senses = [OBJECTIVES.get(o, "min") for o in objectives]
    if df.empty:
        return pd.Series([], dtype=bool, index=df.index)
    return pd.Series(pareto_mask(df[objectives].to_numpy(float), senses), index=df.index)

