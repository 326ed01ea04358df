"""Host calibration for the emulated edge: how fast this machine runs the edge's ops.

The local emulated testbed makes the edge take the time a Raspberry Pi takes
(the profile's ``[timing]`` model, fitted to DynaSplit's measurements). To do
that it must know how fast *this* host is: :func:`measure_host` times a
reference convolution block -- the operations a CNN head consists of -- as a
full-int8 LiteRT model and as an fp32 Keras model, on one thread, several
rounds, and keeps the medians (robust to other load on a shared machine). The
result is cached per machine under ``~/.cache/dynasplit/`` (``DYNASPLIT_CACHE``)
and redone by ``dynasplit calibrate``.

What the figures are used for:

* ``pad`` emulation (the default): the head runs at host speed and the edge
  worker waits out the rest of the device's time. The host must be faster than
  the device (:attr:`CalibrationReport.pad_ok`). The Pi's fp32 (Keras) time is
  not in DynaSplit's data; it is taken as its int8 time × the *device's*
  fp32/int8 time ratio, the profile's ``timing.fp32_per_int8`` (for the Pi 4,
  1.565 from DeepEdgeBench's TFLite MobileNetV2 runs); only a profile without
  one falls back to the host's measured ratio
  (:attr:`HostCalibration.fp32_per_int8`). The host's ratio says little about a
  Pi: a host with int8 matrix units (AMX, VNNI) runs int8 8-9 times faster
  than fp32, and with its ratio the emulated Pi's fp32 heads were 5 times
  slower than with the Pi's own.
* ``quota`` emulation: the edge worker's cgroup gets ``device throughput / host
  throughput`` host cores at each frequency (:meth:`CalibrationReport.quota_cores`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError, in_range
from toolkit.fileio import atomic_output, utc_timestamp
from toolkit.hardware.edge_timing import REFERENCE_BLOCK
from toolkit.hardware.profile import DeviceProfile

__all__ = ["CalibrationReport", "HostCalibration", "calibration_path", "host_calibration",
           "measure_host", "quota_cores", "report"]

log = logging.getLogger(__name__)

#: the reference block (:data:`~toolkit.hardware.edge_timing.REFERENCE_BLOCK`): its input shape
REF_SHAPE = (28, 28, 64)
REF_COST = REFERENCE_BLOCK
SCHEMA = "dynasplit.calibration/1"


def _cache_dir() -> Path:
    return Path(os.environ.get("DYNASPLIT_CACHE", Path.home() / ".cache" / "dynasplit"))


def calibration_path() -> Path:
    """The cache file of this machine's calibration."""
    return _cache_dir() / f"calibration-{socket.gethostname()}.json"


@dataclass(frozen=True)
class HostCalibration:
    """This host's measured throughput for the edge's ops, one thread.

    Attributes:
        host: host name; cpu: CPU model.
        int8_gmacs, fp32_gmacs: median throughput (10⁹ MAC/s) of the reference
            block as int8 LiteRT and fp32 Keras.
        int8_spread, fp32_spread: (max - min) / median over the rounds.
        rounds: timing rounds per kind; loadavg: 1-minute load when measured.
        measured_at: ISO time; tensorflow: its version.
    """

    host: str
    cpu: str
    int8_gmacs: float
    fp32_gmacs: float
    int8_spread: float
    fp32_spread: float
    rounds: int
    loadavg: float
    measured_at: str
    tensorflow: str
    schema: str = SCHEMA

    @property
    def fp32_per_int8(self) -> float:
        """Host fp32 time per MAC over int8 time per MAC (> 1: int8 is faster)."""
        return self.int8_gmacs / self.fp32_gmacs


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _time_rounds(fn, x, rounds: int, min_round_s: float = 0.15) -> list[float]:
    """Seconds per call, one figure per round (each round at least ``min_round_s``)."""
    fn(x)
    t0 = time.perf_counter()
    fn(x)
    per = max(time.perf_counter() - t0, 1e-5)
    n = max(3, int(min_round_s / per))
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(x)
        out.append((time.perf_counter() - t0) / n)
    return out


