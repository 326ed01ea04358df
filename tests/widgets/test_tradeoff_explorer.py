"""TradeoffExplorer driven through its widgets' values."""

from __future__ import annotations

import base64

import pytest
import xarray as xr

from toolkit.cube import cube_from_runs, merge_cubes
from toolkit.errors import ToolkitError
from toolkit.rules import RULES
from toolkit.splinter import read_pool
from toolkit.widgets import TradeoffExplorer


def _title(explorer: TradeoffExplorer) -> str:
    return explorer.plot.outputs[0]["data"]["text/plain"]


def _exhaustive(shown, threshold):
    """DynaSplit's rule stated plainly: least energy meeting the threshold, else fastest."""
    ok = shown[shown.latency_ms <= threshold]
    best = ok.sort_values(["energy_j"]).iloc[0] if len(ok) else \
        shown.sort_values("latency_ms").iloc[0]
    return int(best.split), int(best.cpu_freq), best.edge_accel, best.cloud_accel


def test_shows_every_configuration_and_each_rules_pick(toy_cube) -> None:
    explorer = TradeoffExplorer(toy_cube, threshold=30.0)
    shown = explorer.shown()
    assert len(shown) == len(explorer.means) > 0
    assert f"{len(shown)} of {len(shown)} configurations shown" in explorer.summary.value
    picks = explorer.picks().set_index("rule")
    assert len(picks) == len(RULES) + 1 and "dynasplit" in picks.index
    assert base64.b64decode(explorer.plot.outputs[0]["data"]["image/png"])[:4] == b"\x89PNG"
    exhaustive = picks.loc["dynasplit-exhaustive (every configuration)"]
    assert (exhaustive.split, exhaustive.cpu_freq, exhaustive.edge_accel,
            exhaustive.cloud_accel) == _exhaustive(shown, 30.0)
    dynasplit = picks.loc["dynasplit"]
    assert dynasplit.latency_ms <= 30.0 and dynasplit.meets
    assert dynasplit.energy_j >= exhaustive.energy_j - 1e-12   # it sees every configuration


def test_threshold_below_every_latency_picks_the_fastest(toy_cube) -> None:
    explorer = TradeoffExplorer(toy_cube)
    explorer.threshold.value = explorer.threshold.min
    fastest = explorer.shown().latency_ms.min()
    picks = explorer.picks()
    exhaustive = picks[picks.rule.str.startswith("dynasplit-exhaustive")].iloc[0]
    assert exhaustive.latency_ms == pytest.approx(fastest)
    assert "latency threshold of" in explorer.summary.value


def test_filters_restrict_the_shown_configurations_and_the_picks(toy_cube) -> None:
    explorer = TradeoffExplorer(toy_cube, threshold=60.0)
    explorer.edge_accel.value = ("none",)
    explorer.cpu_freq.value = (600, 1800)
    shown = explorer.shown()
    assert set(shown.edge_accel) == {"none"} and set(shown.cpu_freq) == {600, 1800}
    assert set(explorer.picks().edge_accel) == {"none"}
    assert set(explorer.picks().cpu_freq) <= {600, 1800}
    assert explorer.picks().iloc[-1]["candidates"] == len(shown)
    explorer.cloud_accel.value = ()
    assert "no configuration matches" in explorer.summary.value
    assert explorer.picks().empty and explorer.plot.outputs == ()


def test_axes_and_tail_target_follow_the_controls(toy_cube) -> None:
    explorer = TradeoffExplorer(toy_cube, threshold=40.0)
    explorer.x.value, explorer.y.value, explorer.colour.value = "energy_j", "accuracy", "none"
    assert "toy: accuracy vs energy_j" in _title(explorer)
    explorer.target.value = 0.9
    assert "tail τ=0.900" in set(explorer.picks().rule)


def test_a_cube_with_several_models_needs_a_model(toy_cube, make_toy_runs) -> None:
    both = merge_cubes([toy_cube, cube_from_runs(make_toy_runs("other"),
                                                 {"energy_source": "model:toy"})])
    with pytest.raises(ToolkitError, match="several models"):
        TradeoffExplorer(both)
    with pytest.raises(ToolkitError, match="valid: other, toy"):
        TradeoffExplorer(both, model="nope")
    assert set(TradeoffExplorer(both, model="other").means.model) == {"other"}


def test_a_cube_file_is_taken_and_what_is_no_cube_is_named(toy_cube, tmp_path) -> None:
    from toolkit.cube import save_cube

    path = save_cube(toy_cube, tmp_path / "toy.nc")
    assert TradeoffExplorer(str(path)).means.equals(TradeoffExplorer(toy_cube).means)
    with pytest.raises(ToolkitError, match=r"the trade-off explorer needs a cube \(an xarray "
                                           r"Dataset.*got NoneType"):
        TradeoffExplorer(None)
    with pytest.raises(ToolkitError, match=r"the cube has no energy_j; the trade-off explorer "
                                           r"needs latency_ms, energy_j per run"):
        TradeoffExplorer(toy_cube.drop_vars("energy_j"))
    with pytest.raises(ToolkitError, match=r"cube file .*missing.nc does not exist"):
        TradeoffExplorer(tmp_path / "missing.nc")


def test_on_dynasplit_vgg16_pool(splinter_dir) -> None:
    cube: xr.Dataset = read_pool(splinter_dir / "simulation_pool_vgg16.csv")
    explorer = TradeoffExplorer(cube, threshold=500.0)
    picks = explorer.picks().set_index("rule")
    exhaustive = picks.loc["dynasplit-exhaustive (every configuration)"]
    assert exhaustive.energy_j < 10  # edge-only with the TPU
    assert (picks.latency_ms <= 500).all()
    assert "meter:splinter" in explorer.widget.children[0].value


def test_works_on_the_demo_cube_with_its_codec_dimension(demo_run) -> None:
    """The demo's cube varies the codec too: every rule's pick names one, and the
    loosest threshold lets DynaSplit's rule pick another split than the tightest."""
    from toolkit.cube import open_cube

    cube = open_cube(demo_run[0] / "demo.nc")
    assert "codec" in cube.dims
    explorer = TradeoffExplorer(cube)
    splits = {}
    for end in ("min", "max"):
        explorer.threshold.value = getattr(explorer.threshold, end)
        assert "error" not in explorer.summary.value, explorer.summary.value
        picks = explorer.picks().set_index("rule")
        assert len(picks) == len(RULES) + 1 and picks["codec"].notna().all()
        splits[end] = int(picks.loc["dynasplit", "split"])
    assert splits["min"] != splits["max"], splits
    explorer.close()
