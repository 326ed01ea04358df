"""The controller's side of split inference: worker processes and the edge client.

:class:`WorkerProcess` starts an edge or cloud worker as an OS process and
learns its port from the announcement line; :class:`EdgeClient` talks to a
running edge worker and returns a :class:`RunResult` per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ConfigError, DeviceError, ProtocolError
from toolkit.models.codecs import encode
from toolkit.runtime.framing import KIND_JSON, read_frame, write_json, write_tensor
from toolkit.runtime.worker import PARENT_ENV

__all__ = ["WORKER_BYTES", "EdgeClient", "RunResult", "WorkerProcess", "check_worker_memory",
           "worker_command"]

TIMING_KEYS = ("latency_ms", "edge_ms", "encode_ms", "network_ms", "decode_ms", "cloud_ms",
               "transfer_ms")


def worker_command(role: str, model: str, *, threads: int = 1, host: str = "127.0.0.1",
                   port: int = 0, input_size: int | None = None,
                   data: str | os.PathLike | None = None,
                   python: str = sys.executable, emulate_tpu: bool = False) -> list[str]:
    """The argv that starts a worker (``role`` = ``edge`` or ``cloud``)."""
    cmd = [python, "-m", f"toolkit.runtime.{role}", "--model", str(model),
           "--threads", str(threads), "--host", host, "--port", str(port)]
    if input_size:
        cmd += ["--input-size", str(input_size)]
    if data:
        cmd += ["--data", str(data)]
    if emulate_tpu:
        cmd.append("--emulate-tpu")
    return cmd


#: the least resident memory of one worker process, which loads TensorFlow (about
#: 650 MB with the digits CNN, measured on the development VM; more with larger models)
WORKER_BYTES = 512 * 2**20


def check_worker_memory(processes: int, what: str) -> None:
    """Refuse to start ``processes`` workers that this machine's available memory
    cannot hold (they would swap, or be killed one by one), before any starts.

    Raises:
        ConfigError: more workers than ``available memory // WORKER_BYTES``;
            ``what`` says what asked for them.
    """
    import psutil

    available = psutil.virtual_memory().available
    fits = max(1, available // WORKER_BYTES)
    if processes > fits:
        raise ConfigError(
            f"{what} need {processes} worker processes, at least "
            f"{processes * WORKER_BYTES / 2**30:.1f} GiB (each loads TensorFlow); this "
            f"machine has {available / 2**30:.1f} GiB available, enough for {fits}")


class WorkerProcess:
    """A worker running as a local OS process.

    Args:
        argv: the command (see :func:`worker_command`).
        log_path: file that receives the worker's stderr log.
        startup_timeout: seconds to wait for the announcement line.
    """

    def __init__(self, argv: Sequence[str], log_path: str | os.PathLike,
                 startup_timeout: float = 120.0) -> None:
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
                   **{PARENT_ENV: str(os.getpid())})
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self._log,
                                     stdin=subprocess.DEVNULL, env=env)
        self.loop: str | None = None  # the worker's event loop, as it announced it
        self.host, self.port = self._await_announcement(startup_timeout)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def _await_announcement(self, timeout: float) -> tuple[str, int]:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.stop()
            raise DeviceError(f"worker {self.argv[2]} did not start within {timeout:.0f} s; "
                               f"see {self.log_path}")
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            event = None
        event = event if isinstance(event, dict) else {}   # the line is the message
        if (event.get("event") != "listening" or not isinstance(event.get("host"), str)
                or not isinstance(event.get("port"), int)):
            self.stop()
            message = event.get("message") or line or "no announcement"
            raise DeviceError(f"worker {self.argv[2]} failed to start: {message}; "
                               f"see {self.log_path}")
        self.loop = event.get("loop")
        return event["host"], event["port"]

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (idempotent)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


@dataclass
class RunResult:
    """One run of split inference: per-sample timings and predictions.

    Attributes:
        split, edge_accel, cloud_accel, codec: what ran.
        timings: per-sample arrays in ms (``latency_ms, edge_ms, encode_ms,
            network_ms, decode_ms, cloud_ms, transfer_ms``); ``latency = edge +
            transfer + cloud`` per sample.
        predictions: top-1 class per sample.
        sample_index: which evaluation sample each was.
        payload_bytes: encoded tensor bytes sent per sample (0 when edge-only).
        frame_bytes: bytes on the wire per sample, framing included.
        cpu_s, wall_s: edge worker CPU time and wall time over the measured samples.
    """

    split: int
    edge_accel: str
    cloud_accel: str
    codec: str
    timings: dict[str, np.ndarray]
    predictions: np.ndarray
    sample_index: np.ndarray
    payload_bytes: np.ndarray
    frame_bytes: np.ndarray
    cpu_s: float
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        """Number of measured samples."""
        return len(self.predictions)

    def accuracy(self, labels: np.ndarray) -> float:
        """Top-1 accuracy against reference labels indexed like the evaluation set
        (NaN when no sample is an evaluation sample: an input given by the caller)."""
        known = self.sample_index >= 0
        if not known.any():
            return float("nan")
        return float(np.mean(self.predictions[known]
                             == np.asarray(labels)[self.sample_index[known]]))

    def mean(self, key: str) -> float:
        """Mean of one per-sample timing."""
        return float(np.mean(self.timings[key]))

    @property
    def edge_cpu_util(self) -> float:
        """Edge worker CPU time over wall time, in % of one core."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else float("nan")


