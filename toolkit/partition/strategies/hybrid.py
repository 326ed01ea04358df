"""Hybrid partitioning: the head partitioned over N edge devices, the tail in the cloud.

A :class:`HybridPlan` combines the vertical edge/cloud split of
:class:`~toolkit.models.split.SplitModel` with one multi-device strategy for the
head: the head (the model up to cut point ``split``) is partitioned over the
edge devices by a strategy (usually a horizontal one: ``spatial``,
``output-channel`` or ``input-channel``), its result is gathered on device 0,
encoded with a codec (``fp32``, ``fp16``, ``int8``, ``q4``, ``q2``, ``q1``, see
:mod:`toolkit.models.codecs`) and sent to the cloud, which runs the tail and
returns the output to device 0.

This trades computation against communication (more of the model on the
edge devices means less data to the cloud at most cut points, but more edge
compute and exchanges between devices) and energy against accuracy (a lossy
codec shrinks the activation the edge pays to send). The prediction of a
hybrid plan's costs is :func:`toolkit.partition.cost.per_device.hybrid.estimate_hybrid_cost`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from toolkit.errors import ToolkitError
from toolkit.models.codecs import check_codec, decode, encode, payload_nbytes
from toolkit.models.split import SplitModel
from toolkit.partition.model.execute import execute_plan
from toolkit.partition.model.network import head_model
from toolkit.partition.model.plan import PartitionPlan
from toolkit.partition.strategies.registry import partition

__all__ = [
    "CODEC_BYTES",
    "HYBRID_PREFIX",
    "HybridPlan",
    "codec_roundtrip",
    "default_hybrid_split",
    "execute_hybrid",
    "hybrid_plan",
    "hybrid_splits",
]

#: bytes per element of the byte-aligned codecs on the wire (the packed ``q4``/``q2``/``q1``
#: take a fraction of a byte: :func:`toolkit.models.codecs.payload_nbytes`)
CODEC_BYTES: dict[str, int] = {"fp32": 4, "fp16": 2, "int8": 1}
#: a hybrid plan's strategy name is this prefix and the head's strategy
HYBRID_PREFIX = "hybrid-"


@dataclass(frozen=True, eq=False)
class HybridPlan:
    """A split model whose head is partitioned over the edge devices.

    Attributes:
        model: the model's name.
        split: the cut point (``1 .. last split - 1``).
        layer: the Keras layer whose output goes to the cloud.
        codec: how that activation is encoded.
        head: the head's partition plan (result on device 0).
        tail_macs: MACs the cloud runs per sample.
        output_shape: one sample's model output shape.
    """

    model: str
    split: int
    layer: str
    codec: str
    head: PartitionPlan
    tail_macs: int
    output_shape: tuple[int, ...]

    @property
    def strategy(self) -> str:
        """``hybrid-<head strategy>``."""
        return f"{HYBRID_PREFIX}{self.head.strategy}"

    @property
    def n_devices(self) -> int:
        """Number of edge devices."""
        return self.head.n_devices

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's input shape."""
        return self.head.input_shape

    @property
    def activation_shape(self) -> tuple[int, ...]:
        """Shape of the activation sent to the cloud."""
        return self.head.output_shape

    @property
    def activation_bytes(self) -> int:
        """Encoded activation bytes per sample (payload, no frame header)."""
        return payload_nbytes(self.codec, math.prod(self.activation_shape))

    @property
    def output_bytes(self) -> int:
        """Bytes of the fp32 output the cloud returns per sample."""
        return 4 * math.prod(self.output_shape)


def hybrid_splits(split_model: SplitModel) -> list[int]:
    """The cut points a hybrid plan can use: at least one layer on each side."""
    return list(range(1, split_model.last_split))


def default_hybrid_split(split_model: SplitModel) -> int:
    """The hybrid cut sending the fewest bytes to the cloud (the earliest among equals).

    Raises:
        ToolkitError: the model has no cut with a layer on each side.
    """
    valid = hybrid_splits(split_model)
    if not valid:
        raise ToolkitError(f"model {split_model.name!r} is too short for a hybrid split")
    return min(valid, key=lambda k: (split_model.cut_points[k].bytes, k))


def hybrid_plan(
    model: keras.Model,
    n_devices: int,
    split: int,
    strategy: str = "spatial",
    codec: str = "fp32",
    *,
    split_model: SplitModel | None = None,
    model_name: str | None = None,
    **options: Any,
) -> HybridPlan:
    """Partition the head of ``model`` at ``split`` over ``n_devices`` edge devices.

    Args:
        model: a Keras model (residual ones: the head strategy must take them).
        n_devices: number of edge devices.
        split: cut point of the edge/cloud split (``1 .. last split - 1``: the
            head and the tail each hold at least one layer).
        strategy: the head's strategy (see :data:`~toolkit.partition.STRATEGIES`).
        codec: the activation's codec (one of :data:`~toolkit.models.codecs.CODECS`).
        split_model: the model's :class:`SplitModel`, where one exists already.
        model_name: the name to report (default: the Keras model's).
        **options: the strategy's options (``fuse``...).

    Raises:
        ToolkitError: a split out of range (the message lists the valid cut
            points), an unknown codec, or the strategy refuses the head.
    """
    check_codec(codec)
    sm = split_model or SplitModel(model, name=model_name or model.name)
    valid = hybrid_splits(sm)
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or split not in valid:
        listing = ", ".join(f"{c.split}={c.layer}" for c in sm.cut_points if c.split in valid)
        raise ToolkitError(
            f"hybrid split {split!r} is not valid for model {sm.name!r}: the head and the tail "
            f"must each hold a layer; valid splits: {listing or 'none (the model is too short)'}"
        )
    split = int(split)
    cut = sm.cut_points[split]
    chain = head_model(sm, split, strategy)
    if chain.output_shape != tuple(cut.shape):
        raise ToolkitError(f"the head of {sm.name!r} up to {cut.layer!r} gives shape "
                           f"{chain.output_shape}, the cut point {tuple(cut.shape)}")
    head = partition(chain, n_devices, strategy, **options)
    out_shape = tuple(int(d) for d in sm.model.outputs[0].shape[1:])
    return HybridPlan(model_name or sm.name, split, cut.layer, codec, head, cut.tail_macs,
                      out_shape)


def codec_roundtrip(x: np.ndarray, codec: str) -> np.ndarray:
    """``x`` encoded and decoded sample by sample, as the edge sends it."""
    x = np.asarray(x, dtype=np.float32)
    return np.stack([decode(encode(x[i:i + 1], codec))[0] for i in range(len(x))])


def execute_hybrid(plan: HybridPlan, split_model: SplitModel, x: np.ndarray) -> np.ndarray:
    """Run a hybrid plan in this process: head plan, codec, tail.

    Args:
        plan: the hybrid plan.
        split_model: the model's split model (for the tail).
        x: a batch ``(B, *plan.input_shape)``.

    Returns:
        The output batch as float32 NumPy.
    """
    head = execute_plan(plan.head, np.asarray(x, dtype=np.float32))
    tail = split_model.tail(plan.split)
    return np.asarray(tail(codec_roundtrip(head, plan.codec), training=False), dtype=np.float32)
