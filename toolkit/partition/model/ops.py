"""The operations a partition plan computes, and how to run one.

An :class:`Op` is one computation of a chain model (a convolution, an affine
per-channel transform, a pooling...) with its weights as NumPy arrays and its
padding made explicit. Strategies derive per-device ops from the model's ops by
slicing weights (channel strategies) or by changing the explicit padding of a
stripe (spatial). Every op runs with ``tf.pad`` followed by a ``VALID`` kernel,
so a stripe with only part of the border padding computes exactly what the
whole-image op computes on those rows.

Shapes here exclude the batch dimension; tensors passed to :func:`apply_op`
carry it.

MACs are counted with the core's rule (:func:`toolkit.models.macs.conv_macs`):
convolutions (standard and depthwise) and dense layers count
multiply-accumulates; element-wise work (batch normalisation, activations,
pooling, padding) counts 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from toolkit.models.macs import conv_macs

__all__ = [
    "BYTES_PER_ELEMENT",
    "CHANNEL_GLOBAL_ACTIVATIONS",
    "ELEMENTWISE_ACTIVATIONS",
    "LINEAR",
    "OP_KINDS",
    "Activation",
    "Op",
    "apply_op",
    "op_macs",
    "op_output_shape",
    "op_weight_bytes",
]

#: activations and weights travel and are stored as float32
BYTES_PER_ELEMENT = 4

#: activations applied element by element (safe on any slice of a tensor)
ELEMENTWISE_ACTIVATIONS: frozenset[str] = frozenset({
    "linear", "relu", "relu6", "elu", "selu", "celu", "softplus", "softsign",
    "silu", "swish", "gelu", "tanh", "sigmoid", "exponential", "hard_sigmoid",
    "hard_silu", "hard_swish", "mish", "leaky_relu",
})
#: activations that need every channel of a position (the last axis)
CHANNEL_GLOBAL_ACTIVATIONS: frozenset[str] = frozenset({"softmax", "log_softmax"})

#: kinds of :class:`Op`
OP_KINDS: tuple[str, ...] = (
    "conv2d", "depthwise", "dense", "affine", "maxpool", "avgpool", "zeropad",
    "global_avgpool", "global_maxpool", "flatten",
)


@dataclass(frozen=True)
class Activation:
    """A Keras activation by name, with keyword parameters (e.g. ``max_value``)."""

    name: str = "linear"
    params: tuple[tuple[str, float], ...] = ()

    @property
    def channel_global(self) -> bool:
        """Whether the activation needs every channel (softmax)."""
        return self.name in CHANNEL_GLOBAL_ACTIVATIONS

    @property
    def is_linear(self) -> bool:
        """Whether the activation is the identity."""
        return self.name == "linear"

    def __call__(self, x):
        """Apply the activation to a tensor."""
        if self.is_linear:
            return x
        return keras.activations.get(self.name)(x, **dict(self.params))


#: the identity activation
LINEAR = Activation()


@dataclass(frozen=True, eq=False)
class Op:
    """One computation of a chain model, with explicit padding.

    Attributes:
        kind: one of :data:`OP_KINDS`.
        name: the Keras layer it comes from.
        layer_type: that layer's class name.
        kernel: ``conv2d`` (kh, kw, cin, cout); ``depthwise`` (kh, kw, c, mult);
            ``dense`` (in, out).
        bias: per output channel, or None.
        scale: ``affine`` per-channel multiplier, or None (``affine`` computes
            ``activation(x * scale + bias)``).
        window: kernel or pool size (rows, columns).
        strides: (rows, columns).
        dilation: (rows, columns), convolutions only.
        pads: explicit zero (or, for max pooling, -inf) padding (top, bottom,
            left, right).
        activation: applied after the bias.
        keepdims: global pools keep a 1x1 spatial shape.
    """

    kind: str
    name: str
    layer_type: str
    kernel: np.ndarray | None = None
    bias: np.ndarray | None = None
    scale: np.ndarray | None = None
    window: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: Activation = field(default=LINEAR)
    keepdims: bool = False

    @property
    def effective_window(self) -> tuple[int, int]:
        """The window with dilation: ``(k - 1) * d + 1`` per axis."""
        (kh, kw), (dh, dw) = self.window, self.dilation
        return ((kh - 1) * dh + 1, (kw - 1) * dw + 1)

    @property
    def mixes_channels(self) -> bool:
        """Whether each output channel depends on every input channel."""
        return self.kind in ("conv2d", "dense")

    @property
    def windowed(self) -> bool:
        """Whether an output row depends on other input rows (or is padding)."""
        if self.kind not in ("conv2d", "depthwise", "maxpool", "avgpool", "zeropad"):
            return False
        return self.effective_window[0] > 1 or self.strides[0] > 1 or any(self.pads[:2])

    def rows_needed(self, start: int, stop: int, in_rows: int) -> tuple[int, int, int, int]:
        """Input rows an output stripe needs, and the stripe's own vertical padding.

        Args:
            start: first output row of the stripe.
            stop: one past its last output row.
            in_rows: height of the whole input.

        Returns:
            ``(first, stop, pad_top, pad_bottom)``: input rows ``[first, stop)``
            padded with ``pad_top`` rows above and ``pad_bottom`` below give
            exactly the stripe's output rows with a ``VALID`` kernel.
        """
        if not self.windowed:
            return start, stop, 0, 0
        k, s, top = self.effective_window[0], self.strides[0], self.pads[0]
        lo = start * s - top
        hi = (stop - 1) * s + k - top
        return max(lo, 0), min(hi, in_rows), max(0, -lo), max(0, hi - in_rows)


def _window_out(size: int, window: int, stride: int, pad: int) -> int:
    return (size + pad - window) // stride + 1


def op_output_shape(op: Op, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape (no batch dimension) of ``op`` on an input of ``in_shape``."""
    if op.kind in ("conv2d", "depthwise", "maxpool", "avgpool", "zeropad"):
        h, w, c = in_shape
        if op.kind == "zeropad":
            kh, kw, sh, sw = 1, 1, 1, 1
        else:
            (kh, kw), (sh, sw) = op.effective_window, op.strides
        oh = _window_out(h, kh, sh, op.pads[0] + op.pads[1])
        ow = _window_out(w, kw, sw, op.pads[2] + op.pads[3])
        if op.kind == "conv2d":
            c = op.kernel.shape[3]
        elif op.kind == "depthwise":
            c = op.kernel.shape[2] * op.kernel.shape[3]
        return (oh, ow, c)
    if op.kind == "dense":
        return (*in_shape[:-1], int(op.kernel.shape[1]))
    if op.kind in ("global_avgpool", "global_maxpool"):
        return (1, 1, in_shape[-1]) if op.keepdims else (in_shape[-1],)
    if op.kind == "flatten":
        return (math.prod(int(d) for d in in_shape),)
    return tuple(in_shape)


