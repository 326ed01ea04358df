"""Multiply-accumulate counts per layer call.

Counted: convolutions (``Conv1D/2D/3D`` and transposed, depthwise, separable),
``Dense`` and ``MultiHeadAttention`` (projections and both attention products,
with keys as long as the queries: self-attention); a nested model counts as the
sum of its layers. Element-wise
layers (activations, batch normalisation, pooling, additions) count 0: they are
memory-bound and small next to the convolutions, and excluding them keeps the
figure comparable with the literature's MAC counts.
"""

from __future__ import annotations

import math
from typing import Any

import keras

__all__ = ["model_macs", "node_macs"]


def _prod(shape) -> int:
    return math.prod(int(d) for d in shape if d is not None)


def node_macs(layer: Any, in_shape: tuple, out_shape: tuple) -> int:
    """MACs of one call of ``layer`` for one sample (batch dimension excluded)."""
    layers = keras.layers
    if isinstance(layer, keras.Model):
        return model_macs(layer)
    if isinstance(layer, layers.SeparableConv2D | layers.SeparableConv1D):
        c_in = int(in_shape[-1])
        k = _prod(layer.kernel_size)
        depthwise_out = _prod(out_shape[1:-1]) * c_in * layer.depth_multiplier
        return depthwise_out * k + _prod(out_shape[1:-1]) * c_in * layer.depth_multiplier * int(
            out_shape[-1]
        )
    if isinstance(layer, layers.DepthwiseConv2D | layers.DepthwiseConv1D):
        return _prod(out_shape[1:]) * _prod(layer.kernel_size)
    if isinstance(layer, layers.Conv2DTranspose | layers.Conv1DTranspose | layers.Conv3DTranspose):
        return _prod(in_shape[1:]) * _prod(layer.kernel_size) * int(out_shape[-1])
    if isinstance(layer, layers.Conv1D | layers.Conv2D | layers.Conv3D):
        groups = getattr(layer, "groups", 1) or 1
        return _prod(out_shape[1:]) * _prod(layer.kernel_size) * int(in_shape[-1]) // groups
    if isinstance(layer, layers.Dense):
        return _prod(out_shape[1:]) * int(in_shape[-1])
    if isinstance(layer, layers.MultiHeadAttention):
        tokens, dim = _prod(in_shape[1:-1]), int(in_shape[-1])
        inner = layer.num_heads * layer.key_dim
        projections = 3 * tokens * dim * inner + tokens * inner * int(out_shape[-1])
        return projections + 2 * tokens * tokens * inner
    return 0


def model_macs(model: keras.Model) -> int:
    """Total MACs of one forward pass of a functional or Sequential model."""
    from toolkit.models.graph import Graph

    graph = Graph(model)
    return sum(
        node_macs(
            n.operation,
            tuple(n.node.input_tensors[0].shape) if n.node.input_tensors else (),
            tuple(n.node.outputs[0].shape),
        )
        for n in graph.nodes
    )
