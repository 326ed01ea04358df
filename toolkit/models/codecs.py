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

The conversions are vectorised NumPy with as few passes and temporaries as
possible. NumPy converts float32 to and from float16 one element at a time on
CPUs without AVX-512, so fp16 is encoded with integer arithmetic on the float32
bits (:func:`_f32_to_f16`, round to nearest even, bit-identical to
``astype(np.float16)``) and decoded through a 65 536-entry table.
"""

from __future__ import annotations

import functools
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
    if codec == "fp16" and x.dtype == np.float32:
        arr = _f32_to_f16(np.require(x, requirements="C"))
        return Encoded(codec, arr.shape, _bytes_view(arr))
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
    # clip(rint(x / scale) + zero_point, -128, 127), in place in one temporary
    t = np.asarray(np.divide(x, scale))  # an array even for a 0-d x
    np.rint(t, out=t)
    np.add(t, zero_point, out=t)
    np.clip(t, -128, 127, out=t)
    q = t.astype(np.int8)
    return Encoded(codec, q.shape, _bytes_view(q), scale, zero_point)


_CHUNK = 1 << 16  # elements per pass: the two scratch buffers stay in the L2 cache


def _f32_to_f16(x: np.ndarray) -> np.ndarray:
    """``x.astype(np.float16)`` for a C-contiguous float32 array, bit for bit.

    Branch-free on the float32 bits (M. Maratyszcza's FP16 conversion): the
    float multiplications round the mantissa to nearest even and turn
    overflow into infinity; a NaN stays a quiet NaN of the same sign. Runs over
    chunks of 64 Ki elements so that its 16 passes stay in the cache.
    """
    w = x.reshape(-1).view(np.uint32)
    out = np.empty(w.size, np.uint16)
    a = np.empty(min(w.size, _CHUNK), np.uint32)
    b = np.empty_like(a)
    for start in range(0, w.size, _CHUNK):
        n = min(_CHUNK, w.size - start)
        _f16_bits(w[start:start + n], a[:n], b[:n], out[start:start + n])
    if x.size and np.isnan(np.max(x)):  # max propagates NaN: one pass, no mask
        out[np.isnan(x.reshape(-1))] |= 0x7E00
    return out.view(np.float16).reshape(x.shape)


def _f16_bits(w: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """float16 bits of the float32 bits ``w`` into ``out`` (``a``, ``b``: scratch)."""
    af, bf = a.view(np.float32), b.view(np.float32)
    with np.errstate(all="ignore"):
        np.bitwise_and(w, 0x7FFFFFFF, out=a)  # |x|
        np.multiply(af, np.float32(2.0**112), out=af)
        np.multiply(af, np.float32(2.0**-110), out=af)  # base, rounded at fp16's precision
        np.add(w, w, out=b)
        np.bitwise_and(b, 0xFF000000, out=b)
        np.maximum(b, np.uint32(0x71000000), out=b)
        np.right_shift(b, 1, out=b)
        np.add(b, np.uint32(0x07800000), out=b)  # bias: the exponent, at least fp16's least
        np.add(bf, af, out=af)
    np.right_shift(a, 13, out=b)
    np.bitwise_and(b, 0x7C00, out=b)  # exponent bits
    np.bitwise_and(a, 0x0FFF, out=a)  # mantissa bits
    np.add(a, b, out=a)
    np.right_shift(w, 16, out=b)
    np.bitwise_and(b, 0x8000, out=b)  # sign
    np.bitwise_or(a, b, out=a)
    np.copyto(out, a, casting="unsafe")


@functools.cache
def _f16_table() -> np.ndarray:
    """float32 value of each of the 65 536 float16 bit patterns (256 KiB)."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


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
        return _f16_table().take(arr.view(np.uint16))
    y = arr.astype(np.float32)
    np.subtract(y, e.zero_point, out=y)
    np.multiply(y, np.float32(e.scale), out=y)
    return y
