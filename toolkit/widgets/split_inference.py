"""A panel that runs split inference on a testbed: pick a configuration, run, see the result.

The panel holds no logic of its own: the cut points come from the testbed's
:class:`~toolkit.models.SplitModel`, a run is :meth:`Testbed.run
<toolkit.devices.testbeds.testbed.Testbed.run>`, the bar is :func:`toolkit.plots.run_breakdown`.

Example (in a notebook cell)::

    from toolkit.widgets import SplitInferencePanel
    panel = SplitInferencePanel()          # the local emulated testbed, started on first run
    panel                                   # shows the panel; or panel.split.value = 3; panel.run()
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import pandas as pd

from toolkit.config import CODECS, Config, listed
from toolkit.devices.testbeds.testbed import RunRecord, Testbed
from toolkit.errors import ToolkitError, check_count
from toolkit.models.names import check_model_name
from toolkit.widgets._display import Panel, error_html, show_figure, show_table
from toolkit.widgets.lifetime import close_at_exit

__all__ = ["SplitInferencePanel"]

#: what the progress bar counts, in order
STAGES: tuple[str, ...] = ("start the testbed", "apply the configuration",
                           "run the samples", "show the result")


class SplitInferencePanel(Panel):
    """Model, split, CPU frequency, accelerators, codec and samples → one run.

    The split slider offers the model's valid cut points only (labelled with
    the layer whose output is sent). Edge accelerators other than ``none``
    disappear at split 0 (nothing runs on the edge) and cloud accelerators at
    the last split (nothing runs in the cloud).

    Args:
        model: the model selected first.
        models: the models the model menu offers.
        testbed: the testbed to run on; default a
            :class:`~toolkit.devices.testbeds.local.LocalTestbed`, created now (cheap) and
            started on the first run. A testbed the panel created is closed by
            :meth:`close` or when Python exits (:func:`close_at_exit`); one passed
            in is left to its owner.
        samples: samples per run, first value of the samples box.
        split: the split selected first (default: the middle cut point).

    Attributes:
        model, split, cpu_freq, edge_accel, cloud_accel, codec, samples: the
            input widgets (their ``.value`` is the configuration).
        run_button: the run button.
        progress: the stage progress bar; ``status``: its text.
        result: the last run as text (HTML); ``plot``: its latency breakdown bar;
            ``table``: every run of this panel.
        records: every :class:`~toolkit.devices.testbeds.testbed.RunRecord`, oldest first.
        widget: the whole panel (what the notebook displays).
    """

    def __init__(self, model: str = "digits-cnn", *, models: Sequence[str] = ("digits-cnn",),
                 testbed: Testbed | None = None, samples: int = 50,
                 split: int | None = None) -> None:
        models = list(dict.fromkeys(check_model_name(m) for m in (model, *listed(models))))
        model = models[0]
        check_count(samples, "samples")
        if testbed is not None and not isinstance(testbed, Testbed):
            raise ToolkitError(f"testbed must be a Testbed (e.g. LocalTestbed()) or None, got "
                               f"{type(testbed).__name__}")
        self._close_testbed: Callable[[], None] | None = None  # set where the panel owns it
        if testbed is None:
            from toolkit.devices.testbeds.local import LocalTestbed

            testbed = LocalTestbed(model=model)
            self._close_testbed = close_at_exit(testbed)
        self.testbed = testbed
        self.records: list[RunRecord] = []
        self._started = False
        profile = testbed.edge_profile
        style = {"description_width": "110px"}
        wide = widgets.Layout(width="560px")

        self.model = widgets.Dropdown(options=models, value=model, description="model",
                                      style=style)
        self.split = widgets.SelectionSlider(options=[("0", 0)], description="split",
                                             continuous_update=False, style=style, layout=wide)
        self.cut_info = widgets.HTML()
        self.cpu_freq = widgets.SelectionSlider(
            options=[(f"{f} MHz", f) for f in profile.frequencies_mhz],
            value=profile.max_freq, description="CPU frequency", continuous_update=False,
            style=style, layout=wide)
        self.edge_accel = widgets.ToggleButtons(options=list(testbed.edge_accels),
                                                description="edge accel.", style=style)
        self.cloud_accel = widgets.ToggleButtons(options=list(testbed.cloud_accels),
                                                 description="cloud accel.", style=style)
        self.codec = widgets.ToggleButtons(options=list(CODECS), value="fp32",
                                           description="codec", style=style)
        self.samples = widgets.BoundedIntText(value=samples, min=1, max=100_000,
                                              description="samples", style=style)
        self.run_button = widgets.Button(description="Run", icon="play", button_style="primary",
                                         tooltip="run split inference on the testbed")
        self.progress = widgets.IntProgress(value=0, min=0, max=len(STAGES),
                                            description="progress", style=style)
        self.status = widgets.HTML("not run yet")
        self.result = widgets.HTML()
        self.plot = widgets.Output()
        self.table = widgets.HTML()

        self._load_model(model, split)
        self.model.observe(lambda change: self._load_model(change["new"]), names="value")
        self.split.observe(lambda _: self._split_changed(), names="value")
        self.run_button.on_click(lambda _: self.run())

        self.run_button.add_class("dynasplit-run")
        self.split.add_class("dynasplit-split")
        self.cut_info.add_class("dynasplit-cut")
        self.result.add_class("dynasplit-result")
        self.widget = widgets.VBox([
            widgets.HTML(f"<b>Split inference</b> on testbed <code>{html.escape(testbed.name)}"
                         f"</code> (energy: {html.escape(testbed.energy_source)})"),
            self.model, self.split, self.cut_info, self.cpu_freq, self.edge_accel,
            self.cloud_accel, self.codec, self.samples,
            widgets.HBox([self.run_button, self.progress, self.status]),
            self.result, self.plot, self.table,
        ])
        self.widget.add_class("dynasplit-split-inference")

    # -- state ---------------------------------------------------------------------------

    def _load_model(self, name: str, split: int | None = None) -> None:
        """Read the model's cut points and rebuild the split slider over them."""
        try:
            self.split_model = self.testbed.split_model(name)
        except ToolkitError as exc:
            self.status.value = error_html(exc)
            return
        cuts = self.split_model.cut_points
        options = [(f"{c.split} · {c.layer}", c.split) for c in cuts]
        value = len(cuts) // 2 if split is None else self.split_model.check_split(split)
        self.split.options = options
        self.split.value = value
        self._split_changed()

    def _split_changed(self) -> None:
        split = int(self.split.value)
        cut = self.split_model.cut_points[split]
        where = ("everything runs in the cloud" if split == 0 else
                 "everything runs on the edge" if split == self.split_model.last_split else
                 "head on the edge, tail in the cloud")
        shape = "×".join(str(d) for d in cut.shape)
        self.cut_info.value = (
            f"<small>split {split} of 0..{self.split_model.last_split}: after "
            f"<code>{html.escape(cut.layer)}</code>, sends {shape} ({cut.bytes:,} B fp32); "
            f"edge {cut.head_macs:,} MACs, cloud {cut.tail_macs:,} MACs; {where}</small>")
        edge = ["none"] if split == 0 else list(self.testbed.edge_accels)
        cloud = (["none"] if split == self.split_model.last_split
                 else list(self.testbed.cloud_accels))
        for toggle, options in ((self.edge_accel, edge), (self.cloud_accel, cloud)):
            if list(toggle.options) != options:
                keep = toggle.value if toggle.value in options else options[0]
                toggle.options = options
                toggle.value = keep

    def config(self) -> Config:
        """The configuration the widgets describe now."""
        return Config(self.model.value, int(self.split.value), int(self.cpu_freq.value),
                      self.edge_accel.value, self.cloud_accel.value)

    # -- running -------------------------------------------------------------------------

    def _stage(self, index: int) -> None:
        self.progress.value = index
        if index < len(STAGES):
            self.status.value = f"{index + 1}/{len(STAGES)}: {STAGES[index]}…"

    def run(self) -> RunRecord | None:
        """Run the selected configuration (what the run button does).

        Returns:
            The run's record, or None when it failed; the error is shown in
            :attr:`status` (a panel never raises into the notebook).
        """
        self.run_button.disabled = True
        self.progress.bar_style = "info"
        try:
            config = self.config()
            self._stage(0)
            if not self._started:
                self.testbed.start()
                self._started = True
            self._stage(1)
            self.testbed.apply(config)
            self._stage(2)
            record = self.testbed.run(config, samples=int(self.samples.value),
                                      codec=self.codec.value)
            self._stage(3)
            self.records.append(record)
            self._show(record)
        except Exception as exc:
            self.progress.bar_style = "danger"
            self.status.value = error_html(exc)
            if not isinstance(exc, ToolkitError):
                raise  # a bug or a crashed worker: keep the traceback
            return None
        finally:
            self.run_button.disabled = False
        self.progress.value = len(STAGES)
        self.progress.bar_style = "success"
        self.status.value = f"done in {record.execute_s:.2f} s"
        return record

    def _show(self, r: RunRecord) -> None:
        from toolkit.plots import energy_kind, run_breakdown

        c = r.config
        cut = self.split_model.cut_points[c.split]
        self.result.value = (
            f"<b>split {c.split}</b> (after <code>{html.escape(cut.layer)}</code>), "
            f"{c.cpu_freq} MHz, edge {c.edge_accel}, cloud {c.cloud_accel}, codec {r.codec}, "
            f"{r.samples} samples<br>"
            f"latency {r.latency_ms:.3f} ms per sample = edge {r.edge_ms:.3f} + transfer "
            f"{r.transfer_ms:.3f} + cloud {r.cloud_ms:.3f} ms; sent {r.tensor_kb:.2f} KiB<br>"
            f"energy {r.energy_j:.4g} J per sample (edge {r.edge_energy_j:.4g} J, cloud "
            f"{r.cloud_energy_j:.4g} J), {energy_kind(r.energy_source)}: "
            f"<code>{html.escape(r.energy_source)}</code><br>"
            f"accuracy {r.accuracy:.3f} (labels: {html.escape(r.label_source)})"
            + ("" if r.throttled else "<br><small>note: the edge ran unthrottled (no cgroup "
               "CPU quota here), so the CPU frequency did not take effect</small>"))
        show_figure(self.plot, run_breakdown(r))
        show_table(self.table, self.history().drop(columns=["model", "energy_source"]))

    def history(self) -> pd.DataFrame:
        """Every run of this panel as a table (configuration, codec, results)."""
        rows = [{**r.config.as_dict(), "codec": r.codec, "samples": r.samples,
                 "latency_ms": r.latency_ms, "edge_ms": r.edge_ms,
                 "transfer_ms": r.transfer_ms, "cloud_ms": r.cloud_ms, "energy_j": r.energy_j,
                 "accuracy": r.accuracy, "energy_source": r.energy_source}
                for r in self.records]
        return pd.DataFrame(rows)

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the widgets and, if the panel created it, stop the testbed."""
        if self._close_testbed is not None:
            self._close_testbed()
        self._started = False
        super().close()
