"""Runtime benchmark: per-request cost of the wire framing vs a raw socket and gRPC.

For a 1 MB and a 10 MB float32 activation (1 MiB and 10 MiB), times one *request*
between this process (the sender, playing the edge) and a real receiver process
over loopback TCP: the sender encodes the tensor and sends it, the receiver
reads and decodes it and answers with a tiny acknowledgement, and the sender's
clock stops when the acknowledgement arrives. Every transport is measured in
the same run, its requests interleaved with the others' (the order rotates each
round) so that drift on a shared machine hits all of them alike:

* ``framing``: :func:`toolkit.models.codecs.encode` + :func:`~toolkit.runtime.framing.write_tensor`
  on the edge worker's streams, received by :func:`toolkit.runtime.worker.serve`
  (the workers' own server) with :func:`~toolkit.runtime.framing.read_frame` +
  :func:`~toolkit.models.codecs.decode`, acknowledged with a JSON frame; codecs
  ``fp32`` (the ratio's basis), ``fp16`` and ``int8`` (for information);
* ``framing_plain_asyncio_fp32``: the same on plain ``asyncio.open_connection``
  / ``asyncio.start_server`` streams, to show what :mod:`toolkit.runtime.streams`
  saves;
* ``raw_socket``: blocking ``sendall`` of the same fp32 bytes, received with
  ``recv_into`` a preallocated buffer, acknowledged with one byte;
* ``grpc``: ``tf.io.serialize_tensor`` + a bidirectional gRPC stream of raw
  bytes (what DynaSplit used), ``tf.io.parse_tensor`` on the receiver,
  acknowledged with one byte; only when ``grpcio`` is importable.

Each request of the raw socket and of the fp32 framing also records its CPU
time (``time.thread_time``) in the sender and in the receiver, which reports it
in its acknowledgement (``cpu_per_request``, medians; ``cpu_ratio_vs_raw_socket``
= framing / raw socket, sender + receiver): on a shared machine, CPU time is
far less disturbed by other jobs than wall time.

Every process runs the event loop the workers run (uvloop where installed,
``--loop asyncio`` for the standard one) and keeps freed buffers as the
workers do (:func:`toolkit.runtime.allocator.keep_freed_memory`). Besides the
requests, each codec's encode and decode are timed in this process
(``codec_cost``; ``encode_over_fp32_request`` = encode time / the fp32 request).

Prints one JSON object; the figure is ``worst_ratio_vs_raw_socket`` (median
fp32 framing request / median raw-socket request, the worse of the two sizes;
goal <= 1.5, and faster than gRPC), with ``ratio_vs_raw_socket`` per size and
``event_loop``.

Run::

    .venv/bin/python benchmarks/runtime.py [--repeats-1mb 200] [--repeats-10mb 40] [--no-grpc]
                                           [--loop auto|uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from toolkit import aio
from toolkit.models.codecs import CODECS, decode, encode
from toolkit.runtime import streams
from toolkit.runtime.allocator import keep_freed_memory
from toolkit.runtime.framing import KIND_TENSOR, read_frame, write_json, write_tensor

SCRIPT = Path(__file__).resolve()
HOST = "127.0.0.1"
MiB = 1 << 20
SHAPES = {"1MB": (1, 64, 64, 64), "10MB": (1, 160, 128, 128)}  # float32: 1 MiB, 10 MiB
GOAL_RATIO = 1.5
GRPC_METHOD = "/dynasplit.bench.Transfer/Stream"
GRPC_OPTIONS = [("grpc.max_send_message_length", 64 * MiB),
                ("grpc.max_receive_message_length", 64 * MiB)]
_SIZE = struct.Struct("!Q")
_CPU = struct.Struct("!d")


def grpc_available() -> str | None:
    """grpcio's version when it can be imported (the gRPC path is then measured), else None."""
    try:
        import grpc
    except ImportError:
        return None
    return grpc.__version__


# --------------------------------------------------------------------------- receivers


def _announce(port: int) -> None:
    loop = aio.running_loop() if _in_loop() else None
    print(json.dumps({"event": "listening", "host": HOST, "port": port, "pid": os.getpid(),
                      "loop": loop}), flush=True)


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _ack_frames(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    last = time.thread_time()
    while (frame := await read_frame(reader)) is not None:
        x = decode(frame.tensor) if frame.kind == KIND_TENSOR else None
        now = time.thread_time()  # CPU of this request: since the previous ack was queued
        write_json(writer, {"ack": frame.id, "n": 0 if x is None else int(x.size),
                            "cpu_s": now - last})
        await writer.drain()
        last = now


def serve_framing() -> None:
    """Receiver for the framing: the workers' own server, read_frame + decode + JSON ack."""
    from toolkit.runtime.worker import serve

    aio.run(serve("receiver", _ack_frames, HOST, 0))


def serve_framing_plain() -> None:
    """The same receiver on plain ``asyncio.start_server`` streams (for comparison)."""

    async def main() -> None:
        server = await asyncio.start_server(_ack_frames, HOST, 0, limit=MiB)
        _announce(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    aio.run(main())


def _recv_exactly(conn: socket.socket, view: memoryview) -> bool:
    got = 0
    while got < len(view):
        n = conn.recv_into(view[got:])
        if n == 0:
            return False
        got += n
    return True


def serve_raw() -> None:
    """Receiver for the raw socket: per connection an 8-byte size, then payloads of that size."""
    srv = socket.create_server((HOST, 0))
    _announce(srv.getsockname()[1])
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        size = bytearray(_SIZE.size)
        if not _recv_exactly(conn, memoryview(size)):
            conn.close()
            continue
        buf = memoryview(bytearray(_SIZE.unpack(size)[0]))
        last = time.thread_time()
        while _recv_exactly(conn, buf):
            now = time.thread_time()
            conn.sendall(_CPU.pack(now - last))  # the ack: this request's CPU time
            last = now
        conn.close()


def serve_grpc() -> None:
    """Receiver for gRPC: a bidirectional stream of serialized tensors, one-byte acks."""
    from concurrent import futures

    import grpc
    import tensorflow as tf

    def stream(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        for request in requests:
            tf.io.parse_tensor(request, out_type=tf.float32).numpy()
            yield b"\x01"

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=GRPC_OPTIONS)
    service, method = GRPC_METHOD.strip("/").split("/")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        service, {method: grpc.stream_stream_rpc_method_handler(stream)}),))
    port = server.add_insecure_port(f"{HOST}:0")
    server.start()
    _announce(port)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop(None)


RECEIVERS: dict[str, Callable[[], None]] = {
    "framing": serve_framing, "framing-plain": serve_framing_plain, "raw": serve_raw,
    "grpc": serve_grpc,
}


class Receiver:
    """A receiver running as a separate OS process (this script with ``--serve``)."""

    def __init__(self, kind: str, timeout: float = 120.0) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", DYNASPLIT_LOG="WARNING")
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), "--serve", kind],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = self.proc.stdout.readline() if sel.select(timeout) else b""
        sel.close()
        if not line:
            self.stop()
            raise RuntimeError(f"{kind} receiver did not start")
        announced = json.loads(line)
        self.port = int(announced["port"])
        self.loop: str | None = announced.get("loop")

    def stop(self) -> None:
        """Terminate the process and wait for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- senders


class FramingSender:
    """One asyncio connection to the framing receiver; one request per call."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frame_bytes = 0
        self.cpu: tuple[float, float] | None = None  # (sender, receiver) CPU s, last request

    @classmethod
    async def connect(cls, port: int, plain: bool = False) -> FramingSender:
        """Connect like the edge worker's cloud link (``plain``: asyncio's own streams)."""
        opener = asyncio.open_connection if plain else streams.open_connection
        return cls(*await opener(HOST, port, limit=MiB))

    async def request(self, x: np.ndarray, codec: str, rid: int) -> float:
        c0, t0 = time.thread_time(), time.perf_counter()
        self.frame_bytes = write_tensor(self.writer, encode(x, codec), rid)
        await self.writer.drain()
        ack = await read_frame(self.reader)
        t1, c1 = time.perf_counter(), time.thread_time()
        if ack is None or ack.message.get("ack") != rid or ack.message.get("n") != x.size:
            raise RuntimeError(f"bad acknowledgement {ack and ack.message}")
        self.cpu = (c1 - c0, float(ack.message["cpu_s"]))
        return t1 - t0

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


