"""Reading a Keras conv stack as a chain of :class:`~toolkit.partition.model.ops.Op`.

The partitioning strategies work on models whose layers form a chain: each
layer takes the previous layer's output and nothing else (Sequential models,
chain-shaped functional models, nested Sequential blocks). :func:`chain_from_model`
walks such a model once with the core's walker (:class:`toolkit.models.graph.Graph`),
reads its weights, makes every ``same`` padding explicit for the model's input
size and checks each layer's output shape against Keras' own. A layer the
toolkit cannot partition is refused with its name, its type, the strategy
asking and the supported types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import keras
import numpy as np

from toolkit.errors import ToolkitError, choices
from toolkit.models.graph import Graph
from toolkit.partition.model.ops import (
    CHANNEL_GLOBAL_ACTIVATIONS,
    ELEMENTWISE_ACTIVATIONS,
    Activation,
    Op,
    op_macs,
    op_output_shape,
)

__all__ = [
    "IDENTITY_LAYERS",
    "SUPPORTED_LAYERS",
    "Chain",
    "as_chain",
    "chain_from_model",
    "chain_head",
    "check_layer_shape",
    "layer_ops",
]

#: layers that are the identity at inference; the chain leaves them out
IDENTITY_LAYERS: tuple[str, ...] = (
    "InputLayer", "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise",
    "AlphaDropout", "ActivityRegularization",
)
#: Keras layer types every strategy accepts (see docs/partitioning.md for their roles)
SUPPORTED_LAYERS: tuple[str, ...] = (
    "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "BatchNormalization",
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Rescaling",
    "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "ZeroPadding2D", "Flatten", *IDENTITY_LAYERS,
)


@dataclass(frozen=True, eq=False)
class Chain:
    """A chain model as ops with static shapes.

    Attributes:
        name: the model's name.
        input_shape: one sample's input shape (no batch dimension).
        ops: the computations in order.
        shapes: ``shapes[i]`` is the input shape of ``ops[i]``; ``shapes[-1]``
            the model's output shape.
    """

    name: str
    input_shape: tuple[int, ...]
    ops: tuple[Op, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        """One sample's output shape."""
        return self.shapes[-1]

    def op_macs(self) -> list[int]:
        """MACs of each op on one sample."""
        return [op_macs(op, s) for op, s in zip(self.ops, self.shapes[:-1], strict=True)]

    def macs(self) -> int:
        """MACs of one forward pass on one sample."""
        return sum(self.op_macs())


