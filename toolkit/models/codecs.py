"""Codecs for the tensor the edge sends to the cloud.

* ``fp32``: the raw float32 buffer (lossless, no copy for contiguous arrays);
* ``fp16``: half precision (2x smaller);
* ``int8``: affine quantisation ``q = round(x / scale) + zero_point`` over the
  tensor's own range, scale and zero point travel in the frame header (4x
  smaller).

An :class:`Encoded` tensor is what the wire framing carries: the codec, the
shape, the quantisation parameters and the raw payload buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.config import CODECS
from toolkit.errors import ConfigError, choices

__all__ = ["CODECS", "Encoded", "check_codec", "decode", "encode"]

_WIRE_DTYPE = {"fp32": np.float32, "fp16": np.float16, "int8": np.int8}


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
    if codec not in _WIRE_DTYPE:
        raise ConfigError(f"unknown codec {codec!r}; valid: {choices(CODECS)}")
    return codec


def encode(x: np.ndarray, codec: str = "fp32") -> Encoded:
    """Encode a float tensor for the wire."""
    check_codec(codec)
    x = np.asarray(x)
    if codec in ("fp32", "fp16"):
        arr = np.require(x, dtype=_WIRE_DTYPE[codec], requirements="C")
        return Encoded(codec, arr.shape, _bytes_view(arr))
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


def decode(e: Encoded) -> np.ndarray:
    """Decode to a float32 array (no copy for fp32)."""
    check_codec(e.codec)
    arr = np.frombuffer(e.payload, dtype=_WIRE_DTYPE[e.codec]).reshape(e.shape)
    if e.codec == "fp32":
        return arr
    if e.codec == "fp16":
        return arr.astype(np.float32)
    return (arr.astype(np.float32) - e.zero_point) * np.float32(e.scale)
