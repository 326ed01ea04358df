"""RaplMeter against a fake powercap tree in a temporary directory."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from toolkit.energy import MeterUnavailableError, RaplMeter
from toolkit.errors import ConfigError


def _zone(root: Path, folder: str, name: str, energy_uj: int, max_range_uj: int) -> Path:
    d = root / folder
    d.mkdir()
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return d


def _set(zone: Path, energy_uj: int) -> None:
    """Update a counter atomically, as sysfs reads see it."""
    tmp = zone / "energy_uj.tmp"
    tmp.write_text(f"{energy_uj}\n")
    os.replace(tmp, zone / "energy_uj")


@pytest.fixture
def powercap(tmp_path: Path) -> dict[str, Path]:
    """One package with core and dram sub-zones, like a desktop Intel CPU."""
    root = tmp_path / "powercap"
    root.mkdir()
    (root / "intel-rapl").mkdir()  # the control-type folder, not a zone
    zones = {
        "root": root,
        "package-0": _zone(root, "intel-rapl:0", "package-0", 4_000_000, 5_000_000),
        "core": _zone(root, "intel-rapl:0:0", "core", 100, 5_000_000),
        "dram": _zone(root, "intel-rapl:0:1", "dram", 900_000, 1_000_000),
    }
    return zones


def test_counter_difference_with_wraparound(powercap):
    # A long period: only the begin and end reads happen, both under test control.
    meter = RaplMeter(powercap["root"], period_s=60)
    assert meter.domains == ["package-0", "dram"]
    meter.begin_window()
    _set(powercap["package-0"], 1_000_000)  # wrapped: 4.0 J -> 5.0 J range -> 1.0 J
    _set(powercap["dram"], 950_000)  # no wrap
    _set(powercap["core"], 2_000_100)  # not selected
    m = meter.end_window()
    assert m.source == "rapl"
    assert m.domains["package-0"] == pytest.approx(2.0)  # 1.0 + 5.0 - 4.0
    assert m.domains["dram"] == pytest.approx(0.05)
    assert "core" not in m.domains
    assert m.joules == pytest.approx(2.05)
    assert len(m.timestamps) == len(m.watts) == 1
    assert m.watts[0] == pytest.approx(2.05 / m.duration_s)


def test_selected_core_domain_is_its_own_total(powercap):
    meter = RaplMeter(powercap["root"], domains=["core"], period_s=60)
    meter.begin_window()
    _set(powercap["core"], 700_100)
    _set(powercap["package-0"], 4_500_000)
    m = meter.end_window()
    assert m.domains == {"core": pytest.approx(0.7)}
    assert m.joules == pytest.approx(0.7)


def test_live_counters_several_wraps_in_one_window(powercap):
    """While the window is open, a writer thread plays a CPU whose package counter
    gains 100 mJ and DRAM counter 15 mJ every 2 ms, wrapping as sysfs does."""
    steps, pkg_step, dram_step = 120, 100_000, 15_000  # uJ
    pkg, dram = 4_000_000, 900_000

    def play() -> None:
        for i in range(1, steps + 1):
            _set(powercap["package-0"], (pkg + i * pkg_step) % 5_000_000)
            _set(powercap["dram"], (dram + i * dram_step) % 1_000_000)
            time.sleep(0.002)

    meter = RaplMeter(powercap["root"], period_s=0.01)
    meter.begin_window()
    writer = threading.Thread(target=play)
    writer.start()
    writer.join()
    m = meter.end_window()
    # 12 J through a 5 J package counter: it wrapped at least twice in the window
    assert m.domains["package-0"] == pytest.approx(steps * pkg_step / 1e6)
    assert m.domains["dram"] == pytest.approx(steps * dram_step / 1e6)
    assert m.joules == pytest.approx(steps * (pkg_step + dram_step) / 1e6)
    assert len(m.watts) >= 3 and (m.watts >= 0).all()


def test_duplicate_zone_names_are_qualified(tmp_path):
    root = tmp_path / "pc"
    root.mkdir()
    for n in (0, 1):
        _zone(root, f"intel-rapl:{n}", f"package-{n}", 0, 10**9)
        _zone(root, f"intel-rapl:{n}:0", "dram", 0, 10**9)
    meter = RaplMeter(root, period_s=60)
    assert meter.domains == ["package-0", "package-0/dram", "package-1", "package-1/dram"]


def test_unknown_domain_lists_the_available_ones(powercap):
    with pytest.raises(ConfigError, match=r"unknown domain.*gpu.*available: package-0, core, dram"):
        RaplMeter(powercap["root"], domains=["gpu"])


def test_missing_powercap_names_meter_and_path(tmp_path):
    with pytest.raises(MeterUnavailableError, match=r"rapl meter: .*nowhere does not exist"):
        RaplMeter(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeterUnavailableError, match=r"no intel-rapl:\* zones under .*empty"):
        RaplMeter(tmp_path / "empty")


def test_window_misuse_is_reported(powercap):
    meter = RaplMeter(powercap["root"], period_s=60)
    with pytest.raises(Exception, match="no measurement window is open"):
        meter.end_window()
    meter.begin_window()
    with pytest.raises(Exception, match="already open"):
        meter.begin_window()
    meter.end_window()
