"""The scheduler's asyncio machinery: input, bounded queue, worker, shutdown.

:class:`Server` reads request lines from stdin or from TCP connections, puts
each valid request into a bounded :class:`asyncio.Queue` (a full queue stops the
readers, so a fast client is slowed down instead of buffered without limit),
and one worker answers them in order by awaiting ``handle(request)`` — the
online phase itself (decide, apply, run), supplied by the caller.

Guarantees:

- every line read gets exactly one answer: an outcome (``status`` ``ok``,
  ``timeout``, ``failed``, ``cancelled``) for a valid request, an error line for
  a malformed one; the server keeps serving after either;
- a request whose handling exceeds ``timeout_s`` is answered ``timeout``; its
  run is allowed to finish in the background (the testbed connection stays
  consistent) and the next request waits for it;
- SIGINT/SIGTERM (or :meth:`Server.shutdown`) stops reading, lets the worker
  finish the queued requests for up to ``grace_s`` seconds, and answers what is
  left ``cancelled``; in stdin mode EOF ends the input the same way, without the
  grace limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from toolkit.errors import ToolkitError
from toolkit.scheduler.protocol import Request, RequestError, encode, error_line, parse_request

__all__ = ["Handler", "Server", "ServerStats", "parse_listen"]

#: the online phase: a request in, an outcome dict out
Handler = Callable[[Request], Awaitable[dict[str, Any]]]
#: writes one answer line; the flag says whether it settles a queued request
Reply = Callable[[bytes, bool], None]

_READ_LIMIT = 1 << 20


@dataclass
class ServerStats:
    """What a server did: lines answered by kind."""

    accepted: int = 0
    malformed: int = 0
    ok: int = 0
    met: int = 0
    timeout: int = 0
    failed: int = 0
    cancelled: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a JSON-ready dict."""
        return asdict(self)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (host 127.0.0.1) -> (host, port)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ToolkitError(f"--listen {text!r} is not HOST:PORT, e.g. 127.0.0.1:8700") from None
    if not 0 <= number <= 65535:
        raise ToolkitError(f"--listen port {number} is out of range 0..65535")
    return (host.strip("[]") or "127.0.0.1"), number


