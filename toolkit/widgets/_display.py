"""Small display helpers shared by the panels (private to :mod:`toolkit.widgets`)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd

__all__ = ["Panel", "close_all", "error_html", "show_figure", "show_table"]


def show_figure(output: widgets.Output, fig: plt.Figure) -> None:
    """Replace ``output``'s content by ``fig`` as a PNG, then close the figure.

    Setting ``outputs`` directly (rather than ``display`` inside the widget)
    works the same in a kernel, in a callback and in a plain Python test, and
    closing the figure keeps the inline backend from showing it a second time.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    title = "; ".join(ax.get_title() for ax in fig.axes if ax.get_title()) or "figure"
    output.outputs = ({
        "output_type": "display_data",
        "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                 "text/plain": f"<figure: {title}>"},
        "metadata": {},
    },)


def show_table(target: widgets.HTML, df: pd.DataFrame, float_format: str = "{:.4g}") -> None:
    """Show a DataFrame as an HTML table in an ``HTML`` widget."""
    target.value = df.to_html(index=False, float_format=float_format.format, border=0,
                              classes="dynasplit-table")


def error_html(exc: BaseException) -> str:
    """A one-line, escaped error message for a status widget."""
    return (f"<span style='color:#b00020'><b>error:</b> "
            f"{html.escape(str(exc))}</span>")


def close_all(widget: widgets.Widget) -> None:
    """Close a widget and, recursively, its children."""
    for child in getattr(widget, "children", ()):
        close_all(child)
    widget.close()


class Panel:
    """What every panel shares: :attr:`widget`, the whole panel, is what the notebook
    displays, and :meth:`close` closes it."""

    widget: widgets.Box

    def close(self) -> None:
        """Close the panel's widgets."""
        close_all(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
