"""Records of measured partition runs, and how device reports become them.

Each device worker reports, per measured sample, its compute, send and receive
times, the bytes it sent and received and when it started and finished (the
host's monotonic clock, shared by the local worker processes).
:func:`assemble_run` turns those reports into a :class:`PartitionRun`: the
request's latency (device 0, inputs to outputs), each device's finish time
relative to the request's start, and per-device energy (``docs/partitioning.md``,
"Real execution", for the energy and its labels).

Each device's energy is split as the prediction's
(:mod:`toolkit.partition.cost.energy`), from the measured times per sample:
compute energy ``P_busy × (compute + encode)``, communication energy ``J/byte ×
(bytes it put on the wire + tensor bytes it received)`` and idle energy ``P_wait
× (latency − compute − encode)`` under ``request`` accounting (0 under
``busy``); its send and receive-wait times are idle time. A metered device's
energy is its meter's; its split is that total shared in the proportions of
the power model's ``request`` split of its measured times (a meter measures
whatever the device drew, so ``busy`` accounting does not change it), and
``energy_split_source`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from toolkit.energy.meter import Measurement
from toolkit.energy.model import PowerModel
from toolkit.partition.cost.energy import EnergySplit, split_energy
from toolkit.partition.cost.hybrid import HybridCost
from toolkit.partition.cost.per_device import PlanCost
from toolkit.partition.cost.stream import StreamCost
from toolkit.partition.model.plan import PartitionPlan
from toolkit.runtime.link import Link

__all__ = ["DeviceMeasurement", "PartitionRun", "assemble_run"]

#: the per-sample fields a device reports whose mean is its measurement
_MEAN_FIELDS = ("compute_ms", "send_ms", "recv_ms", "encode_ms", "sent_bytes", "frame_bytes",
                "received_bytes")


@dataclass
class DeviceMeasurement:
    """What one device did per sample in a run (means over the measured samples).

    Attributes:
        device: the device's index.
        pid: its worker process.
        macs: MACs of its part (from the plan).
        compute_ms: running its part of the model.
        send_ms: sending (serialisation on its emulated uplink included).
        recv_ms: blocked waiting for data from other devices.
        encode_ms: encoding the activation for the cloud (hybrid, device 0).
        latency_ms: when it finished its part, from the request's start on device 0.
        sent_bytes: tensor payload bytes it sent (to devices and the cloud).
        frame_bytes: bytes it put on the wire (payloads and frame headers).
        received_bytes: tensor payload bytes it received.
        energy_j: its energy per sample (``compute_energy_j + comm_energy_j +
            idle_energy_j``).
        energy_source: where ``energy_j`` comes from.
        cpu_util: its worker's CPU time over wall time during the run, % of a core.
        compute_energy_j: energy while computing (and encoding) per sample.
        comm_energy_j: energy per byte sent and received per sample.
        idle_energy_j: energy while powered and not computing per sample.
        energy_split_source: where the split comes from: ``energy_source`` for
            a modelled device; for a metered one, its meter's total in the
            power model's proportions (``<meter> split by model:<profile>``).
        profile: the device profile it emulated (its power model and speed).
        quota_cores: the host cores its cgroup quota gave it (None: unthrottled).
        capped: whether its profile is faster than one host core, so that its
            quota was capped at one core (it ran slower than its profile).
    """

    device: int
    pid: int
    macs: int
    compute_ms: float
    send_ms: float
    recv_ms: float
    encode_ms: float
    latency_ms: float
    sent_bytes: float
    frame_bytes: float
    received_bytes: float
    energy_j: float
    energy_source: str
    cpu_util: float
    compute_energy_j: float = 0.0
    comm_energy_j: float = 0.0
    idle_energy_j: float = 0.0
    energy_split_source: str = ""

    @property
    def energy_split(self) -> EnergySplit:
        """``energy_j`` in its compute, communication and idle parts."""
        return EnergySplit(self.compute_energy_j, self.comm_energy_j, self.idle_energy_j)
    profile: str = ""
    quota_cores: float | None = None
    capped: bool = False

    @property
    def macs_per_s(self) -> float:
        """Throughput this device reached on its compute steps."""
        return self.macs / (self.compute_ms / 1e3) if self.compute_ms > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with ``macs_per_s``)."""
        return {**asdict(self), "macs_per_s": self.macs_per_s}


