"""Every shipped device profile loads and is consistent; the edge boards order as measured."""

from __future__ import annotations

from itertools import pairwise

import pytest

from toolkit.config import ACCELERATORS
from toolkit.energy.model import PowerModel
from toolkit.hardware import available_profiles, load_profile
from toolkit.hardware.edge_timing import HeadCost

#: measured throughput ratios the derived [timing] tables rest on (board time / Pi 4
#: time at the Pi 4's stock 1500 MHz), with the board's clock in that measurement
PI3B_RATIO, PI3B_MHZ = 3.33, 1400     # Allan 2019, TFLite SSD MobileNet v1/v2, Pi 3B+
JETSON_RATIO, JETSON_MHZ = 1.030, 1479  # DeepEdgeBench 2021, TFLite int8 MobileNetV2
PI4_MEASURED_MHZ = 1500

#: a head of VGG-like proportions: 1 GMAC, 2 M activations, 1 M weights, 0.1 M sent
REFERENCE = HeadCost(macs=10**9, activations=2 * 10**6, weights=10**6, out_elements=10**5)


def test_the_new_edge_boards_are_shipped():
    names = available_profiles()
    assert {"raspberry-pi-4", "raspberry-pi-3b", "jetson-nano", "cloud-gpu-server"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", available_profiles())
def test_shipped_profile_is_consistent(name):
    profile = load_profile(name)
    assert profile.name == name
    freqs = list(profile.frequencies_mhz)
    assert all(a < b for a, b in pairwise(freqs)), freqs
    busy, wait = profile.power.busy_w, profile.power.wait_w
    assert len(busy) == len(wait) == max(len(freqs), 1)
    assert all(b > 0 for b in busy) and all(w >= 0 for w in wait)
    assert all(b >= w for b, w in zip(busy, wait, strict=True)), (busy, wait)
    if profile.role == "edge":
        assert all(w > 0 for w in wait)
        # busy power does not fall as the clock rises
        assert all(a <= b for a, b in pairwise(busy)), busy
    assert profile.power.network_j_per_byte >= 0
    assert all(v >= 0 for v in profile.reconfiguration.values())
    # every accelerator it offers is a known one, with power figures
    assert set(profile.accelerators) <= set(ACCELERATORS[profile.role])
    model = PowerModel(profile)
    for accel in profile.accelerators:
        for freq in freqs or [None]:
            assert model.busy_w(freq, accel) >= model.wait_w(freq, accel) >= 0
    if profile.timing is not None:
        assert profile.timing.max_freq == profile.max_freq
        assert profile.timing.has("int8")
        assert set(profile.timing.tables) <= set(profile.accelerators)
        assert profile.timing.source
        # slower at a lower clock, never faster
        times = [profile.timing.time_ms(REFERENCE, f, "int8") for f in freqs]
        assert all(a >= b > 0 for a, b in pairwise(times)), times


def _head_ms(name: str, freq: int) -> float:
    return load_profile(name).timing.time_ms(REFERENCE, freq, "int8")


def test_derived_boards_reproduce_their_measured_ratio_to_the_pi4():
    pi4 = _head_ms("raspberry-pi-4", PI4_MEASURED_MHZ)
    assert _head_ms("raspberry-pi-3b", PI3B_MHZ) / pi4 == pytest.approx(PI3B_RATIO, rel=0.01)
    assert _head_ms("jetson-nano", JETSON_MHZ) / pi4 == pytest.approx(JETSON_RATIO, rel=0.01)


def test_boards_order_as_the_sources_measured():
    """Pi 3B+ slowest, the Jetson Nano's CPU a little behind the Pi 4 (int8)."""
    pi3 = _head_ms("raspberry-pi-3b", 1400)
    jetson = _head_ms("jetson-nano", 1479)
    pi4_stock = _head_ms("raspberry-pi-4", PI4_MEASURED_MHZ)
    pi4_max = _head_ms("raspberry-pi-4", 1800)
    assert pi3 > jetson > pi4_stock > pi4_max
    # each board at its top clock, and at its lowest
    assert _head_ms("raspberry-pi-3b", 600) > _head_ms("raspberry-pi-4", 600)
    assert _head_ms("jetson-nano", 918) > _head_ms("jetson-nano", 1479)


def test_derived_power_follows_its_sources():
    """Idle and top-clock busy power: Pi Dramble (Pi 3B+), DeepEdgeBench (Jetson Nano)."""
    pi3 = load_profile("raspberry-pi-3b").power
    assert pi3.wait_w[-1] == pytest.approx(1.9) and pi3.busy_w[-1] == pytest.approx(2.7)
    jetson = load_profile("jetson-nano").power
    assert jetson.wait_w[-1] == pytest.approx(1.1) and jetson.busy_w[-1] == pytest.approx(3.1)
    # the boards draw less than the Pi 4 while waiting, as measured
    pi4 = load_profile("raspberry-pi-4").power
    assert jetson.wait_w[0] < pi3.wait_w[0] < pi4.wait_w[0]


def test_scaled_cores_follow_the_frequency_from_the_emulated_cores_at_the_top():
    pi = load_profile("raspberry-pi-4")
    assert pi.scaled_cores(pi.max_freq) == pi.emulated_cores
    assert pi.scaled_cores(600) == pytest.approx(pi.emulated_cores * 600 / 1800)
