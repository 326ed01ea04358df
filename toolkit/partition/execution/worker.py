"""The partition device worker: one edge device of a multi-device plan, as an OS process.

Run it as ``python -m toolkit.partition.execution.worker --index I [--threads 1]``. It
announces its port like the runtime's workers (one JSON line on stdout), logs
to stderr and stops on SIGTERM. A connection's first frame says what it is:

* ``{"op": "peer", "from": j, "session": s, "link": {...}}``: a data connection
  from device ``j``; every following frame is a tensor that device sends this
  one (id = sample, metadata ``{"name": <tensor name>}``). The receiving side
  emulates its downlink (:class:`~toolkit.runtime.link.Downlink`).
* anything else: the controller's control connection, which sends JSON requests:

  - ``{"op": "ping"}`` -> ``{"op": "pong", "index", "pid"}``
  - ``{"op": "configure", "session", "model", "input_size", "plan": PlanSpec,
    "fingerprint", "peers": [[host, port], ...], "link": {mbps, rtt_ms},
    "cloud": [host, port] | null, "cloud_link", "cloud_accel"}`` -> the worker
    loads the model (cached), builds the plan, checks its fingerprint, opens a
    data connection to every device it sends to (and, on device 0 of a hybrid
    plan, to the cloud worker) -> ``{"op": "configured", "index", "sends_to"}``
  - ``{"op": "run", "session", "run", "samples"}``, followed on device 0 by one
    tensor frame with the ``samples`` inputs -> the device runs its part of
    every sample, then answers ``{"op": "result", ...}`` with per-sample
    timings and byte counts (device 0 then sends the outputs as one tensor).
    With ``"stream": {"interval_ms", "pipelined"}`` the samples are a stream of
    requests: device 0 admits request ``k`` at ``t0 + k × interval`` (``t0``,
    when it read the inputs, comes back as ``t_stream0``), in turn (each after
    the previous one's result) or pipelined (every device works on a request as
    soon as its data is there, while later devices still work on earlier ones;
    frames are matched to requests by their id and tensor name).

Errors come back as ``{"op": "error", "message"}``. A device whose run fails
(a peer closed its connection, a malformed frame) closes its data connections,
so every device waiting on it fails too instead of hanging.
Per-sample times are read from the host's monotonic clock, which the local
processes share; the controller compares them across devices.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import ProtocolError, ToolkitError, check_count
from toolkit.models.codecs import decode, encode
from toolkit.runtime import streams
from toolkit.runtime.framing import KIND_JSON, KIND_TENSOR, read_frame, write_json, write_tensor
from toolkit.runtime.link import Downlink, Link, Uplink
from toolkit.runtime.worker import run_worker, serve, worker_parser

__all__ = ["DeviceWorker", "main"]

log = logging.getLogger("toolkit.partition")

#: per-sample record fields a device reports
SAMPLE_FIELDS = ("compute_ms", "send_ms", "recv_ms", "encode_ms", "cloud_ms", "cloud_wait_ms",
                 "t_start", "t_end", "sent_bytes", "frame_bytes", "received_bytes",
                 "cloud_bytes")


class _PeerClosed:
    """Queued when a peer's data connection ends: the reason a receive fails."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Router:
    """One peer's frames for a pipelined stream: each goes to the request waiting for
    it (by sample id and tensor name), whatever order the requests wait in."""

    def __init__(self, inbox: asyncio.Queue) -> None:
        self._inbox = inbox
        self._arrived: dict[tuple[int, Any], Any] = {}
        self._waiting: dict[tuple[int, Any], asyncio.Future] = {}
        self._closed: _PeerClosed | None = None
        self._pump = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            item = await self._inbox.get()
            if isinstance(item, _PeerClosed):
                self._closed = item
                for future in self._waiting.values():
                    if not future.done():
                        future.set_result(item)
                self._waiting.clear()
                return
            key = (item.id, item.message.get("name"))
            future = self._waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(item)
            else:
                self._arrived[key] = item

    async def take(self, rid: int, name: str):
        """The frame of sample ``rid`` named ``name`` (or the peer's :class:`_PeerClosed`)."""
        key = (rid, name)
        if key in self._arrived:
            return self._arrived.pop(key)
        if self._closed is not None:
            return self._closed
        future = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return await future

    def close(self) -> None:
        """Stop taking frames; a closed peer stays visible to later runs."""
        self._pump.cancel()
        if self._closed is not None:
            self._inbox.put_nowait(self._closed)


