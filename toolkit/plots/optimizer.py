"""Figures of the offline phase: the hypervolume history of a search.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from toolkit.fileio import check_table

__all__ = ["hypervolume_history"]


def hypervolume_history(history: list[dict] | pd.DataFrame, *,
                        reference: float | None = None,
                        reference_label: str = "exhaustive front",
                        title: str = "hypervolume of the front found so far") -> plt.Figure:
    """Hypervolume (normalised) against distinct evaluations.

    Args:
        history: ``OptimizationResult.history`` (dicts with ``evaluations`` and
            ``hypervolume``) or a DataFrame with those columns; a ``run`` column
            draws one line per run.
        reference: a horizontal line, e.g. the exhaustive front's hypervolume.
        reference_label: its legend label.
        title: the axes title.
    """
    df = check_table(history, "hypervolume_history", ("evaluations", "hypervolume"),
                      "OptimizationResult.history")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if "run" in df:
        sns.lineplot(data=df, x="evaluations", y="hypervolume", hue="run", marker="o",
                     ax=ax)
    else:
        ax.plot(df["evaluations"], df["hypervolume"], marker="o", label="optimizer")
    if reference is not None:
        ax.axhline(reference, color="tab:red", ls="--", label=f"{reference_label} "
                   f"({reference:.4f})")
    ax.set_xlabel("distinct configurations evaluated")
    ax.set_ylabel("hypervolume (normalised objectives) [1]")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig

