"""The edge worker: runs heads on the evaluation samples and streams tensors to the cloud.

Run it as ``python -m toolkit.runtime.edge --model digits-cnn [--threads 1]``.
The controller connects to it and sends JSON requests, ``ping``, ``prepare``,
``run`` and ``infer`` (``run`` on one input that follows as a tensor frame), each
answered by one JSON reply, or by ``{"op": "error", "message": ...}`` with the
connection kept up: docs/runtime.md ("Worker protocol") lists their fields and
replies. ``run`` and ``infer`` also take the emulation fields below
(``edge_target_ms``, ``edge_time_modelled``, ``cloud_target_ms``).

``link`` (:class:`~toolkit.runtime.link.Link`) emulates a slower network than
the real one in user space (``netem`` is not always available): the real
transfer of each tensor (encoding, loopback, framing, scheduling, decoding; the
tail's own work excluded) is padded to ``rtt_ms`` plus both frames'
serialisation time at ``mbps`` -- what DynaSplit's measured transfer time
covers, and what the profile's ``[link]`` is fitted to.
Where the real transfer is already longer (a loaded host), it is kept as it is.

``edge_target_ms`` emulates a slower edge device (the local testbed's ``pad``
timing, see :mod:`toolkit.devices.testbeds.calibration`): the head runs for real, then
the worker sleeps until the head's time reaches the target. A head that takes
longer than the target on this host is not shortened (``edge_ms`` then exceeds
the target; ``pad_ms``, the time waited, is negative for that sample), unless
``edge_time_modelled`` is set (an emulated Edge TPU, faster than any host CPU):
then ``edge_ms`` is the target, and the sample's latency counts the target, not
the host's longer time.

``cloud_target_ms`` emulates the cloud node (the local testbed's modelled
cloud, :mod:`toolkit.hardware.cloud_timing`): the tail runs for real on the
cloud worker (real outputs), and the sample's ``cloud_ms`` is the target: where
the tail took less, the worker waits the difference; where it took longer (the
usual case: the host is no GPU server), the latency counts the target, not the
host's time. ``decode_ms`` is then 0 (the model covers receiving the tensor)
and ``cloud_host_ms`` holds the host's real tail time per sample.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import time
from typing import Any

import numpy as np

from toolkit.errors import ProtocolError, ToolkitError, check_count
from toolkit.models.codecs import check_codec, decode, encode
from toolkit.models.data import eval_inputs, folder_data
from toolkit.runtime import streams
from toolkit.runtime.framing import (
    KIND_JSON,
    KIND_TENSOR,
    read_frame,
    write_json,
    write_tensor,
)
from toolkit.runtime.link import Link
from toolkit.runtime.session import TIMING_KEYS
from toolkit.runtime.stages import StageCache
from toolkit.runtime.worker import load_split_model, run_worker, serve, worker_parser

__all__ = ["EdgeWorker", "main"]

log = logging.getLogger("toolkit.runtime")


class _CloudLink:
    """The edge's connection to a cloud worker, kept open between runs."""

    def __init__(self) -> None:
        self.addr: tuple[str, int] | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, host: str, port: int) -> None:
        if (self.addr == (host, port) and self.writer and not self.writer.is_closing()
                and not self.reader.at_eof()):  # a restarted worker on the same port
            return
        await self.close()
        try:
            self.reader, self.writer = await asyncio.wait_for(
                streams.open_connection(host, port, limit=1 << 20), timeout=10
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise ToolkitError(
                f"edge cannot reach the cloud worker at {host}:{port}: {exc}"
            ) from None
        self.addr = (host, port)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        write_json(self.writer, message)
        await self.writer.drain()
        frame = await read_frame(self.reader)
        if frame is None or frame.kind != KIND_JSON:
            raise ProtocolError("cloud worker closed or answered a JSON request with a tensor")
        return frame.message

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None
        self.addr = None


class EdgeWorker:
    """Serves controller requests: prepare heads, run split inference."""

    def __init__(self, stages: StageCache, x_eval: np.ndarray) -> None:
        self.stages = stages
        self.x_eval = x_eval
        self.cloud = _CloudLink()
        self._link = Link.from_message(None)
        self._target_s: float | None = None
        self._modelled = False
        self._cloud_target_s: float | None = None
        self._lock = asyncio.Lock()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one controller connection."""
        while (frame := await read_frame(reader)) is not None:
            if frame.kind != KIND_JSON:
                raise ProtocolError("the edge control connection takes JSON frames only")
            msg = frame.message
            inputs = None
            if msg.get("op") == "infer":  # the input follows as a tensor frame
                data = await read_frame(reader)
                if data is None or data.kind != KIND_TENSOR:
                    raise ProtocolError("'infer' must be followed by the input tensor frame")
                inputs = decode(data.tensor)
            try:
                async with self._lock:
                    reply = await self._dispatch(msg, inputs)
            except (ToolkitError, ValueError, TypeError, KeyError) as exc:
                reply = {"op": "error", "message": str(exc)}
            except (ConnectionError, ProtocolError, asyncio.IncompleteReadError) as exc:
                await self.cloud.close()
                reply = {"op": "error", "message": f"cloud link failed: {exc}"}
            write_json(writer, reply)
            await writer.drain()

    async def _dispatch(self, msg: dict[str, Any], inputs: np.ndarray | None = None
                        ) -> dict[str, Any]:
        op = msg.get("op")
        sm = self.stages.split_model
        if op == "ping":
            return {"op": "pong", "role": "edge", "pid": os.getpid(), "model": sm.name,
                    "n_splits": sm.n_splits, "cut_points": sm.table(),
                    "samples_available": len(self.x_eval)}
        if op == "prepare":
            self._prepare(int(msg["split"]), str(msg.get("edge_accel", "none")))
            return {"op": "prepared"}
        if op == "run":
            return await self._run(msg)
        if op == "infer":
            return await self._run({**msg, "samples": 1, "warmup": 0}, inputs)
        raise ToolkitError(f"unknown op {op!r}; valid: ping, prepare, run, infer")

    def _prepare(self, split: int, edge_accel: str):
        split = self.stages.split_model.check_split(split)
        head = self.stages.head(split, edge_accel)
        if head is not None:
            head(self.x_eval[:1])  # trace / allocate outside measurements
        return head

    async def _run(self, msg: dict[str, Any], inputs: np.ndarray | None = None
                   ) -> dict[str, Any]:
        split = int(msg["split"])
        k = int(msg.get("top_k") or 0)
        codec = check_codec(str(msg.get("codec", "fp32")))
        samples = int(msg.get("samples", 100))
        warmup = int(msg.get("warmup", 3))
        offset = int(msg.get("offset", 0))
        check_count(samples, "samples")
        if inputs is not None:
            want = (1, *self.x_eval.shape[1:])
            if inputs.shape != want:
                raise ToolkitError(f"input shape {inputs.shape} does not fit the model's "
                                   f"input {want}")
        head = self._prepare(split, str(msg.get("edge_accel", "none")))
        needs_cloud = split < self.stages.split_model.last_split
        if needs_cloud:
            cloud = msg.get("cloud")
            if not cloud:
                raise ToolkitError(f"split {split} needs a cloud worker; none given")
            await self.cloud.connect(str(cloud["host"]), int(cloud["port"]))
            ready = await self.cloud.request(
                {"op": "configure", "split": split,
                 "cloud_accel": msg.get("cloud_accel", "none")}
            )
            if ready.get("op") != "ready":
                raise ToolkitError(f"cloud worker refused: {ready.get('message', ready)}")
        self._link = Link.from_message(msg.get("link"))
        target = msg.get("edge_target_ms")
        self._target_s = None if target is None or head is None else float(target) / 1e3
        self._modelled = bool(msg.get("edge_time_modelled", False))
        cloud_target = msg.get("cloud_target_ms") if needs_cloud else None
        self._cloud_target_s = None if cloud_target is None else float(cloud_target) / 1e3
        n = len(self.x_eval)
        for i in range(warmup):
            await self._one(head, codec, needs_cloud, self.x_eval[(offset + i) % n][None], i)
        cols: dict[str, list] = {k: [] for k in (
            *TIMING_KEYS, "pad_ms", "cloud_host_ms", "predictions", "sample_index",
            "payload_bytes", "frame_bytes")}
        if k:
            cols["top_k"] = []
        proc_t0, wall_t0 = time.process_time(), time.perf_counter()
        for i in range(samples):
            idx = -1 if inputs is not None else (offset + i) % n
            x = inputs if inputs is not None else self.x_eval[idx][None]
            rec = await self._one(head, codec, needs_cloud, x, i, k)
            rec["sample_index"] = idx
            for key, v in rec.items():
                cols[key].append(v)
        return {"op": "result", "split": split, "codec": codec, "samples": samples,
                "cpu_s": time.process_time() - proc_t0,
                "wall_s": time.perf_counter() - wall_t0, **cols}

    async def _one(self, head, codec: str, needs_cloud: bool, x: np.ndarray,
                   rid: int, k: int = 0) -> dict[str, Any]:
        t0 = time.perf_counter()
        h = head(x) if head is not None else x
        t1 = time.perf_counter()
        pad = credit = host_cloud_s = 0.0
        if self._target_s is not None:
            pad = self._target_s - (t1 - t0)
            if pad > 0:
                time.sleep(pad)  # the run holds the worker anyway; keeps sub-ms precision
                t1 = time.perf_counter()
            elif self._modelled:
                t0 -= pad  # the host was slower than the model: report the model's time
        if needs_cloud:
            enc = encode(h, codec)
            t2 = time.perf_counter()
            link = self.cloud
            frame_bytes = write_tensor(link.writer, enc, rid)
            await link.writer.drain()
            reply = await read_frame(link.reader)
            t3 = time.perf_counter()
            if reply is None or reply.kind != KIND_TENSOR or reply.id != rid:
                raise ProtocolError("cloud worker sent no matching tensor reply")
            host_cloud_s = float(reply.message.get("cloud_ms", 0.0)) / 1e3
            # pad the real transfer (encoding, loopback, framing, scheduling,
            # decoding) to the emulated link's; the tail's work is not part of it
            wait = max(self._link.round_trip_s(frame_bytes + reply.nbytes)
                       - (t3 - t1 - host_cloud_s), 0.0)
            decode_ms = float(reply.message.get("decode_ms", 0.0))
            cloud_ms = host_cloud_s * 1e3
            if self._cloud_target_s is not None:  # the modelled cloud's time
                gap = self._cloud_target_s - host_cloud_s
                wait += max(gap, 0.0)
                credit = max(-gap, 0.0)
                decode_ms, cloud_ms = 0.0, self._cloud_target_s * 1e3
            if wait > 0:
                time.sleep(wait)  # blocking: sub-ms precision; one run at a time
                t3 = time.perf_counter()
            t3 -= credit
            y = decode(reply.tensor)
            payload = enc.nbytes
        else:
            y, t2, t3 = h, t1, t1
            decode_ms = cloud_ms = 0.0
            payload = frame_bytes = 0
        pred = int(np.argmax(y))
        t4 = time.perf_counter() - credit
        latency = (t4 - t0) * 1e3
        edge = (t1 - t0) * 1e3
        return {
            "latency_ms": latency,
            "edge_ms": edge,
            "encode_ms": (t2 - t1) * 1e3,
            "network_ms": max((t3 - t2) * 1e3 - decode_ms - cloud_ms, 0.0),
            "decode_ms": decode_ms,
            "cloud_ms": cloud_ms,
            "transfer_ms": max(latency - edge - cloud_ms, 0.0),
            "pad_ms": pad * 1e3,
            "cloud_host_ms": host_cloud_s * 1e3,
            "predictions": pred,
            "payload_bytes": payload,
            "frame_bytes": frame_bytes,
            **({"top_k": _top_k(y, k)} if k else {}),
        }


def _top_k(scores: np.ndarray, k: int) -> list[list[float]]:
    """The ``k`` best classes of one output, ``[[class, score], ...]``, best first."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    best = np.argsort(-flat, kind="stable")[:k]
    return [[int(i), float(flat[i])] for i in best]


async def _amain(args: argparse.Namespace) -> None:
    split_model = load_split_model(args)
    if args.data:
        data = folder_data(args.data, split_model.model, split_model.name)
        x_calib, x_eval = data.x_calib, data.x_eval
    else:
        x_calib, x_eval = eval_inputs(split_model.model)
    worker = EdgeWorker(StageCache(split_model, x_calib, threads=args.threads,
                                   edgetpu_dir=args.edgetpu_dir,
                                   emulate_tpu=args.emulate_tpu), x_eval)
    try:
        await serve("edge", worker.handle, args.host, args.port)
    finally:
        await worker.cloud.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m toolkit.runtime.edge``."""
    parser = worker_parser("toolkit.runtime.edge", __doc__, split_model=True)
    parser.add_argument("--emulate-tpu", action="store_true",
                        help="run tpu-std/tpu-max heads as int8 on the CPU (modelled timing)")
    args = parser.parse_args(argv)
    return run_worker("edge", lambda: _amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
