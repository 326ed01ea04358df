"""One client of the scheduler: where its lines come from and its answers go.

A :class:`Channel` pairs an input (a :data:`Source` of byte chunks: stdin or a
TCP connection) with an output (a :class:`Sink`: stdout or the same
connection). It numbers the client's lines, remembers which request ids are in
flight, and owns a writer task that sends answers in order, waiting for the
client to take them (``drain``).

Memory per client is bounded by backpressure: every line that needs an answer
first takes one of ``max_pending`` slots (:meth:`Channel.reserve`); a slot is
given back only when its answer has been handed to the operating system. A
client that does not read its answers therefore runs out of slots, and the
server stops reading from it until it does.

When the output is gone (the client closed it, or the process is shutting down
and aborted it), answers are counted as undelivered and dropped, the reading
task is cancelled, and ``on_lost`` is called once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from toolkit.scheduler.limits import MAX_PENDING_ANSWERS, READ_CHUNK, WRITE_HIGH_WATER

__all__ = ["Channel", "FileSink", "Sink", "Source", "StreamSink", "open_input", "open_output"]

#: the next chunk of a client's input; ``b""`` at its end
Source = Callable[[], Awaitable[bytes]]

_MAX_BATCH = 512


class Sink:
    """Where a client's answers go. ``on_lost`` is called when the peer goes away."""

    on_lost: Callable[[str], None] | None = None

    async def write(self, data: bytes) -> None:
        """Write and wait until the peer has room again.

        Raises:
            ConnectionError, OSError: the peer is gone.
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Close once everything written has been sent (waits for the peer to take it)."""

    def abort(self) -> None:
        """Close now, dropping what was not sent."""

    def unsent(self) -> int:
        """Bytes written but not yet handed to the operating system."""
        return 0