class _Pipe:
    """What the requests of a pipelined stream share on one device: each peer's frames
    routed to the request they belong to, and one compute at a time, run off the event
    loop so that sends and receives go on meanwhile (as a network interface's do)."""

    def __init__(self, index: int, inboxes: dict[int, asyncio.Queue]) -> None:
        self.index = index
        self._routers = {src: _Router(inbox) for src, inbox in inboxes.items()}
        self._compute = asyncio.Lock()

    async def receive(self, transfer, rid: int):
        """The frame ``transfer`` brings for sample ``rid``."""
        item = await self._routers[transfer.src].take(rid, transfer.as_name)
        if isinstance(item, _PeerClosed):
            raise ToolkitError(f"device {self.index} waited for {transfer.as_name!r}: "
                               f"{item.reason}")
        return item

    async def compute(self, run_steps, steps, store: dict[str, Any]) -> float:
        """Run ``steps`` once the device is free; their compute time, ms."""
        if not steps:
            return 0.0
        async with self._compute:
            t0 = time.monotonic()
            await asyncio.to_thread(run_steps, steps, store)
            return (time.monotonic() - t0) * 1e3

    def close(self) -> None:
        """Stop routing frames."""
        for router in self._routers.values():
            router.close()


@dataclass
class _Session:
    """One configured plan on this device."""

    id: str
    plan: Any  # PartitionPlan (the head's, for hybrid plans)
    hybrid: Any  # HybridPlan or None
    uplink: Uplink
    writers: dict[int, asyncio.StreamWriter] = field(default_factory=dict)
    cloud: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    cloud_link: Link = field(default_factory=Link)
    broken: str = ""

    async def close(self) -> None:
        writers = list(self.writers.values())
        if self.cloud is not None:
            writers.append(self.cloud[1])
        self.writers, self.cloud = {}, None
        for w in writers:
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()