class RawSender:
    """One blocking TCP connection per payload size; ``sendall`` + an 8-byte ack."""

    def __init__(self, port: int, nbytes: int) -> None:
        self.sock = socket.create_connection((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(_SIZE.pack(nbytes))
        self.ack = bytearray(_CPU.size)
        self.cpu: tuple[float, float] | None = None

    def request(self, payload: memoryview) -> float:
        c0, t0 = time.thread_time(), time.perf_counter()
        self.sock.sendall(payload)
        if not _recv_exactly(self.sock, memoryview(self.ack)):
            raise RuntimeError("raw receiver closed")
        t1, c1 = time.perf_counter(), time.thread_time()
        self.cpu = (c1 - c0, _CPU.unpack(self.ack)[0])
        return t1 - t0

    def close(self) -> None:
        self.sock.close()


class GrpcSender:
    """A bidirectional gRPC stream; each request is one serialized tensor."""

    def __init__(self, port: int) -> None:
        import grpc
        import tensorflow as tf

        self._tf = tf
        self.channel = grpc.insecure_channel(f"{HOST}:{port}", options=GRPC_OPTIONS)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        call = self.channel.stream_stream(GRPC_METHOD)
        self._responses = call(iter(self._queue.get, None))

    def request(self, x: np.ndarray) -> float:
        t0 = time.perf_counter()
        self._queue.put(self._tf.io.serialize_tensor(x).numpy())
        next(self._responses)
        return time.perf_counter() - t0

    def close(self) -> None:
        self._queue.put(None)
        self.channel.close()


# --------------------------------------------------------------------------- measurement


def summary(seconds: list[float]) -> dict[str, float]:
    """Median and p90 in milliseconds."""
    ms = sorted(s * 1e3 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(np.ceil(0.9 * len(ms))) - 1)]
    return {"median_ms": round(statistics.median(ms), 4), "p90_ms": round(p90, 4),
            "min_ms": round(ms[0], 4)}


def codec_costs(x: np.ndarray, repeats: int) -> dict[str, dict[str, float]]:
    """In-process median encode and decode time of each codec, in ms (no I/O)."""
    costs: dict[str, dict[str, float]] = {}
    for codec in CODECS:
        encode(x, codec), decode(encode(x, codec))  # warm-up (the fp16 table)
        enc, dec = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            e = encode(x, codec)
            t1 = time.perf_counter()
            decode(e)
            dec.append(time.perf_counter() - t1)
            enc.append(t1 - t0)
        costs[codec] = {"encode_ms": round(statistics.median(enc) * 1e3, 4),
                        "decode_ms": round(statistics.median(dec) * 1e3, 4)}
    return costs


async def measure_size(label: str, shape: tuple[int, ...], repeats: int, warmup: int,
                       ports: dict[str, int]) -> dict[str, Any]:
    """Interleaved requests of every transport for one tensor size."""
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    payload = memoryview(x).cast("B")
    framing = await FramingSender.connect(ports["framing"])
    plain = await FramingSender.connect(ports["framing-plain"], plain=True)
    raw = RawSender(ports["raw"], payload.nbytes)
    grpc_sender = GrpcSender(ports["grpc"]) if "grpc" in ports else None
    methods: dict[str, Callable[[int], Any]] = {"raw_socket": lambda i: raw.request(payload)}
    for codec in CODECS:
        methods[f"framing_{codec}"] = lambda i, c=codec: framing.request(x, c, i)
    methods["framing_plain_asyncio_fp32"] = lambda i: plain.request(x, "fp32", i)
    if grpc_sender is not None:
        methods["grpc"] = lambda i: grpc_sender.request(x)
    names = list(methods)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu_of = {"raw_socket": raw, "framing_fp32": framing, "framing_plain_asyncio_fp32": plain}
    cpus: dict[str, list[tuple[float, float]]] = {name: [] for name in cpu_of}
    frame_bytes: dict[str, int] = {}
    try:
        for i in tqdm(range(warmup + repeats), desc=f"{label} rounds", file=sys.stderr):
            shift = i % len(names)  # rotate the order so no transport always goes first
            for name in names[shift:] + names[:shift]:
                t = methods[name](i)
                if asyncio.iscoroutine(t):
                    t = await t
                if name.removeprefix("framing_") in CODECS:
                    frame_bytes[name.removeprefix("framing_")] = framing.frame_bytes
                if i >= warmup:
                    times[name].append(t)
                    if name in cpu_of:
                        cpus[name].append(cpu_of[name].cpu)
    finally:
        await framing.close()
        await plain.close()
        raw.close()
        if grpc_sender is not None:
            grpc_sender.close()
    stats = {name: summary(ts) for name, ts in times.items()}
    raw_s, fp32 = stats["raw_socket"], stats["framing_fp32"]
    cpu = {name: {"sender_ms": round(statistics.median(c[0] for c in cs) * 1e3, 4),
                  "receiver_ms": round(statistics.median(c[1] for c in cs) * 1e3, 4),
                  "total_ms": round(statistics.median(sum(c) for c in cs) * 1e3, 4)}
           for name, cs in cpus.items()}
    codecs = codec_costs(x, max(20, repeats // 4))
    for cost in codecs.values():  # what the issue compares: vs the whole fp32 request
        cost["encode_over_fp32_request"] = round(cost["encode_ms"] / fp32["median_ms"], 4)
    for codec in CODECS:
        codecs[codec]["request_over_fp32_request"] = round(
            stats[f"framing_{codec}"]["median_ms"] / fp32["median_ms"], 4)
    result: dict[str, Any] = {
        "shape": list(shape), "payload_bytes": payload.nbytes, "repeats": repeats,
        "warmup": warmup, "raw_socket": raw_s,
        "framing": {c: {**stats[f"framing_{c}"], "frame_bytes": frame_bytes[c]}
                    for c in CODECS},
        "ratio_vs_raw_socket": round(fp32["median_ms"] / raw_s["median_ms"], 4),
        "codec_cost": codecs,
        "cpu_per_request": cpu,
        "cpu_ratio_vs_raw_socket": round(cpu["framing_fp32"]["total_ms"]
                                         / cpu["raw_socket"]["total_ms"], 4),
        "paired_ratio_median": round(statistics.median(
            f / r for f, r in zip(times["framing_fp32"], times["raw_socket"], strict=True)), 4),
        "p90_ratio_vs_raw_socket": round(fp32["p90_ms"] / raw_s["p90_ms"], 4),
        "framing_plain_asyncio_fp32": stats["framing_plain_asyncio_fp32"],
        "plain_asyncio_ratio_vs_raw_socket": round(
            stats["framing_plain_asyncio_fp32"]["median_ms"] / raw_s["median_ms"], 4),
        "grpc": stats.get("grpc"),
    }
    if "grpc" in stats:
        result["grpc_over_framing_fp32"] = round(stats["grpc"]["median_ms"] / fp32["median_ms"],
                                                 4)
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the receivers, measure both sizes, stop the receivers."""
    grpc_version = None if args.no_grpc else grpc_available()
    kinds = ["framing", "framing-plain", "raw"] + (["grpc"] if grpc_version else [])
    receivers: dict[str, Receiver] = {}
    try:
        for kind in kinds:
            receivers[kind] = Receiver(kind)
        ports = {kind: r.port for kind, r in receivers.items()}
        repeats = {"1MB": args.repeats_1mb, "10MB": args.repeats_10mb}
        sizes = {label: await measure_size(label, shape, repeats[label], args.warmup, ports)
                 for label, shape in SHAPES.items()}
    finally:
        for r in receivers.values():
            r.stop()
    loops = {kind: r.loop for kind, r in receivers.items() if r.loop}
    worst = max(s["ratio_vs_raw_socket"] for s in sizes.values())
    faster = (all(s["grpc"]["median_ms"] > s["framing"]["fp32"]["median_ms"]
                  for s in sizes.values()) if grpc_version else None)
    return {
        "benchmark": "runtime",
        "worst_ratio_vs_raw_socket": worst,
        "ratio_vs_raw_socket": {label: s["ratio_vs_raw_socket"] for label, s in sizes.items()},
        "cpu_ratio_vs_raw_socket": {label: s["cpu_ratio_vs_raw_socket"]
                                    for label, s in sizes.items()},
        "fp16_encode_over_fp32_request": {label: s["codec_cost"]["fp16"]["encode_over_fp32_request"]
                                          for label, s in sizes.items()},
        "int8_encode_over_fp32_request": {label: s["codec_cost"]["int8"]["encode_over_fp32_request"]
                                          for label, s in sizes.items()},
        "event_loop": aio.running_loop(),
        "event_loops": {"sender": aio.running_loop(), **loops},
        "goal": {"max_ratio_vs_raw_socket": GOAL_RATIO, "ratio_met": worst <= GOAL_RATIO,
                 "faster_than_grpc": faster},
        "request": "encode + send + receive + decode + tiny ack; loopback TCP between two "
                   "processes; medians over interleaved rounds",
        "sizes": sizes,
        "environment": {"python": platform.python_version(), "machine": platform.machine(),
                        "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
                        "grpcio": grpc_version, "numpy": np.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the benchmark (or, with ``--serve``, one receiver)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats-1mb", type=int, default=200)
    parser.add_argument("--repeats-10mb", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-grpc", action="store_true", help="skip the gRPC path")
    parser.add_argument("--loop", choices=aio.EVENT_LOOPS, default=None,
                        help="event loop of the sender and the asyncio receivers (default: "
                        f"${aio.LOOP_ENV}, else auto = uvloop when installed)")
    parser.add_argument("--serve", choices=sorted(RECEIVERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loop:
        os.environ[aio.LOOP_ENV] = args.loop  # the receivers inherit it
    keep_freed_memory()  # as the workers do, in the sender and in every receiver
    if args.serve:
        RECEIVERS[args.serve]()
        return 0
    print(json.dumps(aio.run(run(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
