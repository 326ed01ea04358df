"""Reading a branching Keras graph (residual blocks) as a network of ops.

Chain models are read by :mod:`toolkit.partition.model.graph`; a model whose
layers branch and join again -- ResNet's and MobileNetV2's residual blocks --
is read here as a :class:`Network`: its :class:`Node` objects in the core
walker's topological order (:class:`toolkit.models.graph.Graph`), each either an
:class:`~toolkit.partition.model.ops.Op` on one tensor or the element-wise sum
of several (a Keras ``Add``). Tensor ``0`` is the input and tensor ``i + 1`` the
output of node ``i``.

The network's *cut points* are the split engine's: the places of the
topological order where exactly one tensor crosses from the nodes before to
the nodes after (:meth:`toolkit.models.graph.Graph.crossing`, the sweep
:class:`toolkit.models.split.SplitModel` cuts at). A residual block is never cut
inside, so a strategy may hand the part between two cut points to a device, or
fuse it into one spatial group, and exchange a single tensor at each cut.

:func:`read_model` is how strategies read a Keras model: a chain as a
:class:`~toolkit.partition.model.graph.Chain`, anything else as a
:class:`Network`. :func:`chain_only` is for strategies that split chains only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras

from toolkit.errors import ToolkitError
from toolkit.models.graph import Graph
from toolkit.models.split import SplitModel
from toolkit.partition.model.graph import (
    Chain,
    as_chain,
    chain_from_model,
    chain_head,
    check_layer_shape,
    layer_ops,
)
from toolkit.partition.model.ops import Op, op_macs, op_output_shape

__all__ = ["Network", "Node", "chain_only", "head_model", "network_from_model", "read_model"]

Shape = tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Node:
    """One computation of a :class:`Network`.

    Attributes:
        op: the op computed on ``inputs[0]``, or None for the element-wise sum
            of ``inputs`` (a Keras ``Add``).
        name: the Keras layer it comes from.
        layer_type: that layer's class name.
        inputs: indices of the tensors it reads.
    """

    op: Op | None
    name: str
    layer_type: str
    inputs: tuple[int, ...]

    @property
    def is_add(self) -> bool:
        """Whether the node sums its inputs (joins branches)."""
        return self.op is None


@dataclass(frozen=True, eq=False)
class Network:
    """A branching model as nodes in topological order, with static shapes.

    Attributes:
        name: the model's name.
        input_shape: one sample's input shape.
        nodes: the computations in topological order.
        shapes: ``shapes[t]`` is tensor ``t``'s shape (``0``: the input,
            ``i + 1``: node ``i``'s output).
        output: the index of the model's output tensor.
        cuts: ``(position, tensor)`` of every cut point in order: before node
            ``position`` exactly tensor ``tensor`` is alive; the first is
            ``(0, 0)`` and the last ``(len(nodes), output)``.
    """

    name: str
    input_shape: Shape
    nodes: tuple[Node, ...]
    shapes: tuple[Shape, ...]
    output: int
    cuts: tuple[tuple[int, int], ...]

    @property
    def output_shape(self) -> Shape:
        """One sample's output shape."""
        return self.shapes[self.output]

    def node_macs(self) -> list[int]:
        """MACs of each node on one sample (a sum counts 0)."""
        return [0 if n.is_add else op_macs(n.op, self.shapes[n.inputs[0]]) for n in self.nodes]

    def macs(self) -> int:
        """MACs of one forward pass on one sample."""
        return sum(self.node_macs())

    def first_add(self) -> Node:
        """The first node that joins branches."""
        return next(n for n in self.nodes if n.is_add)


def _add_refusal(strategy: str | None, layer, why: str) -> ToolkitError:
    who = f"strategy {strategy!r}" if strategy else "partitioning"
    return ToolkitError(f"{who} cannot partition layer {layer.name!r} of type "
                        f"{type(layer).__name__} ({why}); branches may only join in an Add")


def _is_chain(graph: Graph) -> bool:
    current = (id(graph.input),)
    for node in graph.nodes:
        if node.inputs != current:
            return False
        current = node.outputs
    return current == (id(graph.output),)


def _graph(model: keras.Model, strategy: str | None) -> Graph:
    try:
        return Graph(model)
    except ToolkitError as exc:
        who = f"strategy {strategy!r}" if strategy else "partitioning"
        raise ToolkitError(f"{who} cannot read {model.name!r}: {exc}") from None


def _known_shape(model: keras.Model, input_shape: Sequence[int] | None) -> Shape:
    try:
        known = tuple(int(d) for d in model.inputs[0].shape[1:])
    except (TypeError, ValueError, AttributeError, IndexError):
        known = None
    if input_shape is not None and known is not None and tuple(input_shape) != known:
        raise ToolkitError(
            f"input shape {tuple(input_shape)} does not match model {model.name!r}'s {known}")
    if known is None:
        raise ToolkitError(f"model {model.name!r} has no fixed input shape; build it with one")
    return known