class DeviceWorker:
    """Serves one device of partition plans: control requests and peer data."""

    def __init__(self, index: int, threads: int = 1) -> None:
        self.index = index
        self.threads = threads
        self._models: dict[tuple, Any] = {}
        self._split_models: dict[tuple, Any] = {}
        self._session: _Session | None = None
        # (session, peer) -> the frames that peer sent
        self._inboxes: defaultdict[tuple[str, int], asyncio.Queue] = defaultdict(asyncio.Queue)
        self._downlink = Downlink()

    # -- connections ----------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection: peer data or control, by its first frame."""
        frame = await read_frame(reader)
        if frame is None:
            return
        if frame.kind != KIND_JSON:
            raise ProtocolError("a connection must start with a JSON frame")
        if frame.message.get("op") == "peer":
            await self._peer(frame.message, reader)
        else:
            await self._control(frame.message, reader, writer)

    async def _peer(self, hello: dict[str, Any], reader: asyncio.StreamReader) -> None:
        try:
            src, session = int(hello["from"]), str(hello["session"])
            link = Link.from_message(hello.get("link"))
        except (KeyError, TypeError, ValueError, ToolkitError) as exc:
            raise ProtocolError(f"malformed peer hello {hello!r}: {exc}") from None
        inbox = self._inboxes[session, src]
        reason = f"device {src} closed its data connection"
        try:
            while True:
                frame = await read_frame(reader)
                if frame is None:
                    return
                if frame.kind != KIND_TENSOR:
                    raise ProtocolError(f"device {src} sent a JSON frame on a data connection")
                await self._downlink.deliver_delay(link, frame.tensor.nbytes)
                inbox.put_nowait(frame)
        except (ProtocolError, ConnectionError, asyncio.IncompleteReadError) as exc:
            reason = f"data connection from device {src} failed: {exc}"
            raise
        finally:
            inbox.put_nowait(_PeerClosed(reason))

    async def _control(self, first: dict[str, Any], reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        msg: dict[str, Any] | None = first
        while msg is not None:
            outputs = None
            try:
                reply, outputs = await self._dispatch(msg, reader)
            except (ToolkitError, ValueError, TypeError, KeyError, ConnectionError,
                    asyncio.IncompleteReadError) as exc:
                lost = isinstance(exc, ConnectionError | asyncio.IncompleteReadError)
                reply = {"op": "error", "index": self.index,
                         "message": f"connection lost: {exc}" if lost else str(exc)}
                if self._session is not None and (lost or msg.get("op") == "run"):
                    self._session.broken = reply["message"]
                    await self._session.close()  # peers waiting on this device fail too
            write_json(writer, reply)
            if outputs is not None:
                write_tensor(writer, encode(outputs, "fp32"), 0)
            await writer.drain()
            frame = await read_frame(reader)
            if frame is not None and frame.kind != KIND_JSON:
                raise ProtocolError("the control connection takes JSON requests")
            msg = frame.message if frame is not None else None

    async def _dispatch(self, msg: dict[str, Any], reader) -> tuple[dict[str, Any], Any]:
        op = msg.get("op")
        if op == "ping":
            return {"op": "pong", "index": self.index, "pid": os.getpid()}, None
        if op == "configure":
            return await self._configure(msg), None
        if op == "run":
            return await self._run(msg, reader)
        raise ToolkitError(f"unknown op {op!r}; valid: ping, configure, run")

    # -- configuration --------------------------------------------------------------

    def _model(self, name: str, input_size: int | None):
        key = (name, input_size)
        if key not in self._models:
            from toolkit.partition.model.stacks import load_partition_model

            self._models[key] = load_partition_model(name, input_size)
        return self._models[key]

    async def _configure(self, msg: dict[str, Any]) -> dict[str, Any]:
        from toolkit.partition.execution.spec import PlanSpec, plan_fingerprint
        from toolkit.partition.strategies.hybrid import HybridPlan

        spec = PlanSpec.from_message(msg["plan"])
        if not 0 <= self.index < spec.devices:
            raise ToolkitError(f"device {self.index} is not one of the plan's {spec.devices}")
        key = (str(msg["model"]), msg.get("input_size"))
        model = self._model(*key)
        if spec.hybrid and key not in self._split_models:
            from toolkit.models.split import SplitModel

            self._split_models[key] = SplitModel(model, name=model.name)
        built = spec.build(model, self._split_models.get(key))
        if plan_fingerprint(built) != msg.get("fingerprint"):
            raise ToolkitError(
                f"device {self.index} built a different {spec.strategy} plan than the "
                "controller (model files or toolkit versions differ)")
        hybrid = built if isinstance(built, HybridPlan) else None
        plan = hybrid.head if hybrid is not None else built
        if self._session is not None:
            await self._session.close()
        session_id = str(msg["session"])
        for key in [k for k in self._inboxes if k[0] != session_id]:
            del self._inboxes[key]
        link = Link.from_message(msg.get("link"))
        session = _Session(session_id, plan, hybrid, Uplink(link),
                           cloud_link=Link.from_message(msg.get("cloud_link")))
        self._session = session
        targets = sorted({t.dst for st in plan.stages for t in st.outgoing(self.index)})
        for dst in targets:
            host, port = msg["peers"][dst]
            try:
                _, w = await asyncio.wait_for(streams.open_connection(host, int(port)), 10)
            except (OSError, asyncio.TimeoutError) as exc:
                raise ToolkitError(f"device {self.index} cannot reach device {dst} at "
                                   f"{host}:{port}: {exc}") from None
            write_json(w, {"op": "peer", "from": self.index, "session": session_id,
                           "link": link.as_dict()})
            session.writers[dst] = w
        if hybrid is not None and self.index == 0:
            await self._connect_cloud(session, msg)
        return {"op": "configured", "index": self.index, "sends_to": targets}

    async def _connect_cloud(self, session: _Session, msg: dict[str, Any]) -> None:
        cloud = msg.get("cloud")
        if not cloud:
            raise ToolkitError("a hybrid plan needs a cloud worker; none given")
        host, port = cloud
        try:
            r, w = await asyncio.wait_for(streams.open_connection(host, int(port)), 10)
        except (OSError, asyncio.TimeoutError) as exc:
            raise ToolkitError(f"device 0 cannot reach the cloud worker at {host}:{port}: "
                               f"{exc}") from None
        session.cloud = (r, w)
        write_json(w, {"op": "configure", "split": session.hybrid.split,
                       "cloud_accel": str(msg.get("cloud_accel", "none"))})
        await w.drain()
        ready = await read_frame(r)
        if ready is None or ready.kind != KIND_JSON or ready.message.get("op") != "ready":
            reason = ready.message.get("message") if ready is not None else "closed"
            raise ToolkitError(f"the cloud worker refused the split: {reason}")

    # -- running --------------------------------------------------------------------

    async def _run(self, msg: dict[str, Any], reader) -> tuple[dict[str, Any], Any]:
        x = None
        if self.index == 0:  # read the inputs first: the stream stays in step on errors
            frame = await read_frame(reader)
            if frame is None or frame.kind != KIND_TENSOR:
                raise ProtocolError("device 0 expects the inputs as a tensor frame after 'run'")
            x = decode(frame.tensor)
        session = self._session
        if session is None or session.id != str(msg.get("session")):
            raise ToolkitError("run before configure (or for another session)")
        if session.broken:
            raise ToolkitError(f"the session failed earlier ({session.broken}); configure again")
        samples, run = int(msg["samples"]), int(msg.get("run", 0))
        check_count(samples, "samples")
        if x is not None and x.shape != (samples, *session.plan.input_shape):
            raise ToolkitError(f"inputs of shape {x.shape} do not match "
                               f"{(samples, *session.plan.input_shape)}")
        cpu0, wall0 = time.process_time(), time.monotonic()
        stream = msg.get("stream")
        if stream is not None:
            results = await self._stream(session, run, x, samples, stream, wall0)
        else:
            results = [await self._sample(session, (run << 32) | k,
                                          None if x is None else x[k:k + 1])
                       for k in range(samples)]
        cols = {k: [rec[k] for rec, _ in results] for k in SAMPLE_FIELDS}
        outputs = [out for _, out in results if out is not None]
        reply = {"op": "result", "index": self.index, "samples": samples,
                 "cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - wall0,
                 **cols, **({"t_stream0": wall0} if stream is not None else {})}
        return reply, (np.concatenate(outputs) if outputs else None)

    async def _stream(self, session: _Session, run: int, x, samples: int,
                      stream: dict[str, Any], t0: float) -> list[tuple[dict[str, Any], Any]]:
        """Run ``samples`` requests as a stream (see the module's docstring)."""
        interval = float(stream["interval_ms"]) / 1e3
        if not interval >= 0:
            raise ToolkitError(f"interval_ms must be >= 0, got {stream['interval_ms']!r}")
        pipe: _Pipe | None = None

        async def one(k: int):
            if x is not None:  # device 0: request k arrives at t0 + k × interval
                await asyncio.sleep(max(0.0, t0 + k * interval - time.monotonic()))
            return await self._sample(session, (run << 32) | k,
                                      None if x is None else x[k:k + 1], pipe)

        if not stream.get("pipelined"):
            return [await one(k) for k in range(samples)]
        sources = {t.src for st in session.plan.stages for t in st.incoming(self.index)}
        pipe = _Pipe(self.index, {src: self._inboxes[session.id, src] for src in sources})
        tasks = [asyncio.ensure_future(one(k)) for k in range(samples)]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()
            pipe.close()

    async def _receive(self, session: _Session, transfer, rid: int):
        item = await self._inboxes[session.id, transfer.src].get()
        if isinstance(item, _PeerClosed):
            raise ToolkitError(f"device {self.index} waited for {transfer.as_name!r}: "
                               f"{item.reason}")
        name = item.message.get("name")
        if item.id != rid or name != transfer.as_name:
            raise ProtocolError(f"device {self.index} expected {transfer.as_name!r} of sample "
                                f"{rid} from device {transfer.src}, got {name!r} of {item.id}")
        return item

    async def _sample(self, session: _Session, rid: int, x, pipe: _Pipe | None = None
                      ) -> tuple[dict[str, Any], Any]:
        import tensorflow as tf

        from toolkit.partition.model.execute import run_steps, transfer_payload

        rec = dict.fromkeys(SAMPLE_FIELDS, 0.0)
        rec["t_start"] = time.monotonic()
        store: dict[str, Any] = {}
        if x is not None:
            store["input"] = tf.convert_to_tensor(x)
        for stage in session.plan.stages:
            if pipe is not None:
                rec["compute_ms"] += await pipe.compute(run_steps, stage.steps[self.index], store)
            else:
                t0 = time.monotonic()
                run_steps(stage.steps[self.index], store)
                rec["compute_ms"] += (time.monotonic() - t0) * 1e3
            for t in stage.outgoing(self.index):
                t0 = time.monotonic()
                enc = encode(np.asarray(transfer_payload(t, store)), "fp32")
                await session.uplink.send_delay(enc.nbytes)
                writer = session.writers[t.dst]
                rec["frame_bytes"] += write_tensor(writer, enc, rid, {"name": t.as_name})
                await writer.drain()
                rec["sent_bytes"] += enc.nbytes
                rec["send_ms"] += (time.monotonic() - t0) * 1e3
            for t in stage.incoming(self.index):
                t0 = time.monotonic()
                frame = await (pipe.receive(t, rid) if pipe is not None
                               else self._receive(session, t, rid))
                store[t.as_name] = tf.convert_to_tensor(decode(frame.tensor))
                rec["received_bytes"] += frame.tensor.nbytes
                rec["recv_ms"] += (time.monotonic() - t0) * 1e3
        out = None
        if self.index == session.plan.output[0]:
            out = np.asarray(store[session.plan.output[1]], dtype=np.float32)
            if session.hybrid is not None:
                out = await self._cloud(session, rid, out, rec)
        rec["t_end"] = time.monotonic()
        return rec, out

    async def _cloud(self, session: _Session, rid: int, h: np.ndarray,
                     rec: dict[str, Any]) -> np.ndarray:
        """Send the head's output to the cloud; return the tail's output."""
        t0 = time.monotonic()
        enc = encode(h, session.hybrid.codec)
        t1 = time.monotonic()
        link = session.cloud_link
        reader, writer = session.cloud
        await asyncio.sleep(link.seconds(enc.nbytes))
        rec["frame_bytes"] += write_tensor(writer, enc, rid)
        await writer.drain()
        reply = await read_frame(reader)
        if reply is None or reply.kind != KIND_TENSOR or reply.id != rid:
            raise ProtocolError("the cloud worker sent no matching tensor reply")
        await asyncio.sleep(link.round_trip_s(reply.tensor.nbytes))  # the RTT and the reply
        rec["encode_ms"] = (t1 - t0) * 1e3
        rec["cloud_wait_ms"] = (time.monotonic() - t1) * 1e3
        rec["cloud_ms"] = float(reply.message.get("cloud_ms", 0.0)) + float(
            reply.message.get("decode_ms", 0.0))
        rec["sent_bytes"] += enc.nbytes
        rec["cloud_bytes"] = enc.nbytes
        rec["received_bytes"] += reply.tensor.nbytes
        return np.array(decode(reply.tensor), dtype=np.float32)


async def _amain(args: argparse.Namespace) -> None:
    from toolkit.runtime.stages import configure_threads

    configure_threads(args.threads)
    worker = DeviceWorker(args.index, args.threads)
    try:
        await serve(f"device{args.index}", worker.handle, args.host, args.port)
    finally:
        if worker._session is not None:
            await worker._session.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m toolkit.partition.execution.worker``."""
    parser = worker_parser("toolkit.partition.execution.worker", __doc__)
    parser.add_argument("--index", type=int, required=True, help="this device's index")
    args = parser.parse_args(argv)
    return run_worker(f"device{args.index}", lambda: _amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
