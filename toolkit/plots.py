"""seaborn figures of cubes, fronts and replays, with labelled axes and units.

Every function returns a matplotlib ``Figure`` (usable outside notebooks; save
it with ``fig.savefig``) and never calls ``plt.show``. Energy axes say whether
the figures were measured or modelled (the cube's ``energy_source``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import xarray as xr

__all__ = ["energy_label", "energy_latency", "latency_breakdown"]


def energy_label(cube: xr.Dataset, what: str = "energy per sample") -> str:
    """Axis label for energy that says where the figures come from."""
    source = str(cube.attrs.get("energy_source", "unknown"))
    kind = "modelled" if source.startswith("model:") or "+model:" in source else "measured"
    return f"{what} [J] ({kind}: {source})"


def _means(cube: xr.Dataset) -> pd.DataFrame:
    from toolkit.cube import to_dataframe

    df = to_dataframe(cube)
    keys = [c for c in ("model", "split", "cpu_freq", "edge_accel", "cloud_accel", "codec")
            if c in df.columns]
    return df.groupby(keys, as_index=False).mean(numeric_only=True)


def energy_latency(cube: xr.Dataset, log_energy: bool = True) -> plt.Figure:
    """Energy vs latency per configuration: colour = split, marker = edge accelerator."""
    df = _means(cube)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    sns.scatterplot(data=df, x="latency_ms", y="energy_j", hue="split", style="edge_accel",
                    palette="viridis", s=70, ax=ax)
    if log_energy:
        ax.set_yscale("log")
    ax.set_xlabel("end-to-end latency per sample [ms]")
    ax.set_ylabel(energy_label(cube))
    ax.set_title(f"{', '.join(map(str, cube.model.values))}: energy vs latency")
    ax.legend(loc="best", fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


def latency_breakdown(cube: xr.Dataset, cpu_freq: int | None = None,
                      edge_accel: str = "none") -> plt.Figure:
    """Stacked bars per split: edge compute, transfer, cloud compute [ms]."""
    df = _means(cube)
    df = df[df["edge_accel"].isin([edge_accel, "none"]) & ((df["split"] == 0)
                                                            | (df["edge_accel"] == edge_accel))]
    if cpu_freq is None:
        cpu_freq = int(df["cpu_freq"].max())
    df = df[df["cpu_freq"] == cpu_freq].sort_values("split")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bottom = None
    for column, label in (("edge_ms", "edge compute"), ("transfer_ms", "transfer"),
                          ("cloud_ms", "cloud compute")):
        ax.bar(df["split"].astype(str), df[column], bottom=bottom, label=label)
        bottom = df[column].values if bottom is None else bottom + df[column].values
    ax.set_xlabel("split (0 = all cloud)")
    ax.set_ylabel("latency per sample [ms]")
    ax.set_title(f"latency breakdown at {cpu_freq} MHz, edge accelerator {edge_accel}")
    ax.legend()
    fig.tight_layout()
    return fig
