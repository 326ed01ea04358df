"""Split a byte stream into request lines, with a bound on a line's length.

:class:`LineSplitter` is fed chunks as they arrive and hands back complete
lines. A line longer than its bound is not kept: its bytes are counted and
dropped up to its newline, and it comes back as one :class:`LineTooLong`; the
bytes after that newline are the next line, so nothing that follows is lost.
At the end of the input an unterminated last line counts as a line (an overlong
one as one :class:`LineTooLong`). Memory is bounded by the line limit plus one
chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LineSplitter", "LineTooLong"]


@dataclass(frozen=True)
class LineTooLong:
    """A line that exceeded the limit and was skipped.

    Attributes:
        size: its length in bytes, without the newline.
    """

    size: int


class LineSplitter:
    """Incremental newline splitter with a per-line byte limit.

    Args:
        max_bytes: longest line kept, in bytes without its newline.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._partial = bytearray()
        self._skipped = 0          # > 0 while dropping an overlong line

    @property
    def idle(self) -> bool:
        """True between lines (no partial line kept or being skipped)."""
        return not self._partial and not self._skipped

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        """The lines completed by ``data`` (without their newlines), in order."""
        if self.idle and data[-1:] == b"\n" and len(data) <= self.max_bytes:
            # whole lines, none too long
            return data[:-1].split(b"\n")  # type: ignore[return-value]
        pieces = data.split(b"\n")
        rest = pieces.pop()
        out = [self._complete(piece) for piece in pieces]
        self._keep(rest)
        return out

    def finish(self) -> list[bytes | LineTooLong]:
        """At end of input: the unterminated last line, if any."""
        if self._skipped:
            out: list[bytes | LineTooLong] = [LineTooLong(self._skipped)]
        elif self._partial:
            out = [bytes(self._partial)]
        else:
            out = []
        self._partial.clear()
        self._skipped = 0
        return out

    def _complete(self, piece: bytes) -> bytes | LineTooLong:
        if self._skipped:
            size, self._skipped = self._skipped + len(piece), 0
            return LineTooLong(size)
        if not self._partial:
            return piece if len(piece) <= self.max_bytes else LineTooLong(len(piece))
        size = len(self._partial) + len(piece)
        if size > self.max_bytes:
            self._partial.clear()
            return LineTooLong(size)
        line = bytes(self._partial) + piece
        self._partial.clear()
        return line

    def _keep(self, rest: bytes) -> None:
        if self._skipped:
            self._skipped += len(rest)
        elif len(self._partial) + len(rest) > self.max_bytes:
            self._skipped = len(self._partial) + len(rest)
            self._partial.clear()
        else:
            self._partial += rest