@dataclass
class PartitionRun:
    """One measured run of a plan over real device processes.

    Per-sample arrays hold one value per measured sample; the per-device
    figures in :attr:`devices` are means.

    Attributes:
        model: the model's name.
        strategy: the strategy (``hybrid-<s>`` for hybrid plans).
        n_devices: edge devices.
        split: the edge/cloud cut (the model's last split when all runs on the edge).
        codec: the activation codec (hybrid) or ``fp32``.
        cpu_freq: the emulated CPU frequency of every device, MHz.
        link: the emulated link between devices.
        samples: measured samples.
        devices: per-device measurements.
        latency_ms: end-to-end latency per sample (inputs to outputs on device 0).
        energy_j: edge devices + cloud, per sample.
        edge_energy_j: the edge devices' energy per sample.
        cloud_energy_j: the cloud's energy per sample (0 without a cloud).
        cloud_ms: the cloud's decode and tail time per sample.
        outputs: the model outputs device 0 returned.
        max_abs_error: largest absolute difference from the unpartitioned model.
        accuracy: top-1 agreement of the outputs with ``label_source`` labels.
        label_source: ``labels`` (true digit labels) or ``fp32-model``.
        energy_source: edge and cloud sources, ``+``-joined where they differ.
        predicted: the cost model's prediction for this plan and link.
        throttled: whether the devices ran under cgroup CPU quotas.
        sync_points: exchanges between devices per sample.
        cloud_bytes: encoded activation bytes sent to the cloud per sample.
        idle: the idle accounting of the modelled energies (``request`` or ``busy``).
        stream: a stream run's measured figures (``PartitionCluster.run(...,
            interval_ms=...)``; None otherwise).
        predicted_stream: the prediction of that stream.
    """

    model: str
    strategy: str
    n_devices: int
    split: int
    codec: str
    cpu_freq: int
    link: Link
    samples: int
    devices: list[DeviceMeasurement]
    latency_ms: np.ndarray
    energy_j: np.ndarray
    edge_energy_j: np.ndarray
    cloud_energy_j: np.ndarray
    cloud_ms: np.ndarray
    outputs: np.ndarray
    max_abs_error: float
    accuracy: float
    label_source: str
    energy_source: str
    predicted: PlanCost | HybridCost
    throttled: bool
    sync_points: int
    cloud_bytes: float = 0.0
    idle: str = "request"

    @property
    def energy_split(self) -> EnergySplit:
        """The mean energy per sample in its compute, communication and idle parts:
        the devices' summed, the cloud's all compute."""
        return EnergySplit.sum(d.energy_split for d in self.devices) + EnergySplit(
            float(np.mean(self.cloud_energy_j)))
    stream: dict[str, Any] | None = None
    predicted_stream: StreamCost | None = None

    @property
    def max_device_energy_j(self) -> float:
        """The largest per-device energy per sample (the most loaded device)."""
        return max(d.energy_j for d in self.devices)

    @property
    def edge_ms(self) -> float:
        """The largest per-device compute time per sample."""
        return max(d.compute_ms + d.encode_ms for d in self.devices)

    def cube_row(self) -> dict[str, Any]:
        """The run as a cube row (see ``docs/partitioning.md``, "Cubes")."""
        latency = float(np.mean(self.latency_ms))
        cloud = float(np.mean(self.cloud_ms))
        return {
            "model": self.model, "split": self.split, "cpu_freq": self.cpu_freq,
            "edge_accel": "none", "cloud_accel": "none", "strategy": self.strategy,
            "devices": self.n_devices, "codec": self.codec,
            "latency_ms": latency, "edge_ms": self.edge_ms, "cloud_ms": cloud,
            "transfer_ms": max(latency - self.edge_ms - cloud, 0.0),
            "energy_j": float(np.mean(self.energy_j)),
            "edge_energy_j": float(np.mean(self.edge_energy_j)),
            "cloud_energy_j": float(np.mean(self.cloud_energy_j)),
            "accuracy": self.accuracy,
            "tensor_kb": sum(d.sent_bytes for d in self.devices) / 1024,
            "edge_cpu_util": float(np.mean([d.cpu_util for d in self.devices])),
            "max_device_energy_j": self.max_device_energy_j,
            "max_abs_error": self.max_abs_error,
            **self.energy_split.as_dict(),
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (means; no per-sample arrays, no outputs), with the prediction."""
        return {
            "model": self.model, "strategy": self.strategy, "devices": self.n_devices,
            "split": self.split, "codec": self.codec, "cpu_freq": self.cpu_freq,
            "link": self.link.as_dict(), "samples": self.samples,
            **{k: float(np.mean(getattr(self, k)))
               for k in ("latency_ms", "energy_j", "edge_energy_j", "cloud_energy_j")},
            **self.energy_split.as_dict(), "idle_accounting": self.idle,
            "cloud_ms": float(np.mean(self.cloud_ms)), "cloud_bytes": self.cloud_bytes,
            "max_abs_error": self.max_abs_error, "accuracy": self.accuracy,
            "label_source": self.label_source, "energy_source": self.energy_source,
            "throttled": self.throttled, "sync_points": self.sync_points,
            "per_device": [d.as_dict() for d in self.devices],
            "predicted": {
                "latency_ms": self.predicted.latency_ms, "energy_j": self.predicted.energy_j,
                "energy_source": self.predicted.energy_source,
                **self.predicted.energy_split.as_dict(),
                "per_device": [{"latency_ms": d.latency_ms, "energy_j": d.energy_j,
                                "compute_ms": d.compute_ms, "sent_bytes": d.sent_bytes,
                                **d.energy_split.as_dict()}
                               for d in self.predicted.devices],
                **({"stream": self.predicted_stream.as_dict()}
                   if self.predicted_stream is not None else {}),
            },
            **({"stream": self.stream} if self.stream is not None else {}),
        }


def _sample_splits(power: PowerModel, freq: int, col: Mapping[str, np.ndarray],
                   latency_ms: np.ndarray, idle: str) -> list[EnergySplit]:
    """One device's modelled energy split per sample, from its measured times and bytes."""
    busy_ms = col["compute_ms"] + col["encode_ms"]
    moved = col["frame_bytes"] + col["received_bytes"]
    return [split_energy(power, compute_s=float(b) / 1e3, request_s=float(t) / 1e3,
                         bytes_moved=float(m), idle=idle, freq=freq)
            for b, t, m in zip(busy_ms, latency_ms, moved, strict=True)]


def assemble_run(
    replies: Mapping[int, Mapping[str, Any]],
    outputs: np.ndarray,
    *,
    plan: PartitionPlan,
    pids: Sequence[int],
    power: PowerModel | Sequence[PowerModel],
    freq: int | Sequence[int],
    cloud_power: PowerModel | None,
    cloud_accel: str,
    measured: Mapping[int, Measurement],
    reference: np.ndarray,
    labels: np.ndarray,
    label_source: str,
    run: Mapping[str, Any],
    idle: str = "request",
) -> PartitionRun:
    """A :class:`PartitionRun` from the devices' result replies.

    Args:
        replies: each device's ``result`` reply (per-sample lists).
        outputs: the outputs device 0 returned.
        plan: the plan the devices ran (the head's, for a hybrid plan).
        pids: the device workers' process ids.
        power: the edge devices' power model, or one per device.
        freq: their emulated CPU frequency, or one per device.
        cloud_power: the cloud's power model (None without a cloud).
        cloud_accel: the cloud power model's accelerator.
        measured: a meter window per metered device (the rest use ``power``).
        reference: the unpartitioned model's outputs on the same inputs.
        labels: reference labels of the inputs.
        label_source: where the labels come from.
        run: the remaining :class:`PartitionRun` fields (``model``, ``strategy``,
            ``n_devices``, ``split``, ``codec``, ``cpu_freq``, ``link``,
            ``predicted``, ``throttled``).
        idle: the idle accounting of modelled energies (``request`` or ``busy``).
    """
    col = {i: {k: np.asarray(v, dtype=float) for k, v in r.items() if isinstance(v, list)}
           for i, r in replies.items()}
    start = col[0]["t_start"]
    latency = (col[0]["t_end"] - start) * 1e3
    samples = len(latency)
    devices, sources = [], []
    edge_j = np.zeros(samples)
    for i in sorted(col):
        c, r = col[i], replies[i]
        pw = power[i] if isinstance(power, Sequence) else power
        f = freq[i] if isinstance(freq, Sequence) else freq
        if i in measured:
            modelled = EnergySplit.sum(_sample_splits(pw, f, c, latency, "request"))
            metered = measured[i].joules / samples
            # a device the model sees neither compute nor move bytes only waited
            split = (modelled.scaled(metered / modelled.total_j) if modelled.total_j > 0
                     else EnergySplit(idle_j=metered))
            energy = np.full(samples, split.total_j)
            sources.append(measured[i].source)
            split_source = f"{measured[i].source} split by {pw.source}"
        else:
            splits = _sample_splits(pw, f, c, latency, idle)
            split = EnergySplit.sum(splits).scaled(1 / samples)
            energy = np.asarray([sp.total_j for sp in splits])
            sources.append(split_source := pw.source)
        edge_j += energy
        devices.append(DeviceMeasurement(
            device=i, pid=int(pids[i]), macs=sum(s.macs for s in plan.computes(i)),
            **{k: float(np.mean(c[k])) for k in _MEAN_FIELDS},
            # when the device finished, from device 0's start; a device with no
            # part in the plan may finish before device 0 starts: 0, not negative
            latency_ms=float(np.mean(np.maximum((c["t_end"] - start) * 1e3, 0.0))),
            energy_j=split.total_j, energy_source=sources[-1],
            cpu_util=100.0 * r["cpu_s"] / r["wall_s"] if r["wall_s"] > 0 else float("nan"),
            **split.as_dict(), energy_split_source=split_source,
            profile=pw.profile.name,
        ))
    source = "+".join(dict.fromkeys(sources))
    cloud_ms = col[0]["cloud_ms"]
    cloud_j = np.zeros(samples)
    if cloud_power is not None:
        cloud_j = cloud_power.busy_w(None, cloud_accel) * cloud_ms / 1e3
        if cloud_power.source != source:
            source = f"{source}+{cloud_power.source}"
    return PartitionRun(
        **run, samples=samples, devices=devices, latency_ms=latency,
        energy_j=edge_j + cloud_j, edge_energy_j=edge_j, cloud_energy_j=cloud_j,
        cloud_ms=cloud_ms, outputs=outputs,
        max_abs_error=float(np.max(np.abs(outputs - reference))),
        accuracy=float(np.mean(np.argmax(outputs, axis=-1) == labels)),
        label_source=label_source, energy_source=source, sync_points=plan.sync_points,
        cloud_bytes=float(np.mean(col[0]["cloud_bytes"])), idle=idle,
    )
