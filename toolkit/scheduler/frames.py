"""Requests that carry a raw tensor, in the runtime's binary framing, beside JSON lines.

A client may send, between two lines, one tensor frame of
:mod:`toolkit.runtime.framing` (prefix ``b"DS"``, version, kind 2, header with
the tensor's codec and shape, raw payload) whose JSON metadata is the request
without ``input``::

    DS|1|2|header_len|payload_len  id|codec|ndim|scale|zero_point|dims  {"id": "cam-7",
    "deadline_ms": 80}  <payload: the model-ready tensor>

It is answered with an ordinary JSON outcome line. A JSON line never starts
with ``D``, so the two kinds of message are told apart by their first byte.

:class:`RequestSplitter` wraps the bounded :class:`~toolkit.scheduler.lines.LineSplitter`:
it hands back lines as before, and a :class:`TensorRequest` or a
:class:`BadFrame` per frame. A frame is bounded by
:data:`~toolkit.scheduler.inputs.MAX_TENSOR_BYTES`; a larger or malformed one is
skipped to its end and answered with one error line, like an overlong line.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.errors import ProtocolError
from toolkit.models.codecs import Encoded, decode
from toolkit.runtime.framing import (
    FRAME_PREFIX,
    KIND_TENSOR,
    MAGIC,
    MAX_HEADER,
    TENSOR_HEADER,
    VERSION,
    tensor_frame,
)
from toolkit.scheduler.inputs import MAX_TENSOR_BYTES, InlineInput
from toolkit.scheduler.lines import LineSplitter, LineTooLong
from toolkit.scheduler.protocol import Request, RequestError, load_document, request_from_doc

__all__ = ["BadFrame", "RequestSplitter", "TensorRequest", "request_from_frame"]

_D = MAGIC[:1]


@dataclass(frozen=True)
class TensorRequest:
    """A request that came as a tensor frame: its JSON metadata and the tensor."""

    meta: bytes
    tensor: Encoded


@dataclass(frozen=True)
class BadFrame:
    """A frame that was skipped; ``reason`` says why."""

    reason: str


#: one message of a client: a line, an overlong line, or a tensor frame
Item = bytes | LineTooLong | TensorRequest | BadFrame


class RequestSplitter:
    """Lines and tensor frames from one client's byte stream, each bounded.

    Args:
        max_line: longest line kept, in bytes.
        max_tensor: largest tensor payload kept, in bytes.
    """

    def __init__(self, max_line: int, max_tensor: int = MAX_TENSOR_BYTES) -> None:
        self.lines = LineSplitter(max_line)
        self.max_tensor = max_tensor
        self._frame: bytearray | None = None   # collecting a frame
        self._need = 0                         # bytes the frame needs in all
        self._header_len = 0
        self._skip = 0                         # bytes left of a refused frame

    def feed(self, data: bytes) -> list[Item]:
        """The messages completed by ``data``, in order."""
        if (self._frame is None and not self._skip and b"\n" + _D not in data
                and not (data[:1] == _D and self.lines.idle)):
            return self.lines.feed(data)  # type: ignore[return-value]  # lines only
        out: list[Item] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                n = min(self._skip, end - pos)
                self._skip -= n
                pos += n
            elif self._frame is not None:
                n = min(self._need - len(self._frame), end - pos)
                self._frame += data[pos:pos + n]
                pos += n
                if len(self._frame) == self._need:
                    out.extend(self._advance())
            elif self.lines.idle and data[pos:pos + 1] == _D:
                self._frame, self._need = bytearray(), FRAME_PREFIX.size
            else:  # lines, up to the next one that starts a frame
                cut = data.find(b"\n" + _D, pos)
                stop = end if cut < 0 else cut + 1
                out.extend(self.lines.feed(data[pos:stop]))
                pos = stop
        return out

    def finish(self) -> list[Item]:
        """At end of input: an unterminated line, or a frame cut short."""
        out: list[Item] = []
        if self._frame is not None or self._skip:
            out.append(BadFrame("the input ended inside a tensor frame"))
            self._frame, self._skip = None, 0
        return out + self.lines.finish()

    def _advance(self) -> list[Item]:
        """A frame's prefix or whole body is in: check it, or emit the request."""
        frame = self._frame
        assert frame is not None
        if self._need == FRAME_PREFIX.size:
            magic, version, kind, header_len, payload_len = FRAME_PREFIX.unpack(bytes(frame))
            if magic != MAGIC:          # a line that happens to start with "D"
                self._frame = None
                cut = frame.find(b"\n") + 1 or len(frame)
                return self.lines.feed(bytes(frame[:cut])) + self.feed(bytes(frame[cut:]))
            problem = None
            if version != VERSION:
                problem = f"frame version {version}; this scheduler speaks {VERSION}"
            elif kind != KIND_TENSOR:
                problem = f"frame kind {kind}; requests come as tensor frames (kind 2)"
            elif header_len > MAX_HEADER:
                problem = f"frame header of {header_len} bytes; at most {MAX_HEADER}"
            elif payload_len > self.max_tensor:
                problem = f"tensor of {payload_len} bytes; at most {self.max_tensor}"
            if problem:
                self._frame, self._skip = None, header_len + payload_len
                return [BadFrame(problem + "; frame skipped")]
            self._header_len = header_len
            self._need = FRAME_PREFIX.size + header_len + payload_len
            if len(frame) < self._need:
                return []
        self._frame = None
        header = bytes(frame[FRAME_PREFIX.size:FRAME_PREFIX.size + self._header_len])
        payload = bytes(frame[FRAME_PREFIX.size + self._header_len:])
        if len(header) < TENSOR_HEADER.size:
            return [BadFrame("tensor header too short")]
        ndim = TENSOR_HEADER.unpack_from(header)[2]
        dims_end = TENSOR_HEADER.size + 4 * ndim
        try:
            parsed = tensor_frame(header[:dims_end], payload)
        except ProtocolError as exc:
            return [BadFrame(f"bad tensor frame: {exc}")]
        assert parsed.tensor is not None
        return [TensorRequest(header[dims_end:], parsed.tensor)]


def request_from_frame(item: TensorRequest, line: int) -> Request:
    """The request of a tensor frame (its metadata checked like a request line).

    Raises:
        RequestError: bad metadata, or a tensor that cannot be decoded.
    """
    if not item.meta:
        raise RequestError("a tensor frame's metadata must be the request "
                           '{"id", "deadline_ms"}; it is empty')
    doc = load_document(item.meta)
    try:
        array = decode(item.tensor)
    except Exception as exc:
        raise RequestError(f"cannot decode the tensor ({type(exc).__name__})") from None
    return request_from_doc(doc, line, InlineInput("tensor", array))
