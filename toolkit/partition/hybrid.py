"""Hybrid partitioning: the head partitioned over N edge devices, the tail in the cloud.

A :class:`HybridPlan` combines the vertical edge/cloud split of
:class:`~toolkit.models.split.SplitModel` with one multi-device strategy for the
head: the head (the model up to cut point ``split``) is partitioned over the
edge devices by a strategy (usually a horizontal one: ``spatial``,
``output-channel`` or ``input-channel``), its result is gathered on device 0,
encoded with a codec (``fp32``, ``fp16``, ``int8``, see
:mod:`toolkit.models.codecs`) and sent to the cloud, which runs the tail and
returns the output to device 0.

This trades computation against communication (more of the model on the
edge devices means less data to the cloud at most cut points, but more edge
compute and exchanges between devices) and energy against accuracy (a lossy
codec shrinks the activation the edge pays to send).

:func:`estimate_hybrid_cost` predicts, with the multi-device cost model of
:mod:`toolkit.partition.cost` for the head and :class:`CloudModel` for the
edge-cloud link and the cloud: the request's latency is the head's latency on
device 0, plus the encoded activation at the cloud link's rate, the round-trip
time, the tail's MACs at the cloud's throughput and the fp32 output at the link
rate. Edge devices are powered for the whole request (busy while computing,
waiting otherwise; device 0 also pays J/byte for the activation); the cloud is
charged its busy power while the tail runs (its profile's waiting power is 0).
Every figure is a prediction labelled ``model:<profile>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import keras
import numpy as np

from toolkit.energy.model import PowerModel
from toolkit.errors import ToolkitError
from toolkit.hardware.profile import load_profile
from toolkit.models.codecs import check_codec, decode, encode
from toolkit.models.split import SplitModel
from toolkit.partition.cost import DEFAULT_LINK_MBPS, CostModel, DeviceCost, estimate_cost
from toolkit.partition.execute import execute_plan
from toolkit.partition.graph import chain_head
from toolkit.partition.plan import PartitionPlan
from toolkit.partition.strategies import partition

__all__ = [
    "CODEC_BYTES",
    "DEFAULT_CLOUD_MACS_PER_S",
    "HYBRID_PREFIX",
    "CloudModel",
    "HybridCost",
    "HybridPlan",
    "codec_roundtrip",
    "default_hybrid_split",
    "estimate_hybrid_cost",
    "execute_hybrid",
    "hybrid_plan",
    "hybrid_splits",
]

#: bytes per element of each codec on the wire
CODEC_BYTES: dict[str, int] = {"fp32": 4, "fp16": 2, "int8": 1}
#: assumed cloud throughput: 50 GMAC/s (a many-core server running TensorFlow fp32)
DEFAULT_CLOUD_MACS_PER_S = 5e10
#: a hybrid plan's strategy name is this prefix and the head's strategy
HYBRID_PREFIX = "hybrid-"


@dataclass(frozen=True)
class CloudModel:
    """The edge-cloud link and the cloud of a hybrid prediction.

    Attributes:
        macs_per_s: the cloud's throughput on the tail.
        link_mbps: rate of device 0's link to the cloud, Mbit/s.
        rtt_ms: round-trip time between device 0 and the cloud.
        profile: the cloud's device profile (power model).
        accel: the cloud accelerator of the power model (``none``, ``gpu``).
    """

    macs_per_s: float = DEFAULT_CLOUD_MACS_PER_S
    link_mbps: float = DEFAULT_LINK_MBPS
    rtt_ms: float = 2.0
    profile: str = "cloud-gpu-server"
    accel: str = "none"

    def __post_init__(self) -> None:
        for key in ("macs_per_s", "link_mbps"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ToolkitError(f"cloud {key} must be a positive number, got {value!r}")
        if not isinstance(self.rtt_ms, (int, float)) or not self.rtt_ms >= 0:
            raise ToolkitError(f"cloud rtt_ms must be a number >= 0, got {self.rtt_ms!r}")

    def power_model(self) -> PowerModel:
        """The cloud's power model (validates the accelerator)."""
        model = PowerModel(load_profile(self.profile))
        model.busy_w(None, self.accel)
        return model


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
        return CODEC_BYTES[self.codec] * math.prod(self.activation_shape)

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
        model: a chain Keras model.
        n_devices: number of edge devices.
        split: cut point of the edge/cloud split (``1 .. last split - 1``: the
            head and the tail each hold at least one layer).
        strategy: the head's strategy (see :data:`~toolkit.partition.STRATEGIES`).
        codec: the activation's codec (``fp32``, ``fp16``, ``int8``).
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
    chain = chain_head(sm.model, cut.layer)
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


@dataclass(frozen=True)
class HybridCost:
    """Predicted costs of a hybrid plan, per sample.

    Attributes:
        strategy: ``hybrid-<head strategy>``.
        n_devices: edge devices.
        devices: per edge device (device 0's ``sent_bytes`` include the activation,
            its ``received_bytes`` the output).
        latency_ms: the request's latency (output back on device 0).
        energy_j: edge devices + cloud.
        edge_energy_j: the edge devices' energy.
        cloud_energy_j: the cloud's energy.
        cloud_ms: the tail's compute time.
        cloud_bytes: encoded activation bytes sent to the cloud.
        sync_points: exchanges between edge devices.
        energy_source: ``model:<edge profile>+model:<cloud profile>``.
    """

    strategy: str
    n_devices: int
    devices: tuple[DeviceCost, ...]
    latency_ms: float
    energy_j: float
    edge_energy_j: float
    cloud_energy_j: float
    cloud_ms: float
    cloud_bytes: int
    sync_points: int
    energy_source: str


def estimate_hybrid_cost(
    plan: HybridPlan,
    model: CostModel | None = None,
    cloud: CloudModel | None = None,
) -> HybridCost:
    """Predict a hybrid plan's per-device and cloud costs (see the module docstring).

    Args:
        plan: the hybrid plan.
        model: the edge devices' cost model (defaults: :class:`CostModel`).
        cloud: the edge-cloud link and the cloud (defaults: :class:`CloudModel`).
    """
    model = model or CostModel()
    cloud = cloud or CloudModel()
    head = estimate_cost(plan.head, model)
    edge_power, cloud_power = model.power_model(), cloud.power_model()
    rate = cloud.link_mbps * 1e6 / 8.0
    cloud_s = plan.tail_macs / cloud.macs_per_s
    latency = (head.latency_ms / 1e3 + plan.activation_bytes / rate + cloud.rtt_ms / 1e3
               + cloud_s + plan.output_bytes / rate)
    devices = []
    for d in head.devices:
        busy = d.compute_ms / 1e3
        sent = d.sent_bytes + (plan.activation_bytes if d.device == 0 else 0)
        energy = edge_power.energy_j(busy, latency - busy, freq=model.freq_mhz,
                                     accel=model.accel, bytes_sent=sent)
        first = d.device == 0
        devices.append(replace(
            d, sent_bytes=sent, latency_ms=latency * 1e3 if first else d.latency_ms,
            received_bytes=d.received_bytes + (plan.output_bytes if first else 0),
            energy_j=energy))
    edge_j = sum(d.energy_j for d in devices)
    cloud_j = cloud_power.energy_j(cloud_s, accel=cloud.accel)
    source = edge_power.source if edge_power.source == cloud_power.source else (
        f"{edge_power.source}+{cloud_power.source}")
    return HybridCost(plan.strategy, plan.n_devices, tuple(devices), latency * 1e3,
                      edge_j + cloud_j, edge_j, cloud_j, cloud_s * 1e3, plan.activation_bytes,
                      head.sync_points, source)

