"""The cloud worker: runs the tail of the split model for every tensor it receives.

Run it as ``python -m toolkit.runtime.cloud --model digits-cnn [--host H --port P]``
(loopback by default; give ``--host 0.0.0.0`` to serve another host).

Per connection: the client first sends ``{"op": "configure", "split": k,
"cloud_accel": "none"|"gpu"}`` and gets ``{"op": "ready"}`` (or ``{"op":
"error", "message": ...}``); then each tensor frame is answered by a tensor frame
with the same id holding the model output in fp32, and metadata ``decode_ms``
(tensor decode) and ``cloud_ms`` (tail compute).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import numpy as np

from toolkit.errors import ProtocolError, ToolkitError
from toolkit.models.codecs import decode, encode
from toolkit.runtime.framing import KIND_JSON, KIND_TENSOR, read_frame, write_json, write_tensor
from toolkit.runtime.stages import StageCache
from toolkit.runtime.worker import load_split_model, run_worker, serve, worker_parser

__all__ = ["CloudWorker", "main"]

log = logging.getLogger("toolkit.runtime")


class CloudWorker:
    """Serves tail inference for one model."""

    def __init__(self, stages: StageCache) -> None:
        self.stages = stages

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection (configure, then tensors)."""
        tail = None
        configured = False
        while (frame := await read_frame(reader)) is not None:
            if frame.kind == KIND_JSON:
                msg = frame.message
                op = msg.get("op")
                if op == "configure":
                    try:
                        split = self.stages.split_model.check_split(int(msg.get("split", -1)))
                        tail = self.stages.tail(split, str(msg.get("cloud_accel", "none")))
                        configured = True
                        write_json(writer, {"op": "ready", "split": split})
                    except (ToolkitError, ValueError, TypeError) as exc:
                        write_json(writer, {"op": "error", "message": str(exc)})
                elif op == "ping":
                    write_json(writer, {"op": "pong", "role": "cloud",
                                        "model": self.stages.split_model.name,
                                        "n_splits": self.stages.split_model.n_splits})
                else:
                    write_json(writer, {"op": "error", "message": f"unknown op {op!r}"})
                await writer.drain()
            elif frame.kind == KIND_TENSOR:
                if not configured:
                    raise ProtocolError("tensor received before 'configure'")
                t0 = time.perf_counter()
                x = decode(frame.tensor)
                t1 = time.perf_counter()
                y = tail(x) if tail is not None else np.asarray(x)
                t2 = time.perf_counter()
                write_tensor(
                    writer, encode(y, "fp32"), frame.id,
                    {"decode_ms": (t1 - t0) * 1e3, "cloud_ms": (t2 - t1) * 1e3},
                )
                await writer.drain()


async def _amain(args: argparse.Namespace) -> None:
    worker = CloudWorker(StageCache(load_split_model(args), threads=args.threads))
    await serve("cloud", worker.handle, args.host, args.port)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m toolkit.runtime.cloud``."""
    args = worker_parser("toolkit.runtime.cloud", __doc__, split_model=True).parse_args(argv)
    return run_worker("cloud", lambda: _amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
