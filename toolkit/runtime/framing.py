"""The wire format between edge, cloud and controller: small binary frames.

Every frame is a fixed 16-byte prefix, a header, then a payload::

    prefix  = magic b"DS" | version u8 | kind u8 | header_len u32 | payload_len u64
    JSON    : header = empty,                            payload = UTF-8 JSON object
    TENSOR  : header = id u64 | codec u8 | ndim u8 | 2 pad | scale f32 | zero_point i32
                       | ndim x u32 dims | UTF-8 JSON metadata (may be empty),
              payload = the raw tensor buffer (see :mod:`toolkit.models.codecs`)

All integers are big-endian. No pickle, no protobuf: a tensor is its header and
its raw buffer, handed to the transport without copying. A payload of 64 KiB or
more read from a :class:`~toolkit.runtime.streams.FrameReader` (what the workers
use) is received by the socket straight into its own buffer; from any other
StreamReader it is read with one ``readexactly``.
A frame with a wrong magic or version, an oversized header or payload, or a
stream that ends inside a frame raises :class:`~toolkit.errors.ProtocolError`
with the reason; servers log it and close only that connection.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import ProtocolError
from toolkit.models.codecs import CODECS, Encoded, payload_nbytes
from toolkit.runtime.streams import FrameReader

__all__ = [
    "FRAME_PREFIX",
    "KIND_JSON",
    "KIND_TENSOR",
    "MAGIC",
    "MAX_HEADER",
    "MAX_PAYLOAD",
    "TENSOR_HEADER",
    "VERSION",
    "Frame",
    "read_frame",
    "tensor_frame",
    "tensor_frame_size",
    "write_json",
    "write_tensor",
]

MAGIC = b"DS"
VERSION = 1
KIND_JSON = 1
KIND_TENSOR = 2
MAX_HEADER = 64 * 1024
MAX_PAYLOAD = 1 << 30

FRAME_PREFIX = struct.Struct("!2sBBIQ")
TENSOR_HEADER = struct.Struct("!QBBxxfi")
_CODEC_ID = {name: i for i, name in enumerate(CODECS)}
_INPLACE_MIN = 64 * 1024  # smaller payloads are read with readexactly
_JOIN_MAX = 16 * 1024  # smaller payloads are joined to their header and written at once


@dataclass
class Frame:
    """A decoded frame: a JSON message, or a tensor with its id and metadata."""

    kind: int
    message: dict[str, Any] = field(default_factory=dict)
    tensor: Encoded | None = None
    id: int = 0
    #: bytes this frame took on the wire (set by :func:`read_frame`)
    nbytes: int = field(default=0, compare=False, repr=False)


def _prefix(kind: int, header_len: int, payload_len: int) -> bytes:
    return FRAME_PREFIX.pack(MAGIC, VERSION, kind, header_len, payload_len)


def write_json(writer: asyncio.StreamWriter, message: dict[str, Any]) -> int:
    """Queue a JSON frame on ``writer``; returns the bytes queued (call ``drain``).

    The JSON travels as the payload, so messages as large as a run's per-sample
    results are bounded by the payload limit, not the small header limit.
    """
    body = json.dumps(message, separators=(",", ":")).encode()
    writer.write(_prefix(KIND_JSON, 0, len(body)) + body)
    return FRAME_PREFIX.size + len(body)


def tensor_frame_size(tensor: Encoded, meta: dict[str, Any] | None = None) -> int:
    """Bytes :func:`write_tensor` puts on the wire for ``tensor`` (and ``meta``)."""
    extra = len(json.dumps(meta, separators=(",", ":")).encode()) if meta else 0
    return FRAME_PREFIX.size + TENSOR_HEADER.size + 4 * len(tensor.shape) + extra + tensor.nbytes


def write_tensor(
    writer: asyncio.StreamWriter,
    tensor: Encoded,
    id: int = 0,
    meta: dict[str, Any] | None = None,
) -> int:
    """Queue a tensor frame (header, then the payload buffer without a copy)."""
    extra = json.dumps(meta, separators=(",", ":")).encode() if meta else b""
    header = (
        TENSOR_HEADER.pack(id, _CODEC_ID[tensor.codec], len(tensor.shape), tensor.scale,
                     tensor.zero_point)
        + struct.pack(f"!{len(tensor.shape)}I", *tensor.shape)
        + extra
    )
    payload = memoryview(tensor.payload).cast("B")
    head = _prefix(KIND_TENSOR, len(header), payload.nbytes) + header
    if payload.nbytes < _JOIN_MAX:  # one small write: the copy costs less than a syscall
        writer.write(head + payload)
    elif _gathers(writer):  # one gathering write (writev), no copy
        writer.writelines((head, payload))
    else:
        writer.write(head)
        writer.write(payload)
    return FRAME_PREFIX.size + len(header) + payload.nbytes


def _gathers(writer: asyncio.StreamWriter) -> bool:
    """Whether ``writer.writelines`` sends its buffers without joining them.

    uvloop and Python 3.12+'s own transports do; Python 3.10/3.11's join them
    into one new bytes object (a copy of the payload).
    """
    return sys.version_info >= (3, 12) or type(writer.transport).__module__.startswith(
        "uvloop")


def _truncated(exc: asyncio.IncompleteReadError, n: int, what: str) -> ProtocolError:
    return ProtocolError(
        f"truncated frame: stream ended after {len(exc.partial)} of {n} bytes of the {what}"
    )


async def _exactly(reader: asyncio.StreamReader, n: int, what: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        raise _truncated(exc, n, what) from None


async def _payload(reader: asyncio.StreamReader, n: int) -> memoryview | bytes:
    """The payload: received in place by a FrameReader, else by ``readexactly``."""
    if not isinstance(reader, FrameReader) or n < _INPLACE_MIN:
        return await _exactly(reader, n, "payload")
    buffer = memoryview(np.empty(n, dtype=np.uint8))  # uninitialised: no zero-fill pass
    try:
        await reader.readinto_exactly(buffer)
    except asyncio.IncompleteReadError as exc:
        raise _truncated(exc, n, "payload") from None
    return buffer


async def read_frame(
    reader: asyncio.StreamReader, max_payload: int = MAX_PAYLOAD
) -> Frame | None:
    """Read one frame; None at a clean end of stream (between frames).

    Raises:
        ProtocolError: bad magic or version, oversized header or payload, a
            stream ending inside a frame, or a malformed header.
    """
    try:
        raw = await reader.readexactly(FRAME_PREFIX.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError(
            f"truncated frame: stream ended after {len(exc.partial)} of {FRAME_PREFIX.size} "
            "prefix bytes"
        ) from None
    magic, version, kind, header_len, payload_len = FRAME_PREFIX.unpack(raw)
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {magic!r}: not a DynaSplit frame")
    if version != VERSION:
        raise ProtocolError(f"unsupported protocol version {version} (this peer speaks {VERSION})")
    if header_len > MAX_HEADER:
        raise ProtocolError(f"oversized header: {header_len} bytes > {MAX_HEADER}")
    if payload_len > max_payload:
        raise ProtocolError(f"oversized payload: {payload_len} bytes > {max_payload}")
    header = await _exactly(reader, header_len, "header")
    if kind == KIND_JSON:
        if header_len:
            raise ProtocolError("JSON frame with a header")
        body = await _exactly(reader, payload_len, "JSON body")
        try:
            message = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtocolError(f"malformed JSON body: {exc}") from None
        if not isinstance(message, dict):
            raise ProtocolError("JSON frame is not an object")
        frame = Frame(KIND_JSON, message=message)
    elif kind == KIND_TENSOR:
        frame = tensor_frame(header, await _payload(reader, payload_len))
    else:
        raise ProtocolError(f"unknown frame kind {kind}")
    frame.nbytes = FRAME_PREFIX.size + header_len + payload_len
    return frame


def tensor_frame(header: bytes, payload: memoryview | bytes) -> Frame:
    if len(header) < TENSOR_HEADER.size:
        raise ProtocolError("tensor header too short")
    id_, codec_id, ndim, scale, zero_point = TENSOR_HEADER.unpack_from(header)
    if codec_id >= len(CODECS):
        raise ProtocolError(f"unknown codec id {codec_id}")
    end = TENSOR_HEADER.size + 4 * ndim
    if len(header) < end:
        raise ProtocolError("tensor header shorter than its dimensions")
    shape = struct.unpack_from(f"!{ndim}I", header, TENSOR_HEADER.size)
    codec = CODECS[codec_id]
    if payload_nbytes(codec, math.prod(shape)) != len(payload):
        raise ProtocolError(
            f"payload of {len(payload)} bytes does not match shape {shape} in {codec}"
        )
    meta: dict[str, Any] = {}
    if len(header) > end:
        try:
            meta = json.loads(header[end:])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtocolError(f"malformed tensor metadata: {exc}") from None
    return Frame(
        KIND_TENSOR,
        message=meta,
        tensor=Encoded(codec, tuple(shape), payload, scale, zero_point),
        id=id_,
    )