class _Refuse:
    """Builds refusal messages that name the strategy asking."""

    def __init__(self, strategy: str | None) -> None:
        self.who = f"strategy {strategy!r}" if strategy else "partitioning"

    def layer(self, layer: Any, why: str = "") -> ToolkitError:
        kind = type(layer).__name__
        reason = f" ({why})" if why else ""
        supported = [t for t in SUPPORTED_LAYERS if t != "InputLayer"]
        return ToolkitError(
            f"{self.who} cannot partition layer {layer.name!r} of type {kind}{reason}; "
            f"supported layer types: {choices(supported)}"
        )


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _same_pads(size: int, window: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _pads(padding: str, in_shape, window, strides, dilation=(1, 1)) -> tuple[int, int, int, int]:
    if padding == "valid":
        return (0, 0, 0, 0)
    kh, kw = ((k - 1) * d + 1 for k, d in zip(window, dilation, strict=True))
    return (*_same_pads(in_shape[0], kh, strides[0]), *_same_pads(in_shape[1], kw, strides[1]))


def _np(var) -> np.ndarray:
    return np.array(var.numpy(), dtype=np.float32)


def _activation(fn, refuse: _Refuse, layer) -> Activation:
    try:
        name = keras.activations.serialize(fn)
    except Exception:
        name = None
    if name == "swish":
        name = "silu"
    known = ELEMENTWISE_ACTIVATIONS | CHANNEL_GLOBAL_ACTIVATIONS
    if not isinstance(name, str) or name not in known:
        raise refuse.layer(layer, f"activation {name or fn!r} is not one of "
                           f"{choices(sorted(known))}")
    return Activation(name)


def _with_activation(op: Op, act: Activation) -> list[Op]:
    """Attach an element-wise activation; a channel-global one becomes its own op."""
    if act.channel_global:
        return [op, Op("affine", op.name, op.layer_type, activation=act)]
    return [replace(op, activation=act)]


def _channels_last(layer, refuse: _Refuse) -> None:
    fmt = getattr(layer, "data_format", "channels_last")
    if fmt not in (None, "channels_last"):
        raise refuse.layer(layer, f"data_format {fmt!r}; only channels_last")


def _convert(layer, in_shape, refuse: _Refuse) -> list[Op]:
    L = keras.layers
    kind = type(layer)
    name, tname = layer.name, kind.__name__
    if kind.__name__ in IDENTITY_LAYERS and kind.__module__.startswith("keras"):
        return []
    if kind in (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D):
        _channels_last(layer, refuse)
        if len(in_shape) != 3:
            raise refuse.layer(layer, f"input shape {in_shape} is not (rows, columns, channels)")
        if getattr(layer, "groups", 1) != 1:
            raise refuse.layer(layer, f"groups={layer.groups}; only groups=1")
        window, strides = _pair(layer.kernel_size), _pair(layer.strides)
        dilation = _pair(layer.dilation_rate)
        pads = _pads(layer.padding, in_shape, window, strides, dilation)
        act = _activation(layer.activation, refuse, layer)
        bias = _np(layer.bias) if layer.use_bias else None
        geometry = dict(window=window, strides=strides, dilation=dilation, pads=pads)
        if kind is L.SeparableConv2D:
            depthwise = Op("depthwise", name, tname, kernel=_np(layer.depthwise_kernel), **geometry)
            pointwise = Op("conv2d", name, tname, kernel=_np(layer.pointwise_kernel), bias=bias)
            return [depthwise, *_with_activation(pointwise, act)]
        op_kind = "conv2d" if kind is L.Conv2D else "depthwise"
        return _with_activation(Op(op_kind, name, tname, kernel=_np(layer.kernel), bias=bias,
                                   **geometry), act)
    if kind is L.Dense:
        act = _activation(layer.activation, refuse, layer)
        bias = _np(layer.bias) if layer.use_bias else None
        return _with_activation(Op("dense", name, tname, kernel=_np(layer.kernel), bias=bias), act)
    if kind is L.BatchNormalization:
        axis = layer.axis if isinstance(layer.axis, int) else None
        if axis not in (-1, len(in_shape)):
            raise refuse.layer(layer, f"axis={layer.axis}; only the last (channel) axis")
        var = _np(layer.moving_variance).astype(np.float64)
        mean = _np(layer.moving_mean).astype(np.float64)
        gamma = _np(layer.gamma).astype(np.float64) if layer.scale else 1.0
        beta = _np(layer.beta).astype(np.float64) if layer.center else 0.0
        scale = gamma / np.sqrt(var + layer.epsilon)
        offset = beta - mean * scale
        return [Op("affine", name, tname, scale=scale.astype(np.float32),
                   bias=np.broadcast_to(offset, mean.shape).astype(np.float32))]
    if kind is L.Rescaling:
        c = in_shape[-1]
        scale = np.broadcast_to(np.asarray(layer.scale, np.float32), (c,)).copy()
        offset = np.broadcast_to(np.asarray(layer.offset, np.float32), (c,)).copy()
        return [Op("affine", name, tname, scale=scale, bias=offset)]
    if kind is L.Activation:
        return [Op("affine", name, tname, activation=_activation(layer.activation, refuse, layer))]
    if kind is L.ReLU:
        # a max_value of 0 is a bound; a slope or threshold of 0 is Keras' default
        params = tuple((key, float(value)) for key in ("max_value", "negative_slope", "threshold")
                       if (value := getattr(layer, key)) is not None
                       and (value or key == "max_value"))
        return [Op("affine", name, tname, activation=Activation("relu", params))]
    if kind is L.LeakyReLU:
        act = Activation("leaky_relu", (("negative_slope", float(layer.negative_slope)),))
        return [Op("affine", name, tname, activation=act)]
    if kind is L.ELU:
        return [Op("affine", name, tname, activation=Activation("elu", (("alpha", layer.alpha),)))]
    if kind is L.Softmax:
        if layer.axis not in (-1, len(in_shape)):
            raise refuse.layer(layer, f"axis={layer.axis}; only the last axis")
        return [Op("affine", name, tname, activation=Activation("softmax"))]
    if kind in (L.MaxPooling2D, L.AveragePooling2D):
        _channels_last(layer, refuse)
        window = _pair(layer.pool_size)
        strides = _pair(layer.strides if layer.strides is not None else layer.pool_size)
        pads = _pads(layer.padding, in_shape, window, strides)
        op_kind = "maxpool" if kind is L.MaxPooling2D else "avgpool"
        return [Op(op_kind, name, tname, window=window, strides=strides, pads=pads)]
    if kind in (L.GlobalAveragePooling2D, L.GlobalMaxPooling2D):
        _channels_last(layer, refuse)
        op_kind = "global_avgpool" if kind is L.GlobalAveragePooling2D else "global_maxpool"
        return [Op(op_kind, name, tname, keepdims=bool(layer.keepdims))]
    if kind is L.ZeroPadding2D:
        _channels_last(layer, refuse)
        (t, b), (left, r) = layer.padding
        return [Op("zeropad", name, tname, pads=(int(t), int(b), int(left), int(r)))]
    if kind is L.Flatten:
        _channels_last(layer, refuse)
        return [Op("flatten", name, tname)]
    raise refuse.layer(layer)


def layer_ops(layer: Any, in_shape: tuple[int, ...], strategy: str | None = None) -> list[Op]:
    """The ops of one single-input Keras layer on an input of ``in_shape`` (none for an
    identity layer); refusals name ``strategy``, the layer and the supported types."""
    return _convert(layer, in_shape, _Refuse(strategy))


def check_layer_shape(layer: Any, in_shape: tuple[int, ...], shape: tuple[int, ...]) -> None:
    """Refuse ``layer`` where its ops compute an output ``shape`` on ``in_shape`` that
    differs from Keras' own."""
    expected = tuple(int(d) for d in layer.compute_output_shape((1, *in_shape))[1:])
    if expected != shape:
        raise ToolkitError(f"layer {layer.name!r} ({type(layer).__name__}): computed output "
                           f"shape {shape} differs from Keras' {expected}")


def _layers(model, refuse: _Refuse) -> list:
    """The model's layers in chain order (the core's graph walk), nested models flattened."""
    try:
        graph = Graph(model)
    except ToolkitError as exc:
        raise ToolkitError(f"{refuse.who} cannot read {model.name!r} as a chain: {exc}") from None
    out = []
    current = (id(graph.input),)
    for node in graph.nodes:
        layer = node.operation
        if node.inputs != current:
            raise refuse.layer(layer, "not part of a chain: its input is not the previous "
                               "layer's output")
        current = node.outputs
        out.extend(_layers(layer, refuse) if isinstance(layer, keras.Model) else [layer])
    if current != (id(graph.output),):
        raise ToolkitError(f"{refuse.who}: the output of {model.name!r} is not its last layer's")
    return out


def _model_input_shape(model) -> tuple | None:
    try:
        shape = tuple(model.inputs[0].shape[1:])
    except Exception:
        return None
    return shape if all(d is not None for d in shape) else None


def chain_from_model(
    model: keras.Model,
    *,
    input_shape: tuple[int, ...] | None = None,
    strategy: str | None = None,
) -> Chain:
    """Read a chain-shaped Keras model as ops with explicit padding.

    Args:
        model: a built Sequential or functional Keras model whose layers form a chain.
        input_shape: one sample's input shape; needed where the model's input has
            unknown sizes (then the model is built for it), checked otherwise.
        strategy: the strategy asking, named in refusal messages.

    Raises:
        ToolkitError: the model is not a chain, a layer is not supported (the
            message names the layer, its type, the strategy and the supported
            types), or the input shape is unknown or does not match.
    """
    refuse = _Refuse(strategy)
    known = _model_input_shape(model)
    if input_shape is not None:
        input_shape = tuple(int(d) for d in input_shape)
        if known is not None and known != input_shape:
            raise ToolkitError(
                f"input shape {input_shape} does not match model {model.name!r}'s {known}"
            )
        if not model.built:
            model.build((None, *input_shape))
    elif known is None:
        raise ToolkitError(
            f"model {model.name!r} has no fixed input shape; give input_shape "
            "(rows, columns, channels)"
        )
    shape = input_shape or known
    ops: list[Op] = []
    shapes = [shape]
    for layer in _layers(model, refuse):
        new = _convert(layer, shape, refuse)
        for op in new:
            shape = op_output_shape(op, shape)
            ops.append(op)
            shapes.append(shape)
        if new:
            check_layer_shape(layer, shapes[-1 - len(new)], shape)
    if not ops:
        raise ToolkitError(f"model {model.name!r} has no layer to partition")
    if math.prod(shape) == 0:
        raise ToolkitError(f"model {model.name!r} produces an empty output {shape}")
    return Chain(model.name, tuple(shapes[0]), tuple(ops), tuple(shapes))


def as_chain(
    model: keras.Model | Chain, strategy: str, input_shape: tuple[int, ...] | None = None
) -> Chain:
    """``model`` as a :class:`Chain` (read with ``strategy`` named in refusals)."""
    if isinstance(model, Chain):
        if input_shape is not None and tuple(input_shape) != model.input_shape:
            raise ToolkitError(
                f"input shape {tuple(input_shape)} does not match the chain's {model.input_shape}"
            )
        return model
    return chain_from_model(model, input_shape=input_shape, strategy=strategy)


def chain_head(model: keras.Model, layer: str, chain: Chain | None = None) -> Chain:
    """The part of ``model``'s chain up to and including Keras layer ``layer``.

    The head's output is ``layer``'s output (after an identity layer such as
    ``Dropout``, the output of the layer before it). Used for the edge part of
    a vertical edge/cloud split.

    Args:
        model: the chain model.
        layer: the last layer of the head.
        chain: ``chain_from_model(model)`` where already at hand.

    Raises:
        ToolkitError: ``model`` has no such layer, or it is before every op.
    """
    chain = chain or chain_from_model(model)
    names = [la.name for la in _layers(model, _Refuse(None))]
    if layer not in names:
        raise ToolkitError(f"model {model.name!r} has no layer {layer!r}; layers: {choices(names)}")
    head = set(names[:names.index(layer) + 1])
    ends = [i + 1 for i, op in enumerate(chain.ops) if op.name in head]
    if not ends:
        raise ToolkitError(f"the head of {model.name!r} up to {layer!r} computes nothing")
    k = max(ends)
    return Chain(f"{chain.name}_head_{layer}", chain.input_shape, chain.ops[:k],
                 chain.shapes[:k + 1])