def _reference_block():
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(REF_SHAPE),
                             layers.Conv2D(64, 3, padding="same", activation="relu"),
                             layers.Conv2D(64, 3, padding="same", activation="relu")],
                            name="calibration_block")


def measure_host(rounds: int = 9) -> HostCalibration:
    """Measure this host in this process (call with TensorFlow limited to one thread).

    :func:`host_calibration` runs it in a fresh one-thread process; call this
    directly only from such a process.
    """
    import numpy as np
    import tensorflow as tf

    from toolkit.models.quantize import Int8Runner, quantize_int8
    from toolkit.runtime.stages import keras_runner

    if rounds < 3:
        raise ToolkitError(f"calibration needs at least 3 rounds, got {rounds}")
    model = _reference_block()
    rng = np.random.default_rng(0)
    x = rng.random((64, *REF_SHAPE), dtype=np.float32)
    int8 = Int8Runner(quantize_int8(model, x, n_calib=32), num_threads=1)
    fp32 = keras_runner(model)
    sample = x[:1]
    timings = {"int8": _time_rounds(int8, sample, rounds),
               "fp32": _time_rounds(fp32, sample, rounds)}
    gmacs = {k: REF_COST.macs / statistics.median(v) / 1e9 for k, v in timings.items()}
    spread = {k: (max(v) - min(v)) / statistics.median(v) for k, v in timings.items()}
    return HostCalibration(
        host=socket.gethostname(), cpu=_cpu_name(),
        int8_gmacs=round(gmacs["int8"], 3), fp32_gmacs=round(gmacs["fp32"], 3),
        int8_spread=round(spread["int8"], 3), fp32_spread=round(spread["fp32"], 3),
        rounds=rounds, loadavg=round(os.getloadavg()[0], 2),
        measured_at=utc_timestamp(),
        tensorflow=tf.__version__,
    )


def _load(path: Path) -> HostCalibration | None:
    """The cached calibration, or None where there is none or it is not one this
    version wrote (another schema, a damaged or hand-edited file): measure again."""
    try:
        data = json.loads(path.read_text())
        cal = HostCalibration(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None
    if cal is None or cal.schema != SCHEMA or not all(
            in_range(v, low_open=True) for v in (cal.int8_gmacs, cal.fp32_gmacs)):
        return None
    return cal


def host_calibration(refresh: bool = False, rounds: int = 9) -> HostCalibration:
    """This machine's calibration: the cached one, or measured now (and cached).

    The measurement runs in a separate process limited to one thread, so that
    it is the same whichever process asks (a notebook's TensorFlow may already
    use every core).

    Args:
        refresh: measure again even where a cached calibration exists.
        rounds: timing rounds per kind (medians are kept).
    """
    path = calibration_path()
    if not refresh:
        cached = _load(path)
        if cached is not None and cached.host == socket.gethostname():
            return cached
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "toolkit.devices.testbeds.calibration",
                           "--rounds", str(rounds)], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=600)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ToolkitError(f"host calibration failed: {tail[0]}")
    cal = HostCalibration(**json.loads(proc.stdout.strip().splitlines()[-1]))
    try:  # a temporary file of its own: two processes may calibrate at once
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(asdict(cal), indent=2) + "\n")
    except ToolkitError as exc:  # the measurement stands; only the cache is lost
        log.warning("cannot cache the host calibration (%s); set DYNASPLIT_CACHE to a "
                    "writable folder", exc)
    return cal


