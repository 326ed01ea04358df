"""Walking a Keras 3 functional graph in topological order.

Keras 3 keeps, per operation, its call sites (``Node``) with the symbolic input
and output tensors. A :class:`Graph` lists the nodes of a single-input,
single-output model in a topological order and can re-run any suffix of it on a
new input, which is how a tail model that shares the original weights is built.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import keras

from toolkit.errors import ToolkitError

__all__ = ["Graph", "GraphNode", "check_keras_model"]


@dataclass(frozen=True)
class GraphNode:
    """One call of an operation in the model graph."""

    node: Any  # keras.src.ops.node.Node
    inputs: tuple[int, ...]  # ids of the symbolic input tensors
    outputs: tuple[int, ...]  # ids of the symbolic output tensors

    @property
    def operation(self) -> Any:
        """The layer or operation called."""
        return self.node.operation

    @property
    def name(self) -> str:
        """The operation's name."""
        return self.node.operation.name


def check_keras_model(model: Any, purpose: str) -> keras.Model:
    """``model`` where it is a Keras model, else one line naming ``purpose`` and the
    way to get one from a name (``load_model``).

    Raises:
        ToolkitError: anything else (a model's name, None...).
    """
    if not isinstance(model, keras.Model):
        hint = f"{purpose}(load_model({model!r}))" if isinstance(model, str) else \
            f"{purpose}(load_model('digits-cnn'))"
        raise ToolkitError(f"{purpose} needs a Keras model, e.g. {hint}, got "
                           f"{type(model).__name__}")
    return model


def _functional(model: keras.Model) -> keras.Model:
    """The functional graph behind a model (Sequential models keep one)."""
    check_keras_model(model, "Graph")
    if isinstance(model, keras.Sequential):
        inner = getattr(model, "_functional", None)
        if inner is None:
            raise ToolkitError(
                f"Sequential model {model.name!r} has no known input shape; "
                "build it with keras.Input(shape=...) as its first layer"
            )
        return inner
    if not hasattr(model, "_nodes_by_depth"):
        raise ToolkitError(
            f"model {model.name!r} is a subclassed keras.Model; only functional and "
            "Sequential models have a graph that can be split"
        )
    return model


class Graph:
    """The nodes of a single-input, single-output Keras model in topological order."""

    def __init__(self, model: keras.Model) -> None:
        fn = _functional(model)
        if len(fn.inputs) != 1 or len(fn.outputs) != 1:
            raise ToolkitError(
                f"model {model.name!r} has {len(fn.inputs)} inputs and {len(fn.outputs)} "
                "outputs; splitting needs exactly one of each"
            )
        self.model = model
        self.input = fn.inputs[0]
        self.output = fn.outputs[0]
        by_depth = fn._nodes_by_depth
        self.nodes: list[GraphNode] = [
            GraphNode(node, tuple(id(t) for t in node.input_tensors),
                      tuple(id(t) for t in node.outputs))
            for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]
            if node.operation is not None and not node.is_input]
        self.tensors: dict[int, Any] = {
            id(self.input): self.input, **{id(t): t for n in self.nodes for t in n.node.outputs}}
        self.input_name = self.input._keras_history[0].name

    def crossing(self) -> list[list[int]]:
        """For each cut position p (0 = before the first node, len(nodes) = after the
        last), the ids of the tensors that cross from nodes < p to nodes >= p
        (the model output counts as consumed after the last node)."""
        remaining = Counter(t for n in self.nodes for t in n.inputs)
        remaining[id(self.output)] += 1
        live = {id(self.input)} if remaining.get(id(self.input)) else set()
        result = [sorted(live)]
        for n in self.nodes:
            for t in n.inputs:
                remaining[t] -= 1
                if remaining[t] == 0:
                    live.discard(t)
            for t in n.outputs:
                if remaining.get(t, 0) > 0:
                    live.add(t)
            result.append(sorted(live))
        return result

    def run_suffix(self, start: int, new_input: Any, cut_tensor: int) -> Any:
        """Call nodes ``start..`` on ``new_input`` standing for tensor ``cut_tensor``;
        returns what stands for the model output."""
        values: dict[int, Any] = {cut_tensor: new_input}
        for n in self.nodes[start:]:
            args, kwargs = n.node.arguments.fill_in(values)
            outputs = n.operation(*args, **kwargs)
            flat = keras.tree.flatten(outputs)
            values.update(zip(n.outputs, flat, strict=True))
        return values[id(self.output)]
