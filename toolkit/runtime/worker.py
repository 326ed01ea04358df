"""What the edge and cloud workers share: model loading, serving, shutdown.

A worker is a long-lived OS process that loads its model once, listens on TCP
and answers frames. It announces itself with one JSON line on stdout,
``{"event": "listening", "host": ..., "port": ..., "pid": ..., "loop": ...}``
(``loop``: the event loop it runs, ``uvloop`` or ``asyncio``), logs to
stderr, and stops cleanly on SIGTERM or SIGINT -- or by itself when the local
process that started it is gone. A connection that breaks the
protocol is logged with its reason and closed; the worker keeps serving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from toolkit.aio import run, running_loop
from toolkit.errors import ProtocolError, ToolkitError
from toolkit.runtime import streams
from toolkit.runtime.allocator import keep_freed_memory

__all__ = ["load_split_model", "run_worker", "serve", "worker_parser"]

log = logging.getLogger("toolkit.runtime")

#: set by :class:`~toolkit.runtime.session.WorkerProcess`: the pid of the process
#: that started the worker, which the worker watches (workers started otherwise,
#: e.g. in the background over SSH, have no such parent and do not watch)
PARENT_ENV = "DYNASPLIT_PARENT_PID"


def worker_parser(module: str, doc: str, *, split_model: bool = False
                  ) -> argparse.ArgumentParser:
    """The command line of the worker ``python -m module``, described by the first line
    of ``doc`` (its module docstring), with the options every worker takes: where to
    listen (``--host``, ``--port``) and its compute threads (``--threads``); with
    ``split_model``, also the options of the model :func:`load_split_model` loads."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}",
                                     description=doc.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0 = any free port)")
    parser.add_argument("--threads", type=int, default=1, help="compute threads")
    if not split_model:
        return parser
    parser.add_argument("--model", required=True, help="model name or .keras path")
    parser.add_argument("--name", default=None,
                        help="the model's name when --model is a file saved from it (picks "
                        "the preprocessing and the Edge TPU head names; default: --model)")
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--data", default=None,
                        help="image folder, one subfolder per class (default: built-in data)")
    parser.add_argument("--edgetpu-dir", default=None,
                        help="folder of Edge-TPU-compiled heads (*_edgetpu.tflite)")
    return parser


def load_split_model(args: argparse.Namespace):
    """Load the worker's model and wrap it in a SplitModel."""
    from toolkit.models.split import SplitModel
    from toolkit.models.zoo import load_model
    from toolkit.runtime.stages import configure_threads

    configure_threads(args.threads)
    model = load_model(args.model, input_size=args.input_size, weights=args.weights)
    return SplitModel(model, name=str(args.name or args.model))


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _guarded(role: str, handler: Handler, reader, writer) -> None:
    peer = writer.get_extra_info("peername")
    try:
        await handler(reader, writer)
    except ProtocolError as exc:
        log.warning("%s: closing connection from %s: %s", role, peer, exc)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        log.info("%s: connection from %s lost: %s", role, peer, exc)
    except Exception:  # a bug must not take the worker down
        log.exception("%s: error serving %s; connection closed", role, peer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def serve(role: str, handler: Handler, host: str, port: int) -> None:
    """Serve ``handler`` on ``host:port`` until SIGTERM/SIGINT; announce the port."""
    server = await streams.start_server(
        lambda r, w: _guarded(role, handler, r, w), host, port, limit=1 << 20
    )
    sock = server.sockets[0].getsockname()
    print(json.dumps({"event": "listening", "role": role, "host": sock[0], "port": sock[1],
                      "pid": os.getpid(), "loop": running_loop()}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.environ.get(PARENT_ENV)
    watch = asyncio.create_task(_watch_parent(int(parent), stop)) if parent else None
    async with server:
        await stop.wait()
    if watch is not None:
        watch.cancel()
    log.info("%s: stopped", role)


async def _watch_parent(pid: int, stop: asyncio.Event, period_s: float = 0.5) -> None:
    """Stop the worker when the process that started it is gone (it was killed, or
    exited without stopping its workers): a worker never outlives its controller."""
    while not stop.is_set():
        if os.getppid() != pid:
            log.warning("controller process %d is gone; stopping", pid)
            stop.set()
            return
        await asyncio.sleep(period_s)


def run_worker(role: str, main: Callable[[], Awaitable[None]]) -> int:
    """Run a worker's async main with logging set up; exit status for ``sys.exit``.

    The event loop is uvloop where it is installed, else asyncio's own
    (``DYNASPLIT_LOOP`` forces one, see :func:`toolkit.aio.event_loop`), and
    freed tensor buffers stay in the process
    (:func:`~toolkit.runtime.allocator.keep_freed_memory`).
    """
    keep_freed_memory()
    logging.basicConfig(
        level=os.environ.get("DYNASPLIT_LOG", "INFO"),
        format=f"%(asctime)s {role}[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        run(main())
    except ToolkitError as exc:
        print(json.dumps({"event": "error", "message": str(exc)}), flush=True)
        log.error("%s", exc)
        return 2
    return 0
