"""Multiply-accumulate counts: the one counting rule, per layer call and per op.

Counted: convolutions (``Conv1D/2D/3D`` and transposed, depthwise, separable),
``Dense`` and ``MultiHeadAttention`` (projections and both attention products,
with keys as long as the queries: self-attention); a nested model counts as the
sum of its layers. Convolutions and dense layers share one formula,
:func:`conv_macs`, which partitioning's ops (:func:`toolkit.partition.model.ops.op_macs`)
use too. Element-wise layers (activations, batch normalisation, pooling,
additions) count 0: they are memory-bound and small next to the convolutions,
and excluding them keeps the figure comparable with the literature's MAC counts.
"""

from __future__ import annotations

import math
from typing import Any

import keras

__all__ = ["conv_macs", "graph_macs", "model_macs", "node_macs"]


def _prod(shape) -> int:
    return math.prod(int(d) for d in shape if d is not None)


def conv_macs(out_shape: tuple, window: tuple, in_channels: int, groups: int = 1) -> int:
    """MACs of a convolution: each output element is a dot product over the window
    and ``in_channels / groups`` input channels.

    A dense layer is a convolution with an empty window; a depthwise one has
    one input channel per output channel; a transposed one scatters each *input* element
    (pass the input's shape and the output channels).
    """
    return _prod(out_shape) * _prod(window) * int(in_channels) // groups


def node_macs(layer: Any, in_shape: tuple, out_shape: tuple) -> int:
    """MACs of one call of ``layer`` for one sample (batch dimension excluded)."""
    layers = keras.layers
    if isinstance(layer, keras.Model):
        return model_macs(layer)
    if isinstance(layer, layers.SeparableConv2D | layers.SeparableConv1D):
        c_in = int(in_shape[-1])
        middle = (*out_shape[1:-1], c_in * layer.depth_multiplier)
        return (conv_macs(middle, layer.kernel_size, 1)
                + conv_macs(out_shape[1:], (), middle[-1]))
    if isinstance(layer, layers.DepthwiseConv2D | layers.DepthwiseConv1D):
        return conv_macs(out_shape[1:], layer.kernel_size, 1)
    if isinstance(layer, layers.Conv2DTranspose | layers.Conv1DTranspose | layers.Conv3DTranspose):
        return conv_macs(in_shape[1:], layer.kernel_size, int(out_shape[-1]))
    if isinstance(layer, layers.Conv1D | layers.Conv2D | layers.Conv3D):
        groups = getattr(layer, "groups", 1) or 1
        return conv_macs(out_shape[1:], layer.kernel_size, int(in_shape[-1]), groups)
    if isinstance(layer, layers.Dense):
        return conv_macs(out_shape[1:], (), int(in_shape[-1]))
    if isinstance(layer, layers.MultiHeadAttention):
        tokens, dim = _prod(in_shape[1:-1]), int(in_shape[-1])
        inner = layer.num_heads * layer.key_dim
        projections = 3 * tokens * dim * inner + tokens * inner * int(out_shape[-1])
        return projections + 2 * tokens * tokens * inner
    return 0


def graph_macs(graph: Any) -> list[int]:
    """MACs of each node of a :class:`~toolkit.models.graph.Graph`, in its order."""
    return [
        node_macs(
            n.operation,
            tuple(n.node.input_tensors[0].shape) if n.node.input_tensors else (),
            tuple(n.node.outputs[0].shape),
        )
        for n in graph.nodes
    ]


def model_macs(model: keras.Model) -> int:
    """Total MACs of one forward pass of a functional or Sequential model."""
    from toolkit.models.graph import Graph, check_keras_model

    return sum(graph_macs(Graph(check_keras_model(model, "model_macs"))))
