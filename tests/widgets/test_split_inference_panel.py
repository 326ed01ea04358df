"""SplitInferencePanel on the real local testbed (worker processes), driven by values and clicks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import psutil
import pytest

from toolkit import LocalTestbed, SplitModel, load_model
from toolkit.config import Config
from toolkit.errors import ToolkitError
from toolkit.widgets import SplitInferencePanel


@pytest.fixture(scope="module")
def testbed() -> Iterator[LocalTestbed]:
    tb = LocalTestbed(model="digits-cnn")
    try:
        yield tb
    finally:
        tb.close()


@pytest.fixture(scope="module")
def split_model() -> SplitModel:
    return SplitModel(load_model("digits-cnn"), name="digits-cnn")


def test_split_slider_offers_the_valid_cut_points_only(testbed, split_model) -> None:
    panel = SplitInferencePanel(testbed=testbed)
    assert list(panel.split.options) == [(f"{c.split} · {c.layer}", c.split)
                                         for c in split_model.cut_points]
    assert panel.cpu_freq.options == tuple(
        (f"{f} MHz", f) for f in testbed.edge_profile.frequencies_mhz)
    panel.split.value = 0
    assert panel.edge_accel.options == ("none",)
    assert "everything runs in the cloud" in panel.cut_info.value
    panel.split.value = split_model.last_split
    assert panel.cloud_accel.options == ("none",)
    assert panel.edge_accel.options == tuple(testbed.edge_accels)
    panel.split.value = 3
    panel.edge_accel.value = "int8"
    assert panel.config() == Config("digits-cnn", 3, testbed.edge_profile.max_freq, "int8")
    assert f"{split_model.cut_points[3].bytes:,} B" in panel.cut_info.value


def test_run_button_runs_the_selected_configuration(testbed) -> None:
    panel = SplitInferencePanel(testbed=testbed, samples=8)
    panel.split.value = 4
    panel.cpu_freq.value = 600
    panel.edge_accel.value = "int8"
    panel.codec.value = "fp16"
    panel.run_button.click()
    assert panel.progress.bar_style == "success", panel.status.value
    assert panel.progress.value == panel.progress.max
    record = panel.records[-1]
    assert record.config == Config("digits-cnn", 4, 600, "int8", "none")
    assert (record.codec, record.samples) == ("fp16", 8)
    assert record.latency_ms == pytest.approx(record.edge_ms + record.transfer_ms
                                              + record.cloud_ms, rel=1e-6)
    assert "<b>split 4</b>" in panel.result.value
    assert record.energy_source in panel.result.value and "modelled" in panel.result.value
    assert f"accuracy {record.accuracy:.3f}" in panel.result.value
    assert "image/png" in panel.plot.outputs[0]["data"]

    panel.split.value = 0
    panel.run_button.click()
    assert "<b>split 0</b>" in panel.result.value
    assert [r.config.split for r in panel.records] == [4, 0]
    assert list(panel.history()["split"]) == [4, 0]
    assert panel.table.value.count("<tr") == 3  # header + two runs


def test_an_unloadable_model_is_reported_in_the_panel(testbed) -> None:
    panel = SplitInferencePanel(testbed=testbed, models=["/nonexistent/model.keras"])
    before = panel.split.options
    panel.model.value = "/nonexistent/model.keras"
    assert "does not exist" in panel.status.value and "error" in panel.status.value
    assert panel.split.options == before


@pytest.mark.parametrize(("options", "message"), [
    ({"models": ["digits-cnn", "vgg-16"]}, "unknown model 'vgg-16'; valid: digits-cnn"),
    ({"samples": 0}, "samples must be an integer >= 1, got 0"),
    ({"testbed": "local"}, r"testbed must be a Testbed \(e\.g\. LocalTestbed\(\)\) or None"),
])
def test_a_name_that_is_no_model_is_named_before_the_panel_is_built(options, message) -> None:
    """A typo in ``models`` was found only when the user picked it in the menu."""
    with pytest.raises(ToolkitError, match=message):
        SplitInferencePanel(**options)


@pytest.mark.slow
def test_own_testbed_starts_on_first_run_and_stops_when_python_exits() -> None:
    script = textwrap.dedent("""
        import json
        from toolkit.widgets import SplitInferencePanel
        panel = SplitInferencePanel(samples=5)
        before = panel.testbed.edge_pid
        panel.run_button.click()
        first = panel.testbed.edge_pid
        panel.split.value = 2
        panel.run_button.click()
        print(json.dumps({"before": before, "first": first, "second": panel.testbed.edge_pid,
                          "cloud": panel.testbed._cloud.pid, "runs": len(panel.records),
                          "status": panel.status.value}))
        # no close(): the panel's finalizer must stop the workers at exit
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, check=True)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["before"] is None, "the testbed must start lazily, on the first run"
    assert info["runs"] == 2 and info["status"].startswith("done"), info
    assert info["first"] == info["second"], "the second run must reuse the started testbed"
    for pid in (info["first"], info["cloud"]):
        alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        assert not alive, f"worker {pid} outlived the Python process that owned the panel"
