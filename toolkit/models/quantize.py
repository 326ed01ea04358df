"""Full-integer int8 export of a head and its interpreter on the edge.

The head is converted with ``tf.lite.TFLiteConverter.from_keras_model``, int8
weights and activations, int8 input and output, calibrated on representative
inputs from the real dataset. The same flatbuffer is what an Edge TPU compiler
takes; on the local testbed it runs on the CPU with the ``ai-edge-litert``
interpreter (edge accelerator ``int8``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.quiet import quiet_tensorflow

__all__ = ["Int8Runner", "quantize_int8", "quantize_int8_cached", "weights_digest"]


def weights_digest(weights: Iterable[np.ndarray]) -> hashlib._Hash:
    """sha256 of weight arrays' bytes, in order (a Keras model's ``get_weights()``): the
    key of what they produce (an int8 head, an accuracy table, the fixed layers)."""
    digest = hashlib.sha256()
    for w in weights:
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest


def quantize_int8(head, representative: np.ndarray, n_calib: int = 100) -> bytes:
    """Convert a Keras head to a full-integer int8 TFLite flatbuffer.

    Args:
        head: the Keras head model (one input, one output).
        representative: real model inputs used to calibrate activation ranges.
        n_calib: how many of them to use.
    """
    import tensorflow as tf

    samples = np.asarray(representative[:n_calib], dtype=np.float32)

    def gen():
        for s in samples:
            yield [s[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(head)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        # The converter prints its SavedModel export to stdout, its C++ core
        # logs to file descriptor 2, and it warns about input statistics it does
        # not need; keep the user's terminal clean.
        with quiet_tensorflow(), contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    except Exception as exc:
        raise ToolkitError(f"int8 conversion of {head.name!r} failed: {exc}") from None


def _digest(model, representative: np.ndarray) -> str:
    """Digest of a head's weights and its calibration samples (both shape the int8 model)."""
    h = weights_digest(model.get_weights())
    h.update(repr(representative.shape).encode())
    h.update(np.ascontiguousarray(representative, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def quantize_int8_cached(
    head, representative: np.ndarray, cache_dir: str | os.PathLike, key: str
) -> bytes:
    """:func:`quantize_int8` with an on-disk cache keyed by ``key``, the weights and
    the calibration samples (a ``--data`` run never reuses a head calibrated on
    other data)."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{key}-{_digest(head, representative)}.tflite"
    if path.is_file():
        return path.read_bytes()
    data = quantize_int8(head, representative)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


class Int8Runner:
    """Runs an int8 flatbuffer: float input is quantised, int8 output dequantised.

    ``delegates`` (e.g. the Edge TPU's, :mod:`toolkit.models.edgetpu`) are
    passed to the LiteRT interpreter.
    """

    def __init__(self, flatbuffer: bytes, num_threads: int = 1,
                 delegates: list | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interp = Interpreter(model_content=flatbuffer, num_threads=num_threads,
                                   experimental_delegates=delegates)
        self._interp.allocate_tensors()
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_scale, self._in_zp = inp["quantization"]
        self._out_scale, self._out_zp = out["quantization"]
        self.input_shape = tuple(inp["shape"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run one sample (batch of 1) and return the float32 output."""
        q = np.clip(np.rint(x / self._in_scale) + self._in_zp, -128, 127).astype(np.int8)
        self._interp.set_tensor(self._in_index, q.reshape(self.input_shape))
        self._interp.invoke()
        y = self._interp.get_tensor(self._out_index)
        return (y.astype(np.float32) - self._out_zp) * np.float32(self._out_scale)