class Server:
    """Serve requests with a handler; see the module docstring for guarantees.

    Args:
        handle: the online phase, ``await handle(request) -> outcome dict``.
        queue_size: bound of the request queue (backpressure beyond it).
        timeout_s: per-request limit on ``handle``.
        grace_s: how long a signalled shutdown lets queued requests finish.
        log: where the start/stop lines and the final statistics go.
    """

    def __init__(self, handle: Handler, *, queue_size: int = 1024, timeout_s: float = 60.0,
                 grace_s: float = 30.0, log: Any = None) -> None:
        if queue_size < 1:
            raise ToolkitError(f"queue size must be at least 1, got {queue_size}")
        if timeout_s <= 0:
            raise ToolkitError(f"timeout must be > 0 s, got {timeout_s}")
        self.handle = handle
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.log = log if log is not None else sys.stderr
        self.stats = ServerStats()
        self._queue: asyncio.Queue | None = None
        self._stopping: asyncio.Event | None = None
        self._cancel_rest = False
        self._inflight: asyncio.Future | None = None
        self._readers: set[asyncio.Task] = set()
        self._signalled = False

    # -- shutdown ----------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop reading; finish queued requests within the grace period."""
        if self._stopping is None or self._stopping.is_set():
            return
        self._signalled = True
        self._stopping.set()
        for task in list(self._readers):
            task.cancel()
        loop = asyncio.get_running_loop()
        loop.call_later(self.grace_s, self._expire)

    def _expire(self) -> None:
        self._cancel_rest = True
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()

    def _install_signals(self) -> list[int]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.shutdown)
                installed.append(sig)
        return installed

    # -- answering -------------------------------------------------------------------
    def _answer(self, request: Request, outcome: dict[str, Any], reply: Reply) -> None:
        status = outcome.get("status", "ok")
        if status == "ok":
            self.stats.ok += 1
            self.stats.met += bool(outcome.get("met"))
        elif status in ("timeout", "failed", "cancelled"):
            setattr(self.stats, status, getattr(self.stats, status) + 1)
        reply(encode({"id": request.id, **outcome}), True)

    async def _run_one(self, request: Request) -> dict[str, Any]:
        if self._inflight is not None and not self._inflight.done():
            await asyncio.wait([self._inflight])  # a timed-out run still holds the testbed
        if self._cancel_rest:
            return {"status": "cancelled", "error": "shutdown before it ran"}
        task = asyncio.ensure_future(self.handle(request))
        self._inflight = task
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), self.timeout_s)
        except asyncio.TimeoutError:
            task.add_done_callback(_consume)
            return {"status": "timeout", "error": f"no result within {self.timeout_s:g} s"}
        except asyncio.CancelledError:
            if task.cancelled() and self._cancel_rest:
                return {"status": "cancelled", "error": "shutdown grace period expired"}
            raise
        except Exception as exc:  # the handler failed: report it, keep serving
            return {"status": "failed", "error": str(exc) or type(exc).__name__}
        return {"status": "ok", **outcome}

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            if item is None:
                return
            request, reply, accepted = item
            outcome = await self._run_one(request)
            outcome["queue_ms"] = round((time.perf_counter() - accepted) * 1e3, 3)
            self._answer(request, outcome, reply)

    async def _accept(self, raw: bytes, line: int, reply: Reply) -> bool:
        """Parse one line; queue it (waiting while the queue is full) or answer an error.

        Returns:
            True when the request was queued (the worker will answer it).
        """
        assert self._queue is not None
        if not raw.strip():
            return False
        try:
            request = parse_request(raw, line)
        except RequestError as exc:
            self.stats.malformed += 1
            reply(error_line(exc, line), False)
            return False
        try:
            await self._queue.put((request, reply, time.perf_counter()))
        except asyncio.CancelledError:  # shutdown while waiting for room: answer it
            self.stats.cancelled += 1
            reply(encode({"id": request.id, "status": "cancelled",
                          "error": "shutdown before it was queued"}), False)
            raise
        self.stats.accepted += 1
        return True

    async def _read_lines(self, reader: asyncio.StreamReader, reply: Reply) -> None:
        line = 0
        while True:
            try:
                raw = await reader.readline()
            except ValueError:  # a line beyond the read limit: skip to its end
                line += 1
                self.stats.malformed += 1
                reply(error_line(RequestError("request line too long"), line), False)
                with contextlib.suppress(asyncio.IncompleteReadError, ValueError):
                    while not (await reader.read(_READ_LIMIT)).endswith(b"\n"):
                        pass
                continue
            if not raw:
                return
            line += 1
            await self._accept(raw, line, reply)

    # -- stdin ----------------------------------------------------------------------
    async def run_stdin(self, stdin: BinaryIO | None = None,
                        stdout: BinaryIO | None = None) -> ServerStats:
        """Serve JSON lines from ``stdin`` until EOF or a signal; outcomes to ``stdout``."""
        stdin = stdin if stdin is not None else sys.stdin.buffer
        stdout = stdout if stdout is not None else sys.stdout.buffer

        def reply(data: bytes, queued: bool) -> None:
            stdout.write(data)
            stdout.flush()

        async def read() -> None:
            reader = await _stream_reader(stdin)
            if reader is not None:
                await self._read_lines(reader, reply)
                return
            line = 0  # a regular file or a terminal: read it on a thread
            while True:
                raw = await asyncio.to_thread(stdin.readline)
                if not raw:
                    return
                line += 1
                await self._accept(raw, line, reply)

        return await self._serve([read()])

    # -- TCP ----------------------------------------------------------------------
    async def run_tcp(self, host: str, port: int,
                      on_listen: Callable[[str, int], None] | None = None) -> ServerStats:
        """Serve JSON lines on TCP connections until a signal or :meth:`shutdown`.

        Outcomes go back on the connection a request came from; a connection
        that sends EOF gets its outstanding outcomes before it is closed.
        """
        open_writers: set[asyncio.StreamWriter] = set()

        async def connection(reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
            pending = 0
            settled = asyncio.Event()
            settled.set()

            def reply(data: bytes, queued: bool) -> None:
                nonlocal pending
                if not writer.is_closing():
                    writer.write(data)
                if queued:
                    pending -= 1
                    if pending == 0:
                        settled.set()

            open_writers.add(writer)
            task = asyncio.current_task()
            self._readers.add(task)
            try:
                line = 0
                while True:
                    raw = await reader.readline()
                    if not raw:
                        break
                    line += 1
                    if await self._accept(raw, line, reply):
                        pending += 1
                        settled.clear()
            except (asyncio.CancelledError, ConnectionError, ValueError):
                pass
            finally:
                self._readers.discard(task)
            await settled.wait()  # every queued request of this client answered
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            open_writers.discard(writer)

        server = await asyncio.start_server(connection, host, port, limit=_READ_LIMIT)
        bound = server.sockets[0].getsockname()
        if on_listen is not None:
            on_listen(bound[0], bound[1])
        assert self._stopping is None

        async def until_stopped() -> None:
            assert self._stopping is not None
            try:
                await self._stopping.wait()
            finally:
                server.close()

        stats = await self._serve([until_stopped()], wait_readers=True)
        for writer in list(open_writers):
            writer.close()
        return stats

    # -- common ----------------------------------------------------------------------
    async def _serve(self, sources: list[Awaitable[None]],
                     wait_readers: bool = False) -> ServerStats:
        self._queue = asyncio.Queue(self.queue_size)
        self._stopping = asyncio.Event()
        installed = self._install_signals()
        worker = asyncio.create_task(self._worker())
        tasks = [asyncio.ensure_future(s) for s in sources]
        self._readers.update(tasks)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
            if wait_readers:  # connections still sending when the server stopped
                while pending := [t for t in self._readers if not t.done()]:
                    await asyncio.gather(*pending, return_exceptions=True)
            await self._queue.put(None)
            await worker
        finally:
            loop = asyncio.get_running_loop()
            for sig in installed:
                loop.remove_signal_handler(sig)
        print(json.dumps({"scheduler": "stopped", "signalled": self._signalled,
                          **self.stats.as_dict()}), file=self.log, flush=True)
        return self.stats


def _consume(task: asyncio.Future) -> None:
    """Retrieve a background task's exception so it is not reported as lost."""
    if not task.cancelled():
        task.exception()


async def _stream_reader(stream: BinaryIO) -> asyncio.StreamReader | None:
    """An asyncio reader over a pipe or socket; None for files the loop cannot poll."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_READ_LIMIT)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
    except (ValueError, OSError, PermissionError):
        return None
    return reader
