"""Runners for the two halves of a split model inside a worker process.

A runner maps one sample (batch of 1, float32) to a float32 array. Keras parts
run inside ``tf.function`` (eager calls of tiny batches are several times
slower); int8 heads run on the ``ai-edge-litert`` interpreter.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from toolkit.config import ACCELERATORS, Accelerator
from toolkit.errors import ToolkitError, choices
from toolkit.models.split import SplitModel

__all__ = ["Runner", "StageCache", "configure_threads"]

Runner = Callable[[np.ndarray], np.ndarray]

CACHE_DIR = Path(os.environ.get("DYNASPLIT_CACHE", Path.home() / ".cache" / "dynasplit"))


def configure_threads(threads: int) -> None:
    """Limit TensorFlow's thread pools; call before the first TensorFlow op."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already initialised; keep what is there
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))


def keras_runner(model, device: str | None = None) -> Runner:
    """Wrap a Keras model in a traced ``tf.function`` for batch-1 calls."""
    import tensorflow as tf

    spec = tf.TensorSpec([1, *model.inputs[0].shape[1:]], tf.float32)

    @tf.function(input_signature=[spec])
    def call(x):
        return model(x, training=False)

    def run(x: np.ndarray) -> np.ndarray:
        if device is None:
            return call(x).numpy()
        with tf.device(device):
            return call(x).numpy()

    return run


class StageCache:
    """Builds and caches the head (edge) or tail (cloud) runner of each split.

    Args:
        split_model: the model with its cut points.
        x_calib: representative inputs for int8 heads.
        threads: threads for the int8 interpreter.
        edgetpu_dir: folder of the deployed Edge-TPU-compiled heads
            (``tpu-std``/``tpu-max``; see :mod:`toolkit.models.edgetpu`).
        emulate_tpu: run ``tpu-std``/``tpu-max`` heads as the int8 flatbuffer on
            the CPU (the local emulated testbed, whose TPU timing is modelled).
    """

    def __init__(self, split_model: SplitModel, x_calib: np.ndarray | None = None,
                 threads: int = 1, edgetpu_dir: str | os.PathLike | None = None,
                 emulate_tpu: bool = False) -> None:
        self.split_model = split_model
        self.x_calib = x_calib
        self.threads = threads
        self.edgetpu_dir = edgetpu_dir
        self.emulate_tpu = emulate_tpu
        self._runners: dict[tuple[str, int, str], Runner | None] = {}

    def head(self, split: int, edge_accel: str) -> Runner | None:
        """Runner of the head for ``split`` (None at split 0)."""
        return self._runner("edge", split, edge_accel)

    def tail(self, split: int, cloud_accel: str) -> Runner | None:
        """Runner of the tail for ``split`` (None at the last split)."""
        return self._runner("cloud", split, cloud_accel)

    def _runner(self, side: str, split: int, accel_name: str) -> Runner | None:
        """The cached runner of ``split``'s part on ``side`` (``edge``: the head,
        ``cloud``: the tail) with accelerator ``accel_name``; None where that part is empty."""
        key = (side, split, accel_name)
        if key not in self._runners:
            part = self.split_model.head if side == "edge" else self.split_model.tail
            model, accel = part(split), ACCELERATORS[side].get(accel_name)
            if model is None:
                runner = None
            elif accel is None:
                raise ToolkitError(f"unknown {side} accelerator {accel_name!r}; valid: "
                                   f"{choices(ACCELERATORS[side])}")
            elif side == "edge":
                runner = self._head_runner(model, accel, split)
            else:
                runner = self._tail_runner(model, accel)
            self._runners[key] = runner
        return self._runners[key]

    def _head_runner(self, model, accel: Accelerator, split: int) -> Runner:
        if not accel.int8:
            return keras_runner(model)
        if accel.device == "tpu" and not self.emulate_tpu:
            return self._edgetpu_head(split)
        from toolkit.models.quantize import Int8Runner, quantize_int8_cached

        if self.x_calib is None:
            raise ToolkitError("int8 heads need representative inputs")
        flat = quantize_int8_cached(
            model, self.x_calib, CACHE_DIR / "int8", f"{self.split_model.name}-split{split}",
        )
        return Int8Runner(flat, num_threads=self.threads)

    @staticmethod
    def _tail_runner(model, accel: Accelerator) -> Runner:
        if accel.device == "cpu":
            return keras_runner(model, device="/CPU:0")
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            raise ToolkitError(
                "cloud_accel 'gpu' requested but this cloud worker sees no GPU "
                "(check CUDA_VISIBLE_DEVICES and the TensorFlow build)"
            )
        return keras_runner(model, device="/GPU:0")

    def _edgetpu_head(self, split: int) -> Runner:
        """The deployed compiled head of ``split`` on the Edge TPU (the TPU's
        runtime mode is the installed ``libedgetpu1-*`` package, set by the device)."""
        from toolkit.models.edgetpu import EdgeTpuRunner, compiled_name, find_compiled, head_stem

        size = self.split_model.model.inputs[0].shape[1]
        stem = head_stem(self.split_model.name, split, size)
        path = find_compiled(self.edgetpu_dir, stem)
        if path is None:
            where = self.edgetpu_dir or "the worker (no --edgetpu-dir)"
            raise ToolkitError(f"no Edge TPU head {compiled_name(stem)} in {where}; deploy the "
                               "compiled heads (toolkit.models.edgetpu.compile_head) with the "
                               "other artifacts")
        return EdgeTpuRunner(path)