@dataclass(frozen=True)
class CalibrationReport:
    """The host against a device profile, per CPU frequency, for the reference block."""

    host: HostCalibration
    profile: str
    device_int8_gmacs: dict[int, float]
    device_fp32_per_int8: float | None = None

    @property
    def fp32_per_int8(self) -> float:
        """The device's fp32 time over its int8 time: its profile's, else the host's."""
        if self.device_fp32_per_int8 is not None:
            return self.device_fp32_per_int8
        return self.host.fp32_per_int8

    def device_fp32_gmacs(self, freq: int) -> float:
        """Device fp32 throughput: int8 throughput / :attr:`fp32_per_int8`."""
        return self.device_int8_gmacs[freq] / self.fp32_per_int8

    def slowdown(self, freq: int, accel: str = "int8") -> float:
        """How many times slower the device is than the host (one thread)."""
        if accel == "none":
            return self.host.fp32_gmacs / self.device_fp32_gmacs(freq)
        return self.host.int8_gmacs / self.device_int8_gmacs[freq]

    def quota_cores(self, freq: int, accel: str = "int8") -> float:
        """Host cores that run the edge's ops at the device's speed."""
        return 1.0 / self.slowdown(freq, accel)

    @property
    def pad_ok(self) -> bool:
        """Whether the host is faster than the device at every frequency (padding works)."""
        return all(self.slowdown(f, a) > 1.0 for f in self.device_int8_gmacs
                   for a in ("int8", "none"))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (what ``dynasplit calibrate --json`` prints)."""
        return {
            "schema": SCHEMA, "host": asdict(self.host), "profile": self.profile,
            "cache": str(calibration_path()),
            "fp32_per_int8": round(self.host.fp32_per_int8, 3),
            "device_fp32_per_int8": round(self.fp32_per_int8, 3),
            "device_fp32_per_int8_source": ("profile" if self.device_fp32_per_int8
                                            is not None else "host"),
            "per_freq": [{"cpu_freq": f, "device_int8_gmacs": round(g, 3),
                          "device_fp32_gmacs": round(self.device_fp32_gmacs(f), 3),
                          "slowdown_int8": round(self.slowdown(f), 2),
                          "slowdown_fp32": round(self.slowdown(f, "none"), 2),
                          "quota_cores_int8": round(self.quota_cores(f), 4)}
                         for f, g in self.device_int8_gmacs.items()],
            "pad_ok": self.pad_ok,
        }


def report(profile: DeviceProfile, host: HostCalibration) -> CalibrationReport:
    """Compare the host with ``profile``'s timing model on the reference block."""
    if profile.timing is None or not profile.timing.has("int8"):
        raise ToolkitError(f"profile {profile.name!r} has no [timing.int8] table to "
                           "calibrate against")
    dev = {f: REF_COST.macs / (profile.timing.time_ms(REF_COST, f, "int8") / 1e3) / 1e9
           for f in profile.frequencies_mhz}
    return CalibrationReport(host, profile.name, dev, profile.timing.fp32_per_int8)


def quota_cores(profile: DeviceProfile, freq: int, accel: str = "int8",
                host: HostCalibration | None = None) -> float:
    """Host cores that run ``profile``'s ops at its speed at ``freq``: the emulation rule.

    Calibrated (device / host throughput for ``accel``'s ops: fp32 for ``none``,
    int8 otherwise; :meth:`CalibrationReport.quota_cores`) where the profile has a
    ``[timing.int8]`` table, otherwise ``emulated_cores × f / f_max``
    (:meth:`~toolkit.hardware.profile.DeviceProfile.scaled_cores`). The local
    testbed's quota timing and the partition cluster's device workers use it.

    Args:
        profile: the emulated device.
        freq: its CPU frequency, MHz.
        accel: ``none`` (fp32 Keras ops) or an int8 accelerator.
        host: this host's calibration (default: :func:`host_calibration`).
    """
    timing = profile.timing
    if timing is None or not timing.has("int8"):
        return profile.scaled_cores(freq)
    calibration = report(profile, host or host_calibration())
    return calibration.quota_cores(freq, "none" if accel == "none" else "int8")


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m toolkit.devices.testbeds.calibration")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    from toolkit.runtime.stages import configure_threads

    configure_threads(1)
    print(json.dumps(asdict(measure_host(args.rounds))))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
