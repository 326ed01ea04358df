"""The predicted costs of a hybrid plan: the edge devices' and the cloud's.

:func:`estimate_hybrid_cost` predicts, with the multi-device cost model of
:mod:`toolkit.partition.cost.per_device` for the head and :class:`CloudModel`
for the edge-cloud link and the cloud: the request's latency is the head's
latency on device 0, plus the encoded activation at the cloud link's rate, the
round-trip time, the tail's MACs at the cloud's throughput and the fp32 output
at the link rate. Edge devices' energy is split as the head's
(:mod:`toolkit.partition.cost.energy`): compute, J/byte of the bytes sent and
received (device 0's include the activation and the output) and idle, over the
whole request under ``request`` accounting (busy while computing, waiting
otherwise) and 0 under ``busy``; the cloud is charged its busy power while the
tail runs (its profile's waiting power is 0), all of it compute energy. Every
figure is a prediction labelled ``model:<profile>``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from toolkit.energy.model import PowerModel
from toolkit.errors import check_number
from toolkit.hardware.profile import load_profile
from toolkit.partition.cost.energy import EnergySplit, split_energy
from toolkit.partition.cost.per_device import (
    DEFAULT_LINK_MBPS,
    CostModel,
    DeviceCost,
    estimate_cost,
)
from toolkit.partition.strategies.hybrid import HybridPlan

__all__ = ["DEFAULT_CLOUD_MACS_PER_S", "CloudModel", "HybridCost", "estimate_hybrid_cost"]

#: assumed cloud throughput: 50 GMAC/s (a many-core server running TensorFlow fp32)
DEFAULT_CLOUD_MACS_PER_S = 5e10


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
        for key in ("macs_per_s", "link_mbps", "rtt_ms"):
            check_number(getattr(self, key), f"cloud {key}", low_open=key != "rtt_ms")

    def power_model(self) -> PowerModel:
        """The cloud's power model (validates the accelerator)."""
        model = PowerModel(load_profile(self.profile))
        model.busy_w(None, self.accel)
        return model


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

    @property
    def energy_split(self) -> EnergySplit:
        """``energy_j`` in its compute, communication and idle parts: the edge
        devices' summed, the cloud's all compute."""
        return EnergySplit.sum(d.energy_split for d in self.devices) + EnergySplit(
            self.cloud_energy_j)


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
    cloud_power = cloud.power_model()
    rate = cloud.link_mbps * 1e6 / 8.0
    cloud_s = plan.tail_macs / cloud.macs_per_s
    latency = (head.latency_ms / 1e3 + plan.activation_bytes / rate + cloud.rtt_ms / 1e3
               + cloud_s + plan.output_bytes / rate)
    edge_powers = [model.power_model(d.device) for d in head.devices]
    devices = []
    for d in head.devices:
        first = d.device == 0
        sent = d.sent_bytes + (plan.activation_bytes if first else 0)
        received = d.received_bytes + (plan.output_bytes if first else 0)
        energy = split_energy(edge_powers[d.device], compute_s=d.compute_ms / 1e3,
                              request_s=latency, bytes_moved=sent + received, idle=model.idle,
                              freq=model.freq_mhz, accel=model.accel)
        devices.append(replace(
            d, sent_bytes=sent, latency_ms=latency * 1e3 if first else d.latency_ms,
            received_bytes=received, energy_j=energy.total_j, **energy.as_dict()))
    edge_j = sum(d.energy_j for d in devices)
    cloud_j = cloud_power.energy_j(cloud_s, accel=cloud.accel)
    edge_source = head.energy_source
    source = edge_source if edge_source == cloud_power.source else (
        f"{edge_source}+{cloud_power.source}")
    return HybridCost(plan.strategy, plan.n_devices, tuple(devices), latency * 1e3,
                      edge_j + cloud_j, edge_j, cloud_j, cloud_s * 1e3, plan.activation_bytes,
                      head.sync_points, source)
