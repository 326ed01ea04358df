"""A dry-run TCP client served from its transport's callbacks, without tasks.

In ``--dry-run`` every request is decided the moment it is read, so after a
connection is admitted (:class:`~toolkit.scheduler.auth.Guard`) the server
hands its transport to a :class:`DirectClient`: each read is split into lines
(and tensor frames) in ``data_received``, each line is answered at once by the
server's ``take`` callback, and the chunk's answers go out in one
``transport.write`` -- after the other reads of the same event-loop round
(:class:`WriteRound`: a write per read would wake the clients once per
connection instead of once per round, which costs both sides more). No reader
or writer task, no queue: one callback per read.

The guarantees of :class:`~toolkit.scheduler.channel.Channel` hold:

- every non-blank line gets exactly one answer, in order; the ids of a chunk
  stay in flight until the chunk is done (a duplicate within it is refused);
- memory is bounded by backpressure: when the transport's buffer passes
  :data:`~toolkit.scheduler.limits.WRITE_HIGH_WATER` (``pause_writing``), the
  rest of the chunk waits and nothing more is read until the client reads;
- :meth:`DirectClient.stop` (shutdown) answers what was read, stops reading and
  closes once the answers are sent; :meth:`DirectClient.abort` drops them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from toolkit.scheduler.frames import RequestSplitter
from toolkit.scheduler.limits import MAX_LINE_BYTES, WRITE_HIGH_WATER

if TYPE_CHECKING:
    from toolkit.scheduler.frames import Item

__all__ = ["DirectClient", "HandoverReader", "WriteRound"]

#: answers gathered before they are written (so a full buffer is noticed early)
_BATCH = 64


class HandoverReader(asyncio.StreamReader):
    """A StreamReader that can hand what it holds to the transport's next protocol.

    Reading the token line may read past it; those bytes belong to the
    :class:`DirectClient` that takes the transport over. The listeners
    (:func:`~toolkit.scheduler.auth.start_server`) give every connection one.
    """

    ended = False
    """Whether the peer's end of stream arrived."""

    def feed_eof(self) -> None:
        self.ended = True
        super().feed_eof()

    async def hand_over(self) -> tuple[bytes, bool]:
        """(the bytes held, whether the peer ended) -- emptying the reader for good.

        Never waits: the reader is ended first, so reading returns at once what
        it holds. Call it just before the transport gets its new protocol.
        """
        ended = self.ended
        super().feed_eof()
        return await self.read(), ended


class WriteRound:
    """Writes the answers of the clients that have some, once per event-loop round,
    after that round's reads."""

    def __init__(self) -> None:
        self._due: list[DirectClient] = []

    def add(self, client: DirectClient) -> None:
        """``client`` has answers to write at the end of this round."""
        if not self._due:
            asyncio.get_running_loop().call_soon(self._write)
        self._due.append(client)

    def _write(self) -> None:
        due, self._due = self._due, []
        for client in due:
            client.flush()


class DirectClient(asyncio.Protocol):
    """One dry-run client on a transport; see the module docstring.

    Args:
        name: for log lines (the peer's address).
        take: answers one message of this client at once (through :meth:`send`,
            :meth:`hold` and :meth:`answer`), as the server's ``_take`` does.
        failed: called with an exception ``take`` raised; the client is then aborted.
        writes: where the answers of a read wait for the end of the round.
    """

    def __init__(self, name: str, take: Callable[[DirectClient, Item], None],
                 failed: Callable[[DirectClient, BaseException], None],
                 writes: WriteRound) -> None:
        self.name = name
        self.line = 0
        self.lost: str | None = None
        self.undelivered = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._take = take
        self._failed = failed
        self._writes = writes
        self._due = False                       # in the write round
        self._splitter = RequestSplitter(MAX_LINE_BYTES)
        self._items: deque[Item] = deque()      # read, not yet answered (one chunk at most)
        self._inflight: dict[str | int, int] = {}
        self._out: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._full = False                      # the transport's buffer is above high water
        self._stopped = False

    def attach(self, transport: asyncio.Transport, buffered: bytes, eof: bool) -> None:
        """Take ``transport`` over, with what was read on it before and whether it ended."""
        self._transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        transport.set_protocol(self)
        if buffered:
            self.data_received(buffered)
        if eof:
            if not self.eof_received():
                transport.close()
        elif not self._full and not transport.is_reading():
            transport.resume_reading()

    # -- requests (called by ``take``) ---------------------------------------------
    def inflight_line(self, request_id: str | int) -> int | None:
        """The line of the unanswered request with this id, or None."""
        return self._inflight.get(request_id)

    def hold(self, request_id: str | int, line: int) -> None:
        """A request answered at once; its id stays in flight to the end of its chunk."""
        self._inflight[request_id] = line

    def answer(self, request_id: str | int, data: bytes) -> None:
        """The answer to a request whose id was not held."""
        self._inflight.pop(request_id, None)
        self.send(data)

    def send(self, data: bytes) -> None:
        """Queue one answer line; it is written with the rest of its batch."""
        if self.lost is not None:
            self.undelivered += 1
        else:
            self._out.append(data)

    # -- the transport's callbacks ---------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._stopped or self.lost is not None:
            return
        self._items.extend(self._splitter.feed(data))
        self._serve()

    def eof_received(self) -> bool:
        """The client is done sending: answer everything read (one chunk at most) and
        close once it is sent."""
        if not self._stopped and self.lost is None:
            self._items.extend(self._splitter.finish())
            self._serve(everything=True)
        return False

    def pause_writing(self) -> None:
        self._full = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._full = False
        if self._stopped or self.lost is not None:
            return
        self._serve()
        if not self._full and self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.lost is None and exc is not None:
            self.lost = f"connection lost ({type(exc).__name__}: {exc})"
        self._items.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    # -- serving ---------------------------------------------------------------------
    def _serve(self, everything: bool = False) -> None:
        """Answer the messages read, in order, until the transport's buffer is full;
        ``everything``: all of them, written at once (the end of input, shutdown)."""
        items, out = self._items, self._out
        try:
            while items and (everything or not self._full):
                self._take(self, items.popleft())
                if len(out) >= _BATCH:
                    self.flush()
        except Exception as exc:  # a bug, not the client's doing: say so, drop the client
            self.flush()
            self._failed(self, exc)
            self.abort("internal error")
            return
        if everything:
            self.flush()
        elif out and not self._due:
            self._due = True
            self._writes.add(self)
        if not items:                           # the chunk is done: its ids leave flight
            self._inflight.clear()

    def flush(self) -> None:
        """Write the answers waiting (at once, or at the end of the round)."""
        self._due = False
        if not self._out or self._transport is None:
            return
        if self._transport.is_closing():        # aborted meanwhile
            self.undelivered += len(self._out)
        else:
            self._transport.write(b"".join(self._out))
        self._out.clear()

    # -- shutdown --------------------------------------------------------------------
    def stop(self) -> None:
        """Shutdown: answer what was read (refused by ``take``), read no more, close
        once the answers are sent."""
        if self._stopped or self._transport is None:
            return
        self._stopped = True
        if self.lost is None:
            self._serve(everything=True)
        self._transport.pause_reading()
        self._transport.close()

    def abort(self, reason: str) -> None:
        """Close now; answers not yet sent are dropped (counted as undelivered)."""
        if self._transport is None or self.closed.done():
            return
        if self._transport.get_write_buffer_size():
            self.undelivered += 1               # the last answers, still in the buffer
        self.undelivered += len(self._items)
        self._items.clear()
        self.lost = self.lost or reason
        self._stopped = True
        self._transport.abort()
