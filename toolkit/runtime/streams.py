"""asyncio streams that receive large frame payloads without copying them.

:func:`open_connection` and :func:`start_server` are drop-in replacements for the
asyncio functions of the same names. Their reader, a :class:`FrameReader`, is an
ordinary :class:`asyncio.StreamReader` with one more method,
:meth:`FrameReader.readinto_exactly`, which lets the socket write straight into
a caller's buffer: the connection's protocol is an :class:`asyncio.BufferedProtocol`
whose ``get_buffer`` hands the transport that buffer while a payload is being
read, and a small staging buffer otherwise (whose bytes go to the usual
StreamReader buffer for ``readexactly`` and friends).
:func:`~toolkit.runtime.framing.read_frame` uses it for tensor payloads, so a
payload costs one kernel-to-user copy, as with a raw ``recv_into``, instead of
three copies (kernel to chunk, chunk to stream buffer, buffer to result) and a
task wake-up per 256 KiB chunk with a plain StreamReader.

It works on asyncio's own event loop and on uvloop (which the workers run where
it is installed, see :mod:`toolkit.aio`).

Both kinds of reader work with :func:`~toolkit.runtime.framing.read_frame`; this
one is only faster. As with ``readexactly``, a cancelled ``readinto_exactly``
leaves the stream in the middle of a frame: close the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["STREAM_LIMIT", "FrameReader", "open_connection", "start_server"]

STREAM_LIMIT = 1 << 20
"""Default StreamReader limit (buffered bytes before reading pauses)."""

_STAGING = 64 * 1024


class FrameReader(asyncio.StreamReader):
    """A StreamReader that can also receive directly into a caller's buffer."""

    def __init__(self, limit: int = STREAM_LIMIT, loop: asyncio.AbstractEventLoop | None = None):
        super().__init__(limit=limit, loop=loop)
        self._target: memoryview | None = None  # unfilled rest of the caller's buffer

    async def readinto_exactly(self, buffer: memoryview | bytearray) -> None:
        """Fill ``buffer`` completely from the stream.

        Bytes already buffered are copied first; the rest is received by the
        socket straight into ``buffer`` (what the socket already holds at once,
        without waiting for the next event-loop turn).

        Raises:
            asyncio.IncompleteReadError: the stream ended before ``buffer`` was
                full (``partial`` holds what arrived).
            ConnectionError: the connection broke.
        """
        view = memoryview(buffer).cast("B")
        n = len(view)
        got = min(len(self._buffer), n)
        if got:
            with memoryview(self._buffer) as buffered:
                view[:got] = buffered[:got]
            del self._buffer[:got]
            self._maybe_resume_transport()
        if got == n:
            return
        if self._exception is not None:
            raise self._exception
        self._target = view[got:]
        try:
            self._read_available()
            while self._target is not None:
                if self._eof:
                    filled = n - len(self._target)
                    raise asyncio.IncompleteReadError(bytes(view[:filled]), n)
                await self._wait_for_data("readinto_exactly")
        finally:
            self._target = None

    def _read_available(self) -> None:
        """Receive what the socket holds now straight into the target, skipping a loop turn."""
        fd = self._direct_fd()
        while fd is not None and self._target is not None:
            try:
                n = os.readv(fd, [self._target])
            except (BlockingIOError, InterruptedError):
                return
            if n == 0:  # end of stream: leave it to the transport to notice
                return
            self._target_filled(n)

    def _direct_fd(self) -> int | None:
        transport = self._transport
        if transport is None or os.name != "posix" or transport.is_closing():
            return None
        if transport.get_extra_info("sslcontext") is not None:
            return None
        sock = transport.get_extra_info("socket")
        return None if sock is None else sock.fileno()

    @property
    def task_waiting(self) -> bool:
        """Whether a read is waiting for data (feeding the reader wakes it)."""
        return self._waiter is not None

    @property
    def paused(self) -> bool:
        """Whether the reader paused its transport (its buffer is over the limit)."""
        return self._paused

    def _target_filled(self, nbytes: int) -> None:
        rest = self._target[nbytes:]
        if len(rest):
            self._target = rest
        else:
            self._target = None
            self._wakeup_waiter()


class _FrameProtocol(asyncio.BufferedProtocol):
    """The transport's protocol: receives into the reader's target buffer.

    It wraps an :class:`asyncio.StreamReaderProtocol` (which the StreamWriter
    and the server's callback see) instead of subclassing it, because an event
    loop may treat any :class:`asyncio.Protocol` subclass as a plain protocol:
    uvloop then calls ``data_received`` and never ``get_buffer``.
    """

    def __init__(self, reader: FrameReader, client_connected_cb: Any = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.stream = asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)
        self._reader = reader
        self._staging = memoryview(bytearray(_STAGING))
        self._last_target = False
        self._loop = loop or asyncio.get_event_loop()
        # uvloop keeps reading while the socket has data (up to 32 reads) before a
        # woken task runs: without a pause, a payload would land in the staging
        # buffer and be copied twice instead of arriving in the caller's buffer
        self._greedy = type(self._loop).__module__.startswith("uvloop")
        self._transport: asyncio.Transport | None = None
        self._held = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # frames are whole messages: send each at once (no Nagle delay)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._transport = transport  # type: ignore[assignment]
        self.stream.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stream.connection_lost(exc)

    def eof_received(self) -> bool:
        return bool(self.stream.eof_received())

    def pause_writing(self) -> None:
        self.stream.pause_writing()

    def resume_writing(self) -> None:
        self.stream.resume_writing()

    def get_buffer(self, sizehint: int) -> memoryview:
        target = self._reader._target
        self._last_target = target is not None
        return target if target is not None else self._staging

    def buffer_updated(self, nbytes: int) -> None:
        if self._last_target:
            self._reader._target_filled(nbytes)
            return
        wakes = self._reader.task_waiting
        self._reader.feed_data(self._staging[:nbytes])
        if wakes and self._greedy and nbytes == len(self._staging) and not self._held:
            # more is waiting (libuv reads on only after a full buffer): let the woken
            # task run, and maybe set a target, before reading on
            self._held = True
            self._transport.pause_reading()
            self._loop.call_soon(self._release)

    def _release(self) -> None:
        self._held = False
        transport = self._transport
        if transport is not None and not transport.is_closing() and not self._reader.paused:
            transport.resume_reading()


async def open_connection(
    host: str | None = None, port: int | None = None, *, limit: int = STREAM_LIMIT, **kwds: Any
) -> tuple[FrameReader, asyncio.StreamWriter]:
    """Like :func:`asyncio.open_connection`, with a :class:`FrameReader`."""
    loop = asyncio.get_running_loop()
    reader = FrameReader(limit=limit, loop=loop)
    protocol = _FrameProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, **kwds)
    return reader, asyncio.StreamWriter(transport, protocol.stream, reader, loop)


async def start_server(
    client_connected_cb: Callable[[FrameReader, asyncio.StreamWriter], Awaitable[None] | None],
    host: str | None = None,
    port: int | None = None,
    *,
    limit: int = STREAM_LIMIT,
    **kwds: Any,
) -> asyncio.Server:
    """Like :func:`asyncio.start_server`; connections get a :class:`FrameReader`."""
    loop = asyncio.get_running_loop()

    def factory() -> _FrameProtocol:
        return _FrameProtocol(FrameReader(limit=limit, loop=loop), client_connected_cb, loop=loop)

    return await loop.create_server(factory, host, port, **kwds)
