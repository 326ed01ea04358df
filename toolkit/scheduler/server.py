"""The scheduler's asyncio machinery: input, bounded queue, worker, shutdown.

:class:`Server` reads request lines from stdin or from TCP connections, each a
:class:`~toolkit.scheduler.channel.Channel`, puts each valid request into a
bounded :class:`asyncio.Queue` (a full queue stops the readers, so a fast
client is slowed down instead of buffered without limit), and one worker
answers them in order by awaiting ``handle(request)`` — the online phase
itself (decide, apply, run), supplied by the caller.

Guarantees (the limits are in :mod:`toolkit.scheduler.limits`):

- every non-blank line read gets exactly one answer: an outcome (``status``
  ``ok``, ``timeout``, ``failed``, ``cancelled``) for a valid request, an error
  line naming the problem for a malformed one (too long, not UTF-8, not JSON,
  too deep, a number out of range, a bad field, an id already in flight on the
  same connection); reading goes on with the next line;
- memory is bounded per client: a client with ``max_pending`` answers it has
  not read is not read from until it reads, and at most ``max_clients`` TCP
  connections are served at once;
- a request whose handling exceeds ``timeout_s`` is answered ``timeout``; its
  run is allowed to finish in the background (the testbed connection stays
  consistent) and the next request waits for it;
- SIGINT/SIGTERM (or :meth:`Server.shutdown`) stops reading, lets the worker
  finish the queued requests until shortly before ``grace_s`` ends, answers the
  rest ``cancelled`` and, when the grace period ends, drops any output a client
  has not taken: the server always returns within ``grace_s``. A second signal
  cancels what is left at once and drops what is not taken within
  ``FINAL_FLUSH_S``. In stdin mode EOF ends the input the same way, without the
  grace limit;
- in stdin mode a dead stdout (the consumer exited) stops everything at once,
  and :attr:`Server.exit_status` is then 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import signal
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from toolkit.errors import ToolkitError, check_count, check_seconds
from toolkit.scheduler.auth import peer_name, start_server
from toolkit.scheduler.channel import Channel, Source, StreamSink, open_input, open_output
from toolkit.scheduler.direct import DirectClient, HandoverReader, WriteRound
from toolkit.scheduler.frames import BadFrame, RequestSplitter, TensorRequest, request_from_frame
from toolkit.scheduler.limits import (
    FINAL_FLUSH_S,
    MAX_CLIENTS,
    MAX_LINE_BYTES,
    MAX_PENDING_ANSWERS,
    READ_CHUNK,
)
from toolkit.scheduler.lines import LineTooLong
from toolkit.scheduler.metrics import LOGGER, json_record, log_event
from toolkit.scheduler.protocol import (
    AnswerEncoder,
    Prepared,
    Request,
    RequestError,
    encode,
    error_line,
    parse_request,
)

if TYPE_CHECKING:
    from toolkit.scheduler.auth import Guard
    from toolkit.scheduler.frames import Item
    from toolkit.scheduler.metrics import Metrics

__all__ = ["Handler", "Server", "ServerStats", "parse_listen"]

#: the online phase: a request in, an outcome dict out
Handler = Callable[[Request], Awaitable[dict[str, Any]]]


@dataclass
class ServerStats:
    """What a server did: lines answered by kind, and answers a client never took."""

    accepted: int = 0
    malformed: int = 0
    ok: int = 0
    met: int = 0
    timeout: int = 0
    failed: int = 0
    cancelled: int = 0
    undelivered: int = 0

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
        grace_s: how long a signalled shutdown may take, at most.
        log: where the start/stop lines and the final statistics go.
        max_pending: answers one client may leave unread before it is not read.
        max_clients: concurrent TCP connections.
        guard: authenticates each TCP connection first (token, TLS); None: open.
        observer: told of each queued, malformed and answered request (the
            Prometheus :class:`~toolkit.scheduler.metrics.Metrics`); None: nobody.

    A handler with an ``immediate(request)`` method (the dry run) is called
    through it, without a task per request: it returns the outcome at once.
    While nothing is queued (and no shutdown has begun) such a request is
    decided by the reader as soon as it is read, without the queue and the
    worker; its id stays in flight until the rest of its chunk is read. A TCP
    client of such a handler is served by a
    :class:`~toolkit.scheduler.direct.DirectClient` once admitted (no tasks).
    """

    def __init__(self, handle: Handler, *, queue_size: int = 1024, timeout_s: float = 60.0,
                 grace_s: float = 30.0, log: Any = None,
                 max_pending: int = MAX_PENDING_ANSWERS, max_clients: int = MAX_CLIENTS,
                 guard: Guard | None = None, observer: Metrics | None = None) -> None:
        check_count(queue_size, "queue size")
        check_seconds(timeout_s, "timeout", positive=True)
        check_seconds(grace_s, "grace period")
        self.handle = handle
        self._immediate: Callable[[Request], dict[str, Any]] | None = getattr(
            handle, "immediate", None)
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.log = log if log is not None else (sys.stderr or io.StringIO())  # 2>&- : no log
        self.max_pending = max_pending
        self.max_clients = max_clients
        self.guard = guard
        self.observer = observer
        self.started = time.time()
        self.stats = ServerStats()
        self._encode = AnswerEncoder()
        self._queue: asyncio.Queue | None = None
        self._stopping: asyncio.Event | None = None
        self._cancel_rest = False
        self._inflight: asyncio.Future | None = None
        self._channels: set[Channel] = set()
        self._direct: set[DirectClient] = set()   # dry-run TCP clients (no tasks)
        self._writes = WriteRound()
        self._connections: set[asyncio.Task] = set()
        self._admitting: set[asyncio.Task] = set()    # connections still authenticating
        self._timers: list[asyncio.TimerHandle] = []
        self._signalled = False
        self._output: Channel | None = None     # stdin mode: the one output that must live
        self._crashed = False

    @property
    def exit_status(self) -> int:
        """0 when served to the end; 1 when stdout went away, answers were not
        delivered on stdout, or the server met an internal error."""
        out = self._output
        lost = out is not None and (out.peer_gone or out.undelivered > 0)
        return 1 if lost or self._crashed else 0

    # -- shutdown ----------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop reading; finish queued requests within the grace period.

        A second call (a second signal) ends everything at once.
        """
        if self._stopping is None:
            return
        loop = asyncio.get_running_loop()
        if self._stopping.is_set():         # again: cancel now, drop what is not taken soon
            self._expire()
            self._timers.append(loop.call_later(FINAL_FLUSH_S, self._abort_all))
            return
        self._signalled = True
        self._stop_reading()
        self._timers.append(loop.call_later(
            max(0.0, self.grace_s - min(FINAL_FLUSH_S, self.grace_s / 2)), self._expire))
        self._timers.append(loop.call_later(self.grace_s, self._abort_all))

    def _stop_reading(self) -> None:
        assert self._stopping is not None
        self._stopping.set()
        for task in list(self._admitting):
            task.cancel()
        for channel in list(self._channels):
            if channel.reader is not None:
                channel.reader.cancel()
        for client in list(self._direct):
            client.stop()

    def _expire(self) -> None:
        """Answer what is left ``cancelled`` (and stop the run in progress)."""
        self._cancel_rest = True
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()

    def _abort_all(self) -> None:
        for client in [*self._channels, *self._direct]:
            client.abort("shutdown grace period ended")

    def _output_gone(self, channel: Channel) -> None:
        """Stdin mode: stdout is gone, so nothing can be answered; stop now."""
        if channel.peer_gone:
            self._stop_reading()
            self._expire()

    def _install_signals(self) -> list[int]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.shutdown)
                installed.append(sig)
        return installed

    def _note(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            log_event("error", text)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(serving, details) for ``/healthz``: not healthy once stopping."""
        stopping = self._stopping is not None and self._stopping.is_set()
        return not stopping, {
            "status": "stopping" if stopping else "serving",
            "uptime_s": round(time.time() - self.started, 3),
            "queue_depth": self._queue.qsize() if self._queue is not None else 0,
            "connections": self._clients(), **self.stats.as_dict()}

    def _clients(self) -> int:
        return len(self._channels) + len(self._direct)

    # -- answering -------------------------------------------------------------------
    def _answer(self, request: Request, channel: Channel | DirectClient,
                outcome: dict[str, Any], held: bool = False) -> None:
        status = outcome.get("status", "ok")
        if status == "ok":
            self.stats.ok += 1
            self.stats.met += bool(outcome.get("met"))
        elif status in ("timeout", "failed", "cancelled"):
            setattr(self.stats, status, getattr(self.stats, status) + 1)
            log_event("info" if status == "cancelled" else "warning", f"request {status}",
                      request_id=f"{channel.name}/{request.line}", id=request.id,
                      error=outcome.get("error"))
        if LOGGER.isEnabledFor(logging.DEBUG):
            log_event("debug", "answered", request_id=f"{channel.name}/{request.line}",
                      id=request.id, status=status, config=outcome.get("config"),
                      latency_ms=outcome.get("latency_ms"), met=outcome.get("met"))
        try:
            data = self._encode(request.id, request.line, outcome)
        except Exception as exc:  # an outcome we cannot write is still answered
            data = encode({"id": request.id, "line": request.line, "status": "failed",
                           "error": f"the outcome could not be encoded ({type(exc).__name__})"})
        if held:                            # its id leaves flight with its chunk
            channel.send(data)
        else:
            channel.answer(request.id, data)

    def _decide_now(self, request: Request) -> dict[str, Any]:
        """The outcome of an immediate handler (the dry run)."""
        assert self._immediate is not None
        try:
            outcome = self._immediate(request)
            if type(outcome) is Prepared and outcome.get("status") == "ok":
                return outcome                  # its status is among its encoded fields
            return {"status": "ok", **outcome}
        except Exception as exc:
            return {"status": "failed", "error": str(exc) or type(exc).__name__}

    def _settle(self, request: Request, channel: Channel | DirectClient, accepted: float,
                outcome: dict[str, Any], held: bool = False) -> None:
        """Answer a request with its outcome and tell the observer."""
        seconds = time.perf_counter() - accepted
        outcome["queue_ms"] = round(seconds * 1e3, 3)
        self._answer(request, channel, outcome, held)
        if self.observer is not None:
            self.observer.answered(outcome, seconds)

    async def _run_one(self, request: Request) -> dict[str, Any]:
        if self._inflight is not None and not self._inflight.done():
            await asyncio.wait([self._inflight])  # a timed-out run still holds the testbed
        if self._cancel_rest:
            return {"status": "cancelled", "error": "shutdown before it ran"}
        if self._immediate is not None:  # decides at once: no task, no timer
            return self._decide_now(request)
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
        while (item := await self._queue.get()) is not None:
            request, channel, accepted = item
            if channel.lost is not None:        # nobody to answer: do not run it
                outcome = {"status": "cancelled", "error": f"not run: {channel.lost}"}
            else:
                outcome = await self._run_one(request)
            self._settle(request, channel, accepted, outcome)

    # -- reading -----------------------------------------------------------------------
    async def _read(self, channel: Channel, source: Source) -> None:
        """Read a client's lines to its end, answering or queueing each in order."""
        splitter = RequestSplitter(MAX_LINE_BYTES)
        try:
            while True:
                chunk = await source()
                try:                            # at the end: what the splitter still holds
                    for item in splitter.feed(chunk) if chunk else splitter.finish():
                        await self._take(channel, item)
                finally:
                    channel.release_held()
                if not chunk:
                    return
        except (ConnectionError, OSError):     # the client's input broke off: its end
            pass

    def _check(self, channel: Channel | DirectClient, item: Item, line: int,
               duplicates: bool = True) -> Request | RequestError:
        """The request on a line (or in a tensor frame), or the error that answers it."""
        if isinstance(item, LineTooLong):
            return RequestError(f"request line longer than {MAX_LINE_BYTES} bytes "
                                f"({item.size} bytes); skipped to its end")
        if isinstance(item, BadFrame):
            return RequestError(item.reason)
        try:
            request = (request_from_frame(item, line) if isinstance(item, TensorRequest)
                       else parse_request(item, line))
        except RequestError as exc:
            return exc
        except Exception as exc:  # never stop reading over one line
            return RequestError(f"could not read the request ({type(exc).__name__})")
        earlier = channel.inflight_line(request.id) if duplicates else None
        if earlier is not None:
            return RequestError(f"duplicate id {json.dumps(request.id)}: the request on line "
                                f"{earlier} with this id is not answered yet; ids must be unique "
                                "among a client's unanswered requests", request.id)
        return request

    async def _take(self, channel: Channel, item: Item) -> None:
        """Answer or queue one line (waiting for the client's slot and queue room)."""
        assert self._queue is not None
        channel.line += 1
        line = channel.line
        if isinstance(item, bytes) and not item.strip():
            return
        try:
            await channel.reserve()
        except asyncio.CancelledError:  # shutdown while the client had no room: answer it
            checked = self._check(channel, item, line, duplicates=False)
            self._refuse(channel, checked, "shutdown before it was queued")
            raise
        checked = self._check(channel, item, line)
        if self._answer_now(channel, checked, line):
            return
        assert isinstance(checked, Request)
        channel.begin(checked.id, line)
        if self.observer is not None:
            self.observer.queued(self._queue.qsize())
        try:
            await self._queue.put((checked, channel, time.perf_counter()))
        except asyncio.CancelledError:  # shutdown while waiting for room: answer it
            self._refuse(channel, checked, "shutdown before it was queued")
            raise
        self.stats.accepted += 1

    def _answer_now(self, channel: Channel | DirectClient, checked: Request | RequestError,
                    line: int) -> bool:
        """Answer a malformed line, or decide a dry-run request when nothing is queued
        before it (in line order, without the queue and the worker's wake-up; its id
        is held to the end of its chunk); False: the request must be queued."""
        if isinstance(checked, RequestError):
            self._malformed(channel, checked, line)
            return True
        if self._immediate is None or not self._idle() or channel.lost is not None:
            return False
        if self.observer is not None:
            self.observer.queued(0)
        self.stats.accepted += 1
        channel.hold(checked.id, line)
        self._settle(checked, channel, time.perf_counter(), self._decide_now(checked),
                     held=True)
        return True

    def _take_now(self, client: DirectClient, item: Item) -> None:
        """A direct client's message, answered at once (``cancelled`` once stopping)."""
        client.line += 1
        if isinstance(item, bytes) and not item.strip():
            return
        checked = self._check(client, item, client.line)
        if not self._answer_now(client, checked, client.line):
            self._refuse(client, checked, "shutdown before it was queued")

    def _read_failed(self, client: Channel | DirectClient, exc: BaseException) -> None:
        self._crashed = True
        self._note(f"{client.name}: internal error while reading:\n"
                   + "".join(traceback.format_exception(exc)))

    def _idle(self) -> bool:
        """Nothing queued or running, and no shutdown has begun: a request may be
        decided at once without overtaking another."""
        assert self._queue is not None and self._stopping is not None
        return (not self._queue.qsize() and not self._cancel_rest
                and not self._stopping.is_set()
                and (self._inflight is None or self._inflight.done()))

    def _malformed(self, channel: Channel | DirectClient, error: RequestError,
                   line: int) -> None:
        """Answer a malformed line with its error line; count, observe and log it."""
        self.stats.malformed += 1
        if self.observer is not None:
            self.observer.malformed()
        if LOGGER.isEnabledFor(logging.DEBUG):
            log_event("debug", "malformed", request_id=f"{channel.name}/{line}",
                      error=str(error))
        channel.send(error_line(error, line))

    def _refuse(self, channel: Channel | DirectClient, checked: Request | RequestError,
                why: str) -> None:
        """Answer a line read as shutdown began: its error, or ``cancelled`` (untimed)."""
        if isinstance(checked, RequestError):
            self._malformed(channel, checked, channel.line)
            return
        self.stats.cancelled += 1
        outcome = {"id": checked.id, "line": checked.line, "status": "cancelled", "error": why}
        channel.answer(checked.id, encode(outcome))
        if self.observer is not None:
            self.observer.answered(outcome, None)

    async def _serve_channel(self, channel: Channel, source: Source) -> None:
        """Read a client until its end (or shutdown), then deliver its answers and close."""
        self._channels.add(channel)
        try:
            channel.reader = asyncio.create_task(self._read(channel, source))
            if self._stopping is not None and self._stopping.is_set():
                channel.reader.cancel()
            await asyncio.wait([channel.reader])
            if not channel.reader.cancelled() and channel.reader.exception() is not None:
                self._read_failed(channel, channel.reader.exception())
            await channel.close()
        finally:
            self._channels.discard(channel)
            self.stats.undelivered += channel.undelivered

    # -- stdin -------------------------------------------------------------------------
    async def run_stdin(self, stdin: BinaryIO | None = None,
                        stdout: BinaryIO | None = None) -> ServerStats:
        """Serve JSON lines from ``stdin`` until EOF or a signal; outcomes to ``stdout``."""
        for name, given in (("stdin", stdin), ("stdout", stdout)):
            if given is None and getattr(sys, name) is None:
                raise ToolkitError(f"{name} is closed: the scheduler serves JSON lines on "
                                   "stdin/stdout, or on TCP with --listen HOST:PORT")
        stdin = stdin if stdin is not None else sys.stdin.buffer
        stdout = stdout if stdout is not None else sys.stdout.buffer
        async with self._serving():
            channel = Channel(await open_output(stdout), "stdin", max_pending=self.max_pending,
                              on_lost=self._output_gone)
            self._output = channel
            await self._serve_channel(channel, await open_input(stdin))
        if self.exit_status and channel.peer_gone:
            self._note(f"error: {channel.lost}: {channel.undelivered} answer(s) not delivered")
        return self.stats

    # -- TCP ---------------------------------------------------------------------------
    async def run_tcp(self, host: str, port: int,
                      on_listen: Callable[[str, int], None] | None = None) -> ServerStats:
        """Serve JSON lines on TCP connections until a signal or :meth:`shutdown`.

        Outcomes go back on the connection a request came from; a connection
        that sends EOF gets its outstanding outcomes before it is closed.

        Raises:
            ToolkitError: the address cannot be listened on.
        """
        try:
            server = await start_server(self._connection, host, port, limit=READ_CHUNK,
                                        guard=self.guard, start_serving=False)
        except OSError as exc:
            raise ToolkitError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        async with self._serving():
            await server.start_serving()
            if on_listen is not None:
                on_listen(*server.sockets[0].getsockname()[:2])
            assert self._stopping is not None
            try:
                await self._stopping.wait()
            finally:
                server.close()
            while self._connections:
                await asyncio.wait(set(self._connections))
        return self.stats

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if self._clients() >= self.max_clients:
                writer.write(encode({"error": f"too many connections (at most "
                                     f"{self.max_clients}); try again later", "line": 0}))
                writer.close()
                return
            if self.guard is not None and not await self._admit(task, reader, writer):
                return
            name = peer_name(writer.get_extra_info("peername"))
            if self.observer is not None:
                self.observer.connections.inc()
            try:
                if self._immediate is not None and not writer.transport.is_closing():
                    await self._serve_direct(name, reader, writer)
                else:
                    channel = Channel(StreamSink(writer), name, max_pending=self.max_pending)
                    await self._serve_channel(channel, lambda: reader.read(READ_CHUNK))
            finally:
                if self.observer is not None:
                    self.observer.connections.dec()
        finally:
            self._connections.discard(task)

    async def _serve_direct(self, name: str, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        """Serve a dry-run client from its transport's callbacks until it is closed."""
        assert self._stopping is not None
        client = DirectClient(name, self._take_now, self._read_failed, self._writes)
        self._direct.add(client)
        try:
            assert isinstance(reader, HandoverReader)  # the listeners make them
            client.attach(writer.transport, *await reader.hand_over())  # type: ignore[arg-type]
            if self._stopping.is_set():
                client.stop()
            await client.closed
        finally:
            self._direct.discard(client)
            self.stats.undelivered += client.undelivered

    async def _admit(self, task: asyncio.Task, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> bool:
        """Authenticate a connection; a shutdown cancels it (it has nothing to answer)."""
        assert self.guard is not None
        if self._stopping is not None and self._stopping.is_set():
            writer.transport.abort()
            return False
        self._admitting.add(task)
        try:
            return await self.guard.admit(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
            return False
        finally:
            self._admitting.discard(task)

    # -- common ----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _serving(self) -> AsyncIterator[None]:
        """Queue, worker and signal handlers around serving; the stats line after it."""
        self._queue = asyncio.Queue(self.queue_size)
        self._stopping = asyncio.Event()
        installed = self._install_signals()
        worker = asyncio.create_task(self._worker())
        try:
            yield
            if not worker.done():
                await self._queue.put(None)
            await asyncio.wait([worker])
            if not worker.cancelled() and worker.exception() is not None:
                self._crashed = True
                self._note("internal error in the worker:\n"
                           + "".join(traceback.format_exception(worker.exception())))
        finally:
            worker.cancel()
            loop = asyncio.get_running_loop()
            for sig in installed:
                loop.remove_signal_handler(sig)
            for timer in self._timers:
                timer.cancel()
        with contextlib.suppress(OSError, ValueError):
            auth = {"auth_failed": self.guard.stats.failed} if self.guard is not None else {}
            print(json_record("info", "stopped", scheduler="stopped", signalled=self._signalled,
                              **self.stats.as_dict(), **auth), file=self.log, flush=True)


def _consume(task: asyncio.Future) -> None:
    """Retrieve a background task's exception so it is not reported as lost."""
    if not task.cancelled():
        task.exception()
