"""Codecs for the tensor the edge sends to the cloud.

* ``fp32``: the raw float32 buffer (lossless, no copy for contiguous arrays);
* ``fp16``: half precision (2x smaller);
* ``int8``: affine quantisation ``q = round(x / scale) + zero_point`` over the
  tensor's own range, scale and zero point travel in the frame header (4x
  smaller);
* ``q4``, ``q2`` and ``q1``: lossy low-bit quantisation in the spirit of
  split-computing compression studies: ``q = round((x - lo) / scale)`` with
  ``2^bits`` levels over the tensor's own range ``[lo, hi]``, packed two
  (``q4``, 8x smaller than fp32), four (``q2``, 16x) or eight (``q1``, a
  binarised tensor, 32x) to a byte; ``scale`` travels in the frame
  header and ``lo`` as ``zero_point = round(-lo / scale)`` levels (so that 0 is
  exactly representable; post-ReLU tensors have ``lo = 0``). These lose
  accuracy measurably: they trade transferred bytes for it.

An :class:`Encoded` tensor is what the wire framing carries: the codec, the
shape, the quantisation parameters and the raw payload buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.config import CODECS
from toolkit.errors import ConfigError, choices

__all__ = ["CODECS", "Encoded", "check_codec", "decode", "encode", "payload_nbytes"]

_WIRE_DTYPE = {"fp32": np.float32, "fp16": np.float16, "int8": np.int8}
#: bits per element of the packed low-bit codecs
_PACKED_BITS = {"q4": 4, "q2": 2, "q1": 1}


def payload_nbytes(codec: str, n_elements: int) -> int:
    """Payload bytes of ``n_elements`` encoded with ``codec``."""
    if codec in _PACKED_BITS:
        per_byte = 8 // _PACKED_BITS[codec]
        return -(-n_elements // per_byte)
    return n_elements * np.dtype(_WIRE_DTYPE[codec]).itemsize


@dataclass(frozen=True)
class Encoded:
    """An encoded tensor: codec, shape, affine parameters and the payload bytes."""

    codec: str
    shape: tuple[int, ...]
    payload: memoryview | bytes
    scale: float = 1.0
    zero_point: int = 0

    @property
    def nbytes(self) -> int:
        """Payload size in bytes."""
        return memoryview(self.payload).nbytes


def check_codec(codec: str) -> str:
    """Return ``codec`` if known, else raise a ConfigError naming the valid ones."""
    if codec not in _WIRE_DTYPE and codec not in _PACKED_BITS:
        raise ConfigError(f"unknown codec {codec!r}; valid: {choices(CODECS)}")
    return codec


def encode(x: np.ndarray, codec: str = "fp32") -> Encoded:
    """Encode a float tensor for the wire."""
    check_codec(codec)
    x = np.asarray(x)
    if codec in ("fp32", "fp16"):
        arr = np.require(x, dtype=_WIRE_DTYPE[codec], requirements="C")
        return Encoded(codec, arr.shape, _bytes_view(arr))
    if codec in _PACKED_BITS:
        return _encode_packed(x, codec)
    lo = float(np.min(x)) if x.size else 0.0
    hi = float(np.max(x)) if x.size else 0.0
    lo, hi = min(lo, 0.0), max(hi, 0.0)  # keep 0 exactly representable
    scale = (hi - lo) / 255.0 or 1.0
    zero_point = int(np.clip(round(-128 - lo / scale), -128, 127))
    q = np.clip(np.rint(x / scale) + zero_point, -128, 127).astype(np.int8)
    return Encoded(codec, q.shape, _bytes_view(q), scale, zero_point)


def _bytes_view(arr: np.ndarray) -> memoryview:
    """The array's buffer as bytes, without a copy (any shape, empty and 0-d included)."""
    return memoryview(arr.reshape(-1)).cast("B")


def _encode_packed(x: np.ndarray, codec: str) -> Encoded:
    bits = _PACKED_BITS[codec]
    levels = (1 << bits) - 1
    lo = min(float(np.min(x)), 0.0) if x.size else 0.0
    hi = max(float(np.max(x)), 0.0) if x.size else 0.0
    scale = (hi - lo) / levels or 1.0
    zero_point = round(-lo / scale)
    q = np.clip(np.rint(x.reshape(-1) / scale) + zero_point, 0, levels).astype(np.uint8)
    per_byte = 8 // bits
    q = np.concatenate([q, np.zeros(-len(q) % per_byte, np.uint8)]).reshape(-1, per_byte)
    packed = np.zeros(len(q), np.uint8)
    for i in range(per_byte):
        packed |= q[:, i] << (bits * i)
    return Encoded(codec, tuple(x.shape), memoryview(packed).cast("B"), scale, zero_point)


def _decode_packed(e: Encoded) -> np.ndarray:
    bits = _PACKED_BITS[e.codec]
    per_byte = 8 // bits
    packed = np.frombuffer(e.payload, dtype=np.uint8)
    mask = (1 << bits) - 1
    q = np.stack([(packed >> (bits * i)) & mask for i in range(per_byte)], axis=1).reshape(-1)
    n = int(np.prod(e.shape, dtype=np.int64))
    return ((q[:n].astype(np.float32) - e.zero_point) * np.float32(e.scale)).reshape(e.shape)


def decode(e: Encoded) -> np.ndarray:
    """Decode to a float32 array (no copy for fp32)."""
    check_codec(e.codec)
    if e.codec in _PACKED_BITS:
        return _decode_packed(e)
    arr = np.frombuffer(e.payload, dtype=_WIRE_DTYPE[e.codec]).reshape(e.shape)
    if e.codec == "fp32":
        return arr
    if e.codec == "fp16":
        return arr.astype(np.float32)
    return (arr.astype(np.float32) - e.zero_point) * np.float32(e.scale)