def op_macs(op: Op, in_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of ``op`` on one sample of ``in_shape``."""
    out = op_output_shape(op, in_shape)
    if op.kind in ("conv2d", "depthwise"):
        kh, kw, cin, _ = op.kernel.shape
        return conv_macs(out, (kh, kw), 1 if op.kind == "depthwise" else cin)
    if op.kind == "dense":
        return conv_macs(out, (), op.kernel.shape[0])
    return 0


def op_weight_bytes(op: Op) -> int:
    """Bytes of the weights ``op`` holds (float32)."""
    arrays = (op.kernel, op.bias, op.scale)
    return BYTES_PER_ELEMENT * sum(int(a.size) for a in arrays if a is not None)


def _pad(x, pads: tuple[int, int, int, int], value: float = 0.0):
    if not any(pads):
        return x
    t, b, left, r = pads
    return tf.pad(x, [[0, 0], [t, b], [left, r], [0, 0]], constant_values=value)


def _finish(op: Op, y):
    if op.bias is not None:
        y = y + op.bias
    return op.activation(y)


def apply_op(op: Op, x):
    """Run ``op`` on a batched float32 tensor; returns a ``tf.Tensor``."""
    kind = op.kind
    strides = (1, *op.strides, 1)
    if kind == "conv2d":
        return _finish(op, tf.nn.conv2d(_pad(x, op.pads), op.kernel, strides, "VALID",
                                        dilations=(1, *op.dilation, 1)))
    if kind == "depthwise":
        return _finish(op, tf.nn.depthwise_conv2d(_pad(x, op.pads), op.kernel, strides, "VALID",
                                                  dilations=op.dilation))
    if kind == "dense":
        return _finish(op, tf.matmul(x, op.kernel) if len(x.shape) == 2 else tf.tensordot(
            x, op.kernel, [[len(x.shape) - 1], [0]]))
    if kind == "affine":
        return _finish(op, x * op.scale if op.scale is not None else x)
    if kind == "maxpool":
        return tf.nn.max_pool2d(_pad(x, op.pads, -np.inf), op.window, strides, "VALID")
    if kind == "avgpool":
        if not any(op.pads):
            return tf.nn.avg_pool2d(x, op.window, strides, "VALID")
        # like Keras' "same": padded positions do not count in the average
        ones = tf.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
        total = tf.nn.avg_pool2d(_pad(x, op.pads), op.window, strides, "VALID")
        count = tf.nn.avg_pool2d(_pad(ones, op.pads), op.window, strides, "VALID")
        return total / count
    if kind == "zeropad":
        return _pad(x, op.pads)
    if kind == "global_avgpool":
        return tf.reduce_mean(x, axis=(1, 2), keepdims=op.keepdims)
    if kind == "global_maxpool":
        return tf.reduce_max(x, axis=(1, 2), keepdims=op.keepdims)
    if kind == "flatten":
        return tf.reshape(x, (tf.shape(x)[0], -1))
    raise ValueError(f"unknown op kind {kind!r}; valid: {', '.join(OP_KINDS)}")
