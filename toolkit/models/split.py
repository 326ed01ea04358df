"""Cut points and head/tail models.

A *cut point* is a place in the model graph where exactly one tensor crosses
from the part before to the part after, found by a sweep over a topological
order of the graph; residual and skip connections are therefore never cut
inside, with no per-model tables. Split ``0`` sends the raw input (everything
runs in the cloud), split ``k`` cuts after the k-th cut point and the last split
cuts after the output layer (everything runs on the edge).

Head and tail models share the original model's weights: the head is the
sub-graph up to the cut tensor, the tail re-calls the remaining layers on a new
``keras.Input`` of the cut tensor's shape.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import keras

from toolkit.errors import ToolkitError
from toolkit.models.graph import Graph, check_keras_model
from toolkit.models.macs import graph_macs

__all__ = ["CutPoint", "SplitModel"]


@dataclass(frozen=True)
class CutPoint:
    """One split of a model.

    Attributes:
        split: split index (0 = all cloud, last = all edge).
        layer: the Keras layer whose output is sent (the input layer at split 0).
        shape: shape of the tensor sent, without the batch dimension.
        bytes: size of that tensor in fp32.
        head_macs: MACs run on the edge per sample.
        tail_macs: MACs run in the cloud per sample.
    """

    split: int
    layer: str
    shape: tuple[int, ...]
    bytes: int
    head_macs: int
    tail_macs: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record (the ``dynasplit split --list --json`` format)."""
        return {**asdict(self), "shape": list(self.shape)}


class SplitModel:
    """A Keras model with its valid cut points and head/tail models per split.

    Args:
        model: a functional or Sequential Keras 3 model with one input and one output.
        name: the model's name in configurations (default: the Keras name).

    Example:
        >>> sm = SplitModel(load_model("digits-cnn"))
        >>> sm.cut_points[2].layer, sm.n_splits
        >>> y = sm.tail(2)(sm.head(2)(x))
    """

    def __init__(self, model: keras.Model, name: str | None = None) -> None:
        self.model = check_keras_model(model, "SplitModel")
        self.name = name or model.name
        # Keras names allow no path separators: ``name`` may be a .keras path
        self._keras_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.name).stem)
        self._graph = Graph(model)
        self._heads: dict[int, keras.Model] = {}
        self._tails: dict[int, keras.Model] = {}

    @cached_property
    def _positions(self) -> list[tuple[int, int]]:
        """(node position, crossing tensor id) of every split, in split order."""
        g = self._graph
        result: list[tuple[int, int]] = []
        seen: set[int] = set()
        for pos, live in enumerate(g.crossing()):
            if len(live) == 1 and live[0] not in seen:
                seen.add(live[0])
                result.append((pos, live[0]))
        if not result or result[0][1] != id(g.input) or result[-1][1] != id(g.output):
            raise ToolkitError(f"model {self.name!r}: could not find its input and output cuts")
        return result

    @cached_property
    def cut_points(self) -> list[CutPoint]:
        """Every split of the model; ``cut_points[k].split == k``."""
        g = self._graph
        per_node = graph_macs(g)
        total = sum(per_node)
        producer = {t: n.name for n in g.nodes for t in n.outputs}
        points = []
        for k, (pos, tensor) in enumerate(self._positions):
            t = g.tensors[tensor]
            shape = tuple(int(d) for d in t.shape[1:])
            head = sum(per_node[:pos])
            points.append(
                CutPoint(
                    split=k,
                    layer=producer.get(tensor, g.input_name),
                    shape=shape,
                    bytes=4 * math.prod(shape),
                    head_macs=head,
                    tail_macs=total - head,
                )
            )
        return points

    @property
    def n_splits(self) -> int:
        """Number of splits (valid values of ``split`` are ``0..n_splits-1``)."""
        return len(self._positions)

    @property
    def last_split(self) -> int:
        """The edge-only split."""
        return self.n_splits - 1

    def check_split(self, split: int) -> int:
        """Return ``split`` as an ``int`` if valid (a NumPy integer, as a cube's
        coordinates give, counts), else raise ToolkitError listing the valid cut points."""
        listing = ", ".join(f"{c.split}={c.layer}" for c in self.cut_points)
        if isinstance(split, bool) or not isinstance(split, numbers.Integral):
            raise ToolkitError(f"split {split!r} is not an integer; valid splits of model "
                               f"{self.name!r} are 0..{self.last_split} ({listing})")
        if not 0 <= split < self.n_splits:
            raise ToolkitError(
                f"split {split} is out of range for model {self.name!r}: valid splits are "
                f"0..{self.last_split} ({listing})"
            )
        return int(split)

    def split_for_layer(self, layer: str) -> int:
        """The split that sends ``layer``'s output; refuses layers inside a branch."""
        for c in self.cut_points:
            if c.layer == layer:
                return c.split
        names = {n.name for n in self._graph.nodes}
        valid = ", ".join(c.layer for c in self.cut_points)
        if layer in names:
            pos = next(i for i, n in enumerate(self._graph.nodes) if n.name == layer) + 1
            crossing = len(self._graph.crossing()[pos])
            raise ToolkitError(
                f"cannot cut model {self.name!r} after layer {layer!r}: {crossing} tensors "
                f"cross there (it is inside a residual or branching block); valid cut "
                f"points: {valid}"
            )
        raise ToolkitError(f"model {self.name!r} has no layer {layer!r}; valid cut points: {valid}")

    def head(self, split: int) -> keras.Model | None:
        """The edge part for ``split`` (None at split 0: nothing runs on the edge)."""
        split = self.check_split(split)
        if split == 0:
            return None
        if split not in self._heads:
            _, tensor = self._positions[split]
            g = self._graph
            self._heads[split] = keras.Model(
                g.input, g.tensors[tensor], name=f"{self._keras_name}_head_{split}"
            )
        return self._heads[split]

    def tail(self, split: int) -> keras.Model | None:
        """The cloud part for ``split`` (None at the last split: nothing runs in the cloud)."""
        split = self.check_split(split)
        if split == self.last_split:
            return None
        if split not in self._tails:
            pos, tensor = self._positions[split]
            g = self._graph
            t = g.tensors[tensor]
            new_input = keras.Input(shape=t.shape[1:], dtype=t.dtype, name=f"cut_{split}")
            out = g.run_suffix(pos, new_input, tensor)
            self._tails[split] = keras.Model(
                new_input, out, name=f"{self._keras_name}_tail_{split}")
        return self._tails[split]

    def table(self) -> list[dict[str, Any]]:
        """All cut points as JSON-ready records."""
        return [c.as_dict() for c in self.cut_points]
