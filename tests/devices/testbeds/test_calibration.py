"""Calibration of the emulated edge: the profile's fit to DynaSplit, the host's measurement."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from toolkit.cli import main
from toolkit.devices.testbeds.calibration import calibration_path, host_calibration, report
from toolkit.devices.testbeds.splinter_fit import (
    fit_splinter,
    fit_splinter_cloud,
    fit_splinter_link,
    splinter_edge_medians,
    vgg16_costs,
    vgg16_tail_costs,
)
from toolkit.errors import ConfigError, ToolkitError
from toolkit.hardware.profile import load_profile
from toolkit.paths import SPLINTER_DIR

POOL = SPLINTER_DIR / "simulation_pool_vgg16.csv"


@pytest.fixture(scope="module")
def costs():
    return vgg16_costs()


@pytest.mark.parametrize("accel", ["int8", "tpu-std", "tpu-max"])
def test_profile_timing_is_the_fit_to_dynasplits_pi(costs, accel):
    fit = fit_splinter(POOL, accel, costs)
    shipped = load_profile("raspberry-pi-4").timing.tables[accel]
    assert set(shipped.terms) == set(fit.terms.terms)
    for name, (a, b) in fit.terms.terms.items():
        assert shipped.terms[name] == pytest.approx((a, b), rel=0.01, abs=0.01), name
    assert fit.kept >= 0.9 * fit.cells
    # the shipped model reproduces DynaSplit's measured edge latency per cell
    med = splinter_edge_medians(POOL, accel)
    timing = load_profile("raspberry-pi-4").timing
    errors = sorted(abs(timing.time_ms(costs[row.layer], row.cpu_freq, accel) - row.edge_ms)
                    / row.edge_ms for row in med.itertuples())
    assert errors[len(errors) // 2] < 0.1


@pytest.mark.parametrize("accel", ["none", "gpu"])
def test_profile_tail_timing_is_the_fit_to_dynasplits_server(accel):
    costs = vgg16_tail_costs()
    fit = fit_splinter_cloud(POOL, accel, costs)
    timing = load_profile("cloud-gpu-server").tail_timing
    assert timing.tables[accel] == pytest.approx(fit.terms, rel=0.01)
    assert timing.dynasplit_request_ms[accel] == pytest.approx(fit.request_ms, rel=0.01)
    assert fit.layers == 22 and fit.median_rel_error < 0.05 and fit.max_rel_error < 0.1
    # with DynaSplit's per-request cost the shipped model gives their cloud latency
    for layer in (0, 10, 21):
        model = timing.time_ms(costs[layer], accel, timing.dynasplit_request_ms[accel])
        assert model == pytest.approx(fit.request_ms + sum(
            costs[layer].counts()[k] * v for k, v in fit.terms.items()), rel=0.01)
    # the emulated cloud charges the toolkit's own per-request cost, not DynaSplit's
    assert timing.request_ms < 5 < fit.request_ms
    assert timing.time_ms(None, accel) == 0.0


def test_a_pool_the_fits_cannot_use_is_one_line(tmp_path, costs):
    """`calibrate --fit-splinter POOL`: the pool is read by the one DynaSplit reader,
    and a pool too small to fit is named, not a numpy error."""
    trace = tmp_path / "trace.csv"
    trace.write_text("Index,Network,Latency\n0,vgg16,90.6\n")
    with pytest.raises(ToolkitError, match="is not a DynaSplit simulation-pool CSV"):
        fit_splinter_link(trace)
    small = tmp_path / "pool.csv"
    small.write_text("\n".join(POOL.read_text().splitlines()[:40]) + "\n")
    with pytest.raises(ToolkitError, match=r"pool.csv has 0 \(layer, cpu-freq\) cells with "
                                           r"int8 heads; the fit needs at least 8"):
        fit_splinter(small, "int8", costs)
    with pytest.raises(ToolkitError, match="layers with a gpu tail; the fit needs at least"):
        fit_splinter_cloud(small, "gpu", {})


def test_tail_timing_tables_are_validated(tmp_path):
    text = load_profile("cloud-gpu-server").path.read_text().replace("gmac = 2.390", "flops = 1")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=r"unknown key 'tail_timing.none.flops'; valid keys: "):
        load_profile(bad)


def test_host_calibration_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNASPLIT_CACHE", str(tmp_path))
    first = host_calibration(rounds=3)
    assert calibration_path().parent == tmp_path and calibration_path().is_file()
    assert first.int8_gmacs > 0 and first.fp32_gmacs > 0 and first.rounds == 3
    assert host_calibration() == first  # cached: not measured again
    # a damaged or hand-edited cache is not trusted: measured again, and replaced
    for damaged in ("[]", json.dumps({**json.loads(calibration_path().read_text()),
                                      "int8_gmacs": float("nan")})):
        calibration_path().write_text(damaged)
        again = host_calibration(rounds=3)
        assert again.int8_gmacs > 0 and again.measured_at >= first.measured_at
        assert json.loads(calibration_path().read_text())["int8_gmacs"] == again.int8_gmacs
    rep = report(load_profile("raspberry-pi-4"), first)
    freqs = [row["cpu_freq"] for row in rep.as_dict()["per_freq"]]
    assert freqs == [600, 800, 1000, 1200, 1400, 1600, 1800]
    assert rep.device_int8_gmacs[600] < rep.device_int8_gmacs[1800]
    assert rep.quota_cores(600) < rep.quota_cores(1800)


def test_an_unwritable_cache_loses_only_the_cache(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("DYNASPLIT_CACHE", str(blocker / "cache"))
    cal = host_calibration(rounds=3)
    assert cal.int8_gmacs > 0 and cal.fp32_gmacs > 0
    assert "cannot cache the host calibration" in caplog.text and "DYNASPLIT_CACHE" in caplog.text


def test_calibrate_command_prints_and_refuses(tmp_path, capsys):
    env = {**os.environ, "DYNASPLIT_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "toolkit", "calibrate", "--rounds", "3",
                          "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    assert data["schema"] == "dynasplit.calibration/1" and data["profile"] == "raspberry-pi-4"
    assert (tmp_path / data["cache"].rsplit("/", 1)[-1]).is_file()
    # the refusal comes before any measurement: the CLI in this process (exit status and
    # one line through ``python -m toolkit`` are tests/foundation/test_cli_errors.py's)
    capsys.readouterr()
    assert main(["calibrate", "--rounds", "1"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "dynasplit: error: --rounds must be at least 3, got 1")


def test_timing_tables_are_validated(tmp_path):
    text = (load_profile("raspberry-pi-4").path.read_text()
            .replace("mact = [9.57, 4.70]", "flops = [1.0, 2.0]"))
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=r"unknown key 'timing.int8.flops'; valid keys: gmac, "):
        load_profile(bad)
    text = load_profile("raspberry-pi-4").path.read_text()
    bad.write_text(text.replace("fp32_per_int8 = 1.565", "fp32_per_int8 = 0"))
    with pytest.raises(ConfigError,
                       match=r"key 'timing\.fp32_per_int8' should be a number > 0, got 0"):
        load_profile(bad)


def test_fp32_heads_take_the_devices_ratio_not_the_hosts():
    """A host with int8 matrix units (here 512 int8 against 60 fp32 GMAC/s, the AMX
    host this was found on) must not make the emulated Pi's fp32 heads slower: they take
    the profile's fp32/int8 ratio, and only a profile without one takes the host's."""
    from dataclasses import replace

    from toolkit.devices.testbeds.calibration import HostCalibration

    host = HostCalibration(host="h", cpu="c", int8_gmacs=512.0, fp32_gmacs=60.0,
                           int8_spread=0.1, fp32_spread=0.1, rounds=3, loadavg=0.0,
                           measured_at="2026-12-06T00:00:00+00:00", tensorflow="2.21.0")
    pi4 = load_profile("raspberry-pi-4")
    rep = report(pi4, host)
    assert rep.fp32_per_int8 == pytest.approx(199.5 / 127.47, abs=1e-3)  # DeepEdgeBench
    assert rep.slowdown(1800, "none") == pytest.approx(
        60.0 * rep.fp32_per_int8 / rep.device_int8_gmacs[1800])
    assert rep.slowdown(1800, "none") < rep.slowdown(1800) / 5  # the host's ratio: equal
    assert rep.as_dict()["device_fp32_per_int8_source"] == "profile"
    # the Jetson's own ratio reproduces DeepEdgeBench's float Jetson/Pi 4 ratio (0.914)
    nano = report(load_profile("jetson-nano"), host)
    assert nano.device_fp32_gmacs(1479) > 0
    jetson_over_pi = (load_profile("jetson-nano").timing.fp32_per_int8 * 1.030
                      / pi4.timing.fp32_per_int8)
    assert jetson_over_pi == pytest.approx(182.4 / 199.5, rel=0.01)
    bare = replace(pi4, timing=replace(pi4.timing, fp32_per_int8=None))
    assert report(bare, host).fp32_per_int8 == pytest.approx(512.0 / 60.0)
    assert report(bare, host).as_dict()["device_fp32_per_int8_source"] == "host"