class StreamSink(Sink):
    """An asyncio stream: a TCP connection or a pipe, with flow control.

    Args:
        writer: the stream.
        restore_fd: a descriptor to put back in blocking mode on close (stdout,
            whose file description the pipe transport made non-blocking).
    """

    def __init__(self, writer: asyncio.StreamWriter, restore_fd: int | None = None) -> None:
        self.writer = writer
        self.restore_fd = restore_fd
        self.closed_by_us = False
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    async def write(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise ConnectionResetError("the reader closed its end")
        self.writer.write(data)
        await self.writer.drain()

    def peer_lost(self, exc: BaseException | None) -> None:
        """The transport lost its peer (called by the output protocol)."""
        if not self.closed_by_us and self.on_lost is not None:
            reason = f"{type(exc).__name__}: {exc}" if exc else "the reader closed its end"
            self.on_lost(f"output closed ({reason})")

    async def close(self) -> None:
        self.closed_by_us = True
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        finally:
            self._restore()

    def abort(self) -> None:
        self.closed_by_us = True
        self.writer.transport.abort()
        self._restore()

    def unsent(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    def _restore(self) -> None:
        if self.restore_fd is not None:
            with contextlib.suppress(OSError):
                os.set_blocking(self.restore_fd, True)


class FileSink(Sink):
    """A file-like object written with blocking calls (regular files, test sinks)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    async def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.stream.flush()


class _OutputProtocol(asyncio.streams.FlowControlMixin):
    """Flow control for a write pipe that tells its sink when the reader is gone."""

    def __init__(self) -> None:
        super().__init__()
        self.sink: StreamSink | None = None
        self._closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if not self._closed.done():
            self._closed.set_result(None)
        if self.sink is not None:
            self.sink.peer_lost(exc)

    def _get_close_waiter(self, stream: asyncio.StreamWriter) -> asyncio.Future:
        return self._closed     # what StreamWriter.wait_closed awaits


async def open_output(stream: BinaryIO | Any) -> Sink:
    """A sink over ``stream``: non-blocking with flow control where the loop can poll it.

    Pipes, sockets and terminals are written through an asyncio pipe transport
    on a duplicate of the descriptor (so a consumer that stops reading blocks
    only this client, never the event loop, and one that exits is noticed at
    once); regular files and objects without a descriptor are written directly.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return FileSink(stream)
    stream.flush()
    if not _pollable(fd):               # a regular file or /dev/null: writes never wait
        return FileSink(stream)
    loop = asyncio.get_running_loop()
    pipe = open(os.dup(fd), "wb", buffering=0)  # noqa: SIM115 - the transport owns it
    try:
        transport, protocol = await loop.connect_write_pipe(_OutputProtocol, pipe)
    except (ValueError, OSError):
        pipe.close()
        return FileSink(stream)
    sink = StreamSink(asyncio.StreamWriter(transport, protocol, None, loop), restore_fd=fd)
    protocol.sink = sink
    return sink


async def open_input(stream: BinaryIO | Any) -> Source:
    """A chunk source over ``stream``: polled by the loop where possible, else on a thread."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_CHUNK)
    try:
        if not _pollable(stream.fileno()):
            raise ValueError("not pollable")
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
    except (AttributeError, ValueError, OSError):  # a regular file, /dev/null: on a thread
        read = getattr(stream, "read1", stream.read)
        return lambda: asyncio.to_thread(read, READ_CHUNK)
    return lambda: reader.read(READ_CHUNK)


def _pollable(fd: int) -> bool:
    """Whether the event loop can wait on ``fd`` (pipes, sockets, terminals; not
    regular files or devices such as /dev/null, which epoll refuses)."""
    with selectors.DefaultSelector() as selector:
        try:
            selector.register(fd, selectors.EVENT_READ)
        except (OSError, ValueError):
            return False
    return True


class Channel:
    """One client: line numbers, in-flight ids, bounded outstanding answers.

    Args:
        sink: where the answers go.
        name: for log lines (``stdin``, or the peer's address).
        max_pending: answers the client may have outstanding before reading stops.
        on_lost: called once, with this channel, when its output is gone.
    """

    def __init__(self, sink: Sink, name: str = "stdin", *,
                 max_pending: int = MAX_PENDING_ANSWERS,
                 on_lost: Callable[[Channel], None] | None = None) -> None:
        self.sink = sink
        self.name = name
        self.line = 0
        self.lost: str | None = None
        self.peer_gone = False
        self.undelivered = 0
        self.reader: asyncio.Task | None = None
        self._on_lost = on_lost
        self._slots = asyncio.Semaphore(max_pending)
        # answers not yet written, and the writer's wake-up while it waits for one: a
        # plain list (not an asyncio.Queue) so that queueing an answer costs an append
        self._outbox: list[bytes] = []
        self._wake: asyncio.Future | None = None
        self._ending = False                # close(): write what is left, then stop
        self._inflight: dict[str | int, int] = {}
        self._held: list[str | int] = []
        self._settled = asyncio.Event()
        self._settled.set()
        self._closed = False
        sink.on_lost = self.lose
        self._writer = asyncio.create_task(self._write_loop())

    # -- requests ----------------------------------------------------------------
    async def reserve(self) -> None:
        """Take a slot for one answer; waits while the client has too many unread."""
        await self._slots.acquire()

    def inflight_line(self, request_id: str | int) -> int | None:
        """The line of the unanswered request with this id, or None."""
        return self._inflight.get(request_id)

    def begin(self, request_id: str | int, line: int) -> None:
        """A request was accepted: its id is in flight until :meth:`answer`."""
        self._inflight[request_id] = line
        self._settled.clear()

    def hold(self, request_id: str | int, line: int) -> None:
        """A request answered at once whose id stays in flight until
        :meth:`release_held` (the end of the chunk it came in): a later line of the
        same chunk with this id is a duplicate, as if the answer came later."""
        self._inflight[request_id] = line
        self._held.append(request_id)

    def release_held(self) -> None:
        """The ids :meth:`hold` kept are no longer in flight."""
        if self._held:
            pop = self._inflight.pop
            for request_id in self._held:
                pop(request_id, None)
            self._held.clear()
            if not self._inflight:
                self._settled.set()

    def answer(self, request_id: str | int, data: bytes) -> None:
        """The answer to an accepted request (its slot was reserved)."""
        self._inflight.pop(request_id, None)
        if not self._inflight:
            self._settled.set()
        self.send(data)

    def send(self, data: bytes) -> None:
        """Queue one answer line; never waits (its slot was reserved)."""
        if self.lost is not None:
            self.undelivered += 1
            self._slots.release()
        else:
            self._outbox.append(data)
            self._nudge()

    def _nudge(self) -> None:
        """Wake the writer if it waits (it then takes every answer queued meanwhile)."""
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)

    # -- output ------------------------------------------------------------------
    async def _write_loop(self) -> None:
        batch: list[bytes] = []
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._outbox:
                    if self._ending:
                        return
                    self._wake = loop.create_future()
                    await self._wake
                    continue
                if len(self._outbox) <= _MAX_BATCH:
                    batch, self._outbox = self._outbox, []
                else:
                    batch = self._outbox[:_MAX_BATCH]
                    del self._outbox[:_MAX_BATCH]
                if self.lost is None:
                    try:
                        await self.sink.write(b"".join(batch))
                    except (ConnectionError, OSError) as exc:
                        self.lose(f"output closed ({type(exc).__name__}: {exc})")
                if self.lost is not None:
                    self.undelivered += len(batch)
                for _ in batch:
                    self._slots.release()
                batch = []
        except asyncio.CancelledError:     # aborted: what is left was not delivered
            self.undelivered += len(batch) + len(self._outbox)
            self._outbox = []

    def lose(self, reason: str, by_peer: bool = True) -> None:
        """The output is gone: drop answers from now on, stop reading, tell the owner.

        Args:
            reason: why, for the log.
            by_peer: the client went away (False: the server aborted it).
        """
        if self.lost is not None:
            return
        self.lost = reason
        self.peer_gone = by_peer
        if self.reader is not None:
            self.reader.cancel()
        if self._on_lost is not None:
            self._on_lost(self)

    async def close(self) -> None:
        """Wait for every accepted request's answer, send them all, then close."""
        await self._settled.wait()
        self._ending = True
        self._nudge()
        await asyncio.wait([self._writer])
        await self.sink.close()
        self._closed = True

    def abort(self, reason: str) -> None:
        """Stop now: unsent answers are dropped (counted as undelivered)."""
        if self._closed:
            return
        if self._writer.done() and self.sink.unsent():
            self.undelivered += 1           # the last answers, still in the buffer
        self.lose(reason, by_peer=False)
        self._settled.set()
        self._writer.cancel()
        self.sink.abort()
