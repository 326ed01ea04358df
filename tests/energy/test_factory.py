"""open_meter: specs, validation, and the explicit fallback to the power model."""

from __future__ import annotations

import logging
import time

import pytest

from toolkit.energy import (
    MeterUnavailableError,
    PowerModel,
    PowerModelMeter,
    RaplMeter,
    open_meter,
)
from toolkit.errors import ConfigError
from toolkit.hardware.profile import load_profile


@pytest.fixture
def pi4() -> PowerModel:
    return PowerModel(load_profile("raspberry-pi-4"))


def _powercap(root):
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("1000\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    return root


def test_spec_builds_the_meter(tmp_path):
    meter = open_meter({"kind": "rapl", "root": _powercap(tmp_path / "pc"), "period_s": 0.5})
    assert isinstance(meter, RaplMeter) and meter.source == "rapl"
    meter = open_meter({"kind": "model", "profile": "raspberry-pi-4", "freq": 600})
    assert isinstance(meter, PowerModelMeter) and meter.source == "model:raspberry-pi-4"
    assert meter.busy_w == 2.95


def test_missing_hardware_without_fallback_is_an_explicit_error(tmp_path):
    with pytest.raises(MeterUnavailableError, match=r"rapl meter: .*absent does not exist"):
        open_meter({"kind": "rapl", "root": tmp_path / "absent"})


def test_missing_hardware_with_fallback_returns_the_model_meter(tmp_path, pi4, caplog):
    caplog.set_level(logging.WARNING, logger="toolkit.energy.factory")
    meter = open_meter({"kind": "rapl", "root": tmp_path / "absent"}, fallback=pi4)
    assert isinstance(meter, PowerModelMeter)
    assert meter.source == "model:raspberry-pi-4"  # what the cube's energy_source records
    assert "rapl meter" in caplog.text and "falling back" in caplog.text
    with meter.window() as out:
        time.sleep(0.05)
    assert out[0].source == "model:raspberry-pi-4" and out[0].joules > 0


def test_fallback_may_be_a_configured_model_meter(tmp_path, pi4):
    configured = PowerModelMeter(pi4, freq=800, accel="tpu-std")
    meter = open_meter({"kind": "ina219", "bus": 249}, fallback=configured)
    assert meter is configured


def test_configuration_mistakes_are_never_hidden_by_the_fallback(tmp_path, pi4):
    root = _powercap(tmp_path / "pc")
    with pytest.raises(ConfigError, match=r"unknown domain.*available: package-0"):
        open_meter({"kind": "rapl", "root": root, "domains": ["gpu"]}, fallback=pi4)
    with pytest.raises(ConfigError, match=r"unknown meter kind 'joulescope'; valid: rapl, nvml"):
        open_meter("joulescope", fallback=pi4)
    with pytest.raises(ConfigError, match=r"'rapl' has no option\(s\) port; valid: root, domains"):
        open_meter({"kind": "rapl", "port": 1}, fallback=pi4)
    with pytest.raises(ConfigError, match=r"'model' needs 'profile'"):
        open_meter("model")
    with pytest.raises(ConfigError, match=r"a mapping with 'kind'"):
        open_meter(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "model", "profile": 3}, "needs 'profile' .*got 3"),
    ({"kind": "model", "profile": "raspberry-pi-4", "pid": "x"}, "pid must be a process id"),
    ({"kind": "model", "profile": "raspberry-pi-4", "pid": -1}, "pid must be a process id"),
    ({"kind": "model", "profile": "raspberry-pi-4", "accel": ["tpu-std"]},
     "no power figures for accelerator \\['tpu-std'\\]; it has: none, int8"),
    ({"kind": "rapl", "root": 3}, "root must be a folder path, got 3"),
])
def test_a_bad_option_type_is_a_config_error(spec, message):
    """Inventory meter options of the wrong type (TOML values) are named, not a TypeError."""
    with pytest.raises(ConfigError, match=message):
        open_meter(spec)
