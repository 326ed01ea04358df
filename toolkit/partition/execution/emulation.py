"""What an emulated device is like to the cost model: its throughput and fixed costs.

:func:`emulated_macs_per_s` is the fp32 throughput a device worker throttled to
a profile runs at (the host's calibration × its quota).

Besides, the cost model counts MACs and bytes; a worker also pays a framework's fixed
cost per instruction (one eager TensorFlow call each) and a fixed CPU cost per
tensor it sends or receives (encoding, the runtime's framing, the event loop,
decoding). :func:`host_overheads` measures both here, in this process, on a
one-instruction plan of a one-layer model and on tiny tensors sent over a
loopback TCP connection with the workers' own code -- never on the runs a
prediction is compared with. :func:`emulated_cost_model` scales them by the
quota that throttles a device worker (the same factor as its throughput), so
that a prediction describes the emulated devices.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from functools import lru_cache

import numpy as np

from toolkit.aio import BackgroundLoop
from toolkit.devices.testbeds.calibration import host_calibration, quota_cores
from toolkit.hardware.profile import DeviceProfile, load_profile
from toolkit.partition.cost.per_device import CostModel

__all__ = ["emulated_cost_model", "emulated_macs_per_s", "host_overheads"]


def emulated_macs_per_s(profile: str | DeviceProfile, cpu_freq: int | None = None, *,
                        throttled: bool = True) -> float:
    """The fp32 throughput a device worker emulating ``profile`` runs at, MAC/s.

    The host's calibrated fp32 throughput (the reference block on one thread,
    :func:`~toolkit.devices.testbeds.calibration.host_calibration`) times the
    host cores its quota gives it (capped at one core, as
    :meth:`~toolkit.partition.PartitionCluster.quota_cores`); unthrottled, one host core's. A
    prediction of a measured run at this throughput describes the emulated
    device rather than an assumed one.
    """
    profile = profile if isinstance(profile, DeviceProfile) else load_profile(profile)
    freq = profile.max_freq if cpu_freq is None else profile.check_freq(cpu_freq)
    host = host_calibration()
    cores = min(quota_cores(profile, freq, "none", host), 1.0) if throttled else 1.0
    return host.fp32_gmacs * 1e9 * cores


def _median_s(fn, rounds: int, calls: int) -> float:
    fn()
    per_round = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        per_round.append((time.perf_counter() - t0) / calls)
    return statistics.median(per_round)


def _step_s(rounds: int) -> float:
    """Seconds per instruction: a 1×1 convolution on a 1×1×1 input, as a worker runs it."""
    import keras
    import tensorflow as tf

    from toolkit.partition.model.execute import run_steps
    from toolkit.partition.strategies.registry import partition

    model = keras.Sequential([keras.Input((1, 1, 1)), keras.layers.Conv2D(1, 1)])
    plan = partition(model, 1, "layer-wise")
    steps = [st for stage in plan.stages for st in stage.steps[0]]
    store = {"input": tf.convert_to_tensor(np.ones((1, 1, 1, 1), np.float32))}
    return _median_s(lambda: run_steps(tuple(steps), store), rounds, 200) / len(steps)


async def _transfer_s(rounds: int) -> float:
    """Seconds to send and receive one small tensor with the workers' code (both ends)."""
    import tensorflow as tf

    from toolkit.models.codecs import decode, encode
    from toolkit.runtime.framing import read_frame, write_tensor

    got: asyncio.Queue = asyncio.Queue()
    served = asyncio.Event()

    async def serve(reader, writer):
        while (frame := await read_frame(reader)) is not None:
            got.put_nowait(tf.convert_to_tensor(decode(frame.tensor)))
        writer.close()
        served.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    x = tf.convert_to_tensor(np.ones((1, 4, 4, 4), np.float32))

    async def one() -> None:
        write_tensor(writer, encode(np.asarray(x), "fp32"), 0, {"name": "t"})
        await writer.drain()
        await got.get()

    per_round = []
    try:
        for _ in range(rounds + 1):
            t0 = time.perf_counter()
            for _ in range(100):
                await one()
            per_round.append((time.perf_counter() - t0) / 100)
    finally:
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(served.wait(), 10)
        server.close()
        await server.wait_closed()
    return statistics.median(per_round[1:])


@lru_cache(maxsize=1)
def host_overheads(rounds: int = 7) -> tuple[float, float]:
    """(seconds per instruction, seconds per transfer) on this host, at full speed.

    The transfer figure covers both ends (the sender's encoding and framing and
    the receiver's reading and decoding); the cost model charges half to each.
    Measured once per process (medians of ``rounds`` rounds), on a private event
    loop, so that it works where one is already running (a notebook).
    """
    with BackgroundLoop("dynasplit-overheads") as loop:
        transfer_s = loop.run(_transfer_s(rounds))
    return _step_s(rounds), transfer_s


def emulated_cost_model(model: CostModel, profile: str | DeviceProfile,
                        cpu_freq: int | None = None, *, throttled: bool = True) -> CostModel:
    """``model`` at the throughput and with the fixed costs of an emulated ``profile`` device.

    ``macs_per_s`` becomes :func:`emulated_macs_per_s`
    and the host's per-instruction and per-transfer times
    (:func:`host_overheads`) are scaled by the same factor: a worker throttled
    to ``c`` host cores takes ``1 / c`` times the host's time for everything.
    """
    macs_per_s = emulated_macs_per_s(profile, cpu_freq, throttled=throttled)
    slowdown = host_calibration().fp32_gmacs * 1e9 / macs_per_s
    step_s, transfer_s = host_overheads()
    return dataclasses.replace(model, macs_per_s=macs_per_s,
                               step_overhead_ms=step_s * 1e3 * slowdown,
                               transfer_overhead_ms=transfer_s / 2 * 1e3 * slowdown)