class EdgeClient:
    """Async client of an edge worker's control port."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float = 10.0) -> EdgeClient:
        """Connect to an edge worker."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 24), timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise DeviceError(f"cannot reach the edge worker at {host}:{port}: {exc}") from None
        return cls(reader, writer)

    async def request(self, message: dict[str, Any], timeout: float | None = None,
                      tensor: np.ndarray | None = None) -> dict[str, Any]:
        """Send one request (and the tensor frame that follows it, if any) and return the
        reply; raises DeviceError on an error reply."""
        write_json(self._writer, message)
        if tensor is not None:
            write_tensor(self._writer, encode(np.ascontiguousarray(tensor, np.float32), "fp32"))
        await self._writer.drain()
        frame = await asyncio.wait_for(read_frame(self._reader), timeout)
        if frame is None:
            raise DeviceError("the edge worker closed the connection")
        if frame.kind != KIND_JSON:
            raise ProtocolError("the edge worker answered with a tensor frame")
        if frame.message.get("op") == "error":
            raise DeviceError(f"edge worker: {frame.message.get('message')}")
        return frame.message

    async def ping(self) -> dict[str, Any]:
        """The worker's identity and the model's cut points."""
        return await self.request({"op": "ping"})

    async def prepare(self, split: int, edge_accel: str) -> None:
        """Build and warm the head for a split (int8 conversion happens here)."""
        await self.request({"op": "prepare", "split": split, "edge_accel": edge_accel})

    async def run(self, split: int, *, edge_accel: str = "none", cloud_accel: str = "none",
                  codec: str = "fp32", samples: int = 100, warmup: int = 3, offset: int = 0,
                  cloud: tuple[str, int] | None = None, link: dict[str, float] | None = None,
                  edge_target_ms: float | None = None, edge_time_modelled: bool = False,
                  cloud_target_ms: float | None = None, timeout: float | None = None,
                  inputs: np.ndarray | None = None,
                  top_k: int = 0) -> RunResult:
        """Run split inference on ``samples`` evaluation samples.

        Args:
            split: the split to run.
            edge_accel, cloud_accel, codec: what runs the head, the tail, and how
                the tensor is encoded.
            samples: measured samples; ``warmup`` more run first, unmeasured.
            offset: index of the first evaluation sample.
            cloud: (host, port) of the cloud worker (not needed edge-only).
            link: optional user-space link emulation ``{"mbps", "rtt_ms"}``.
            edge_target_ms: pad each head's time to this (emulated slower edge).
            edge_time_modelled: report ``edge_target_ms`` as the head's time even
                where the host took longer (an emulated accelerator).
            cloud_target_ms: report this as the tail's time (the modelled cloud;
                the host's own tail time goes to ``extra["cloud_host_ms"]``).
            timeout: seconds to wait for the whole run.
            inputs: run once on this model-ready input (a batch of one) instead
                of evaluation samples (``samples``, ``warmup``, ``offset`` unused).
            top_k: also return the ``top_k`` best classes with their scores per
                sample (``extra["top_k"]``).
        """
        message = {"op": "run" if inputs is None else "infer", "split": split,
                   "edge_accel": edge_accel, "cloud_accel": cloud_accel, "codec": codec,
                   "samples": samples, "warmup": warmup, "offset": offset,
                   "cloud": {"host": cloud[0], "port": cloud[1]} if cloud else None,
                   "link": link, "edge_target_ms": edge_target_ms,
                   "edge_time_modelled": edge_time_modelled,
                   "cloud_target_ms": cloud_target_ms}
        if top_k:
            message["top_k"] = int(top_k)
        reply = await self.request(message, timeout, tensor=inputs)
        return RunResult(
            split=split, edge_accel=edge_accel, cloud_accel=cloud_accel, codec=codec,
            timings={k: np.asarray(reply[k], dtype=float) for k in TIMING_KEYS},
            predictions=np.asarray(reply["predictions"], dtype=int),
            sample_index=np.asarray(reply["sample_index"], dtype=int),
            payload_bytes=np.asarray(reply["payload_bytes"], dtype=float),
            frame_bytes=np.asarray(reply["frame_bytes"], dtype=float),
            cpu_s=float(reply["cpu_s"]), wall_s=float(reply["wall_s"]),
            extra={"pad_ms": np.asarray(reply.get("pad_ms", []), dtype=float),
                   "cloud_host_ms": np.asarray(reply.get("cloud_host_ms", []), dtype=float),
                   **({"top_k": reply["top_k"]} if "top_k" in reply else {})},
        )

    async def close(self) -> None:
        """Close the connection."""
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