def network_from_model(model: keras.Model, *, input_shape: Sequence[int] | None = None,
                       strategy: str | None = None) -> Network:
    """Read a single-input, single-output Keras graph whose branches join in ``Add``.

    Args:
        model: a built functional Keras model with a fixed input shape.
        input_shape: checked against the model's where given.
        strategy: the strategy asking, named in refusal messages.

    Raises:
        ToolkitError: a layer that is not supported (named with its type), a
            nested model, a layer joining branches other than ``Add``, or a
            computed shape that differs from Keras'.
    """
    graph = _graph(model, strategy)
    shape = _known_shape(model, input_shape)
    tensor_of = {id(graph.input): 0}  # Keras tensor id -> tensor index
    shapes: list[Shape] = [shape]
    nodes: list[Node] = []
    position = [0]  # Keras node position -> node position
    for gnode in graph.nodes:
        layer = gnode.operation
        inputs = tuple(tensor_of[t] for t in gnode.inputs)
        if isinstance(layer, keras.Model):
            raise _add_refusal(strategy, layer, "a nested model inside a branching graph")
        if len(gnode.outputs) != 1:
            raise _add_refusal(strategy, layer, f"{len(gnode.outputs)} outputs")
        if isinstance(layer, keras.layers.Add):
            if len({shapes[i] for i in inputs}) != 1:
                raise _add_refusal(strategy, layer, "its inputs differ in shape")
            nodes.append(Node(None, layer.name, "Add", inputs))
            shapes.append(shapes[inputs[0]])
            current = len(shapes) - 1
        elif len(inputs) != 1:
            raise _add_refusal(strategy, layer, f"it takes {len(inputs)} inputs")
        else:
            current = inputs[0]
            for op in layer_ops(layer, shapes[current], strategy):
                nodes.append(Node(op, op.name, op.layer_type, (current,)))
                shapes.append(op_output_shape(op, shapes[current]))
                current = len(shapes) - 1
            check_layer_shape(layer, shapes[inputs[0]], shapes[current])
        tensor_of[gnode.outputs[0]] = current
        position.append(len(nodes))
    if not nodes:
        raise ToolkitError(f"model {model.name!r} has no layer to partition")
    output = tensor_of[id(graph.output)]
    if math.prod(shapes[output]) == 0:
        raise ToolkitError(f"model {model.name!r} produces an empty output {shapes[output]}")
    cuts: dict[int, int] = {}
    for p, live in enumerate(graph.crossing()):
        if len(live) == 1:
            cuts.setdefault(position[p], tensor_of[live[0]])
    cuts[0], cuts[len(nodes)] = 0, output
    return Network(model.name, shape, tuple(nodes), tuple(shapes), output,
                   tuple(sorted(cuts.items())))


def read_model(model: keras.Model | Chain | Network, strategy: str | None = None,
               input_shape: Sequence[int] | None = None) -> Chain | Network:
    """``model`` as a :class:`Chain` where its layers form one, else as a :class:`Network`.

    Raises:
        ToolkitError: the model cannot be read (see :func:`chain_from_model` and
            :func:`network_from_model`).
    """
    if isinstance(model, Chain):
        return as_chain(model, strategy or "partitioning", input_shape)
    if isinstance(model, Network):
        if input_shape is not None and tuple(input_shape) != model.input_shape:
            raise ToolkitError(f"input shape {tuple(input_shape)} does not match the "
                               f"network's {model.input_shape}")
        return model
    if isinstance(model, keras.Sequential) or _is_chain(_graph(model, strategy)):
        return chain_from_model(model, input_shape=input_shape, strategy=strategy)
    return network_from_model(model, input_shape=input_shape, strategy=strategy)


def chain_only(model: keras.Model | Chain | Network, strategy: str,
               input_shape: Sequence[int] | None = None) -> Chain:
    """``model`` as a :class:`Chain`, for a strategy that splits chains only.

    Raises:
        ToolkitError: the model branches: the message names its first residual ``Add``.
    """
    read = read_model(model, strategy, input_shape)
    if isinstance(read, Network):
        add = read.first_add()
        raise ToolkitError(
            f"{strategy} cannot partition residual Add {add.name!r} of {read.name!r}: the "
            "channel strategies split chain models only (the branches an Add joins would "
            "need their channels exchanged apart); use layer-wise or spatial")
    return read


def head_model(split_model: SplitModel, split: int, strategy: str | None = None) -> Chain | Network:
    """The edge part of a split model up to cut point ``split``, read for partitioning.

    A chain model's head is :func:`chain_head`; a branching model's is the split
    engine's head model (:meth:`SplitModel.head`) read with :func:`read_model`
    (a chain where the head holds no residual block).
    """
    model = split_model.model
    if isinstance(model, keras.Sequential) or _is_chain(_graph(model, strategy)):
        return chain_head(model, split_model.cut_points[split].layer)
    return read_model(split_model.head(split), strategy)
