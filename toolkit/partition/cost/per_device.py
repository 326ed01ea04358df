"""The per-device cost of a partition plan, and its *predicted* latency and energy.

:func:`estimate_cost` counts, per device and sample (float32), the MACs of its
compute steps (halo rows a spatial device recomputes included), the bytes of
its weights, the most tensor bytes it holds at once (each tensor freed after its
last use), the bytes it sends and receives and the exchanges it takes part in.
With a :class:`CostModel` it predicts each device's latency (compute = MACs /
its throughput, plus fixed costs per instruction and per transfer; a transfer
starts when its sender has finished the stage's compute and both the sender's
uplink and the receiver's downlink are free, in the plan's order, and adds half
the RTT) and energy (compute, communication and idle,
:mod:`toolkit.partition.cost.energy`). Every figure is a prediction
(``energy_source = "model:<profile>"``); the model in full is
``docs/partitioning.md``, "Cost model".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from toolkit.energy.model import PowerModel
from toolkit.errors import ConfigError, check_number, choices
from toolkit.hardware.edge_timing import REFERENCE_BLOCK
from toolkit.hardware.profile import load_profile
from toolkit.partition.cost.energy import EnergySplit, check_idle, split_energy
from toolkit.partition.model.ops import op_weight_bytes
from toolkit.partition.model.plan import (
    INPUT,
    Compute,
    PartitionPlan,
    check_plan,
    instruction_inputs,
    nbytes,
)

__all__ = [
    "DEFAULT_LINK_MBPS",
    "DEFAULT_MACS_PER_S",
    "CostModel",
    "DeviceCost",
    "PlanCost",
    "estimate_cost",
]

#: assumed throughput of one edge device: 1 GMAC/s, the order of one Cortex-A72
#: core of a Raspberry Pi 4 running TensorFlow in float32
DEFAULT_MACS_PER_S = 1e9
#: assumed link rate between devices, Mbit/s (Fast Ethernet / good Wi-Fi)
DEFAULT_LINK_MBPS = 100.0


@dataclass(frozen=True)
class CostModel:
    """Parameters of the predicted latency and energy.

    Attributes:
        macs_per_s: throughput of a device of ``profile``.
        link_mbps: link rate of every device, Mbit/s (10⁶ bit/s).
        rtt_ms: round-trip time between two devices; each transfer adds half.
        profile: device profile name or path: the power model, and the device
            ``macs_per_s`` describes.
        freq_mhz: CPU frequency for the power model (None: each profile's highest).
        accel: accelerator setting for the power model.
        device_profiles: one profile per device, for unequal devices (empty: every
            device is a ``profile``). A device of another profile computes at
            ``macs_per_s`` times its speed relative to ``profile``: the ratio of
            the two profiles' int8 times for the reference block at their highest
            frequencies (:data:`~toolkit.hardware.edge_timing.REFERENCE_BLOCK`;
            the frequency changes power only, as for equal devices).
        idle: the idle accounting of the energy: ``request`` (default: every
            device is powered from the request's start to its end) or ``busy``
            (idle energy 0); see :mod:`toolkit.partition.cost.energy`.
        step_overhead_ms: fixed time a ``profile`` device spends per instruction
            besides its MACs (scaled by speed like the MACs); 0: not modelled.
        transfer_overhead_ms: fixed CPU time a ``profile`` device spends to send
            one tensor, and to receive one (scaled by speed); 0: not modelled.
    """

    macs_per_s: float = DEFAULT_MACS_PER_S
    link_mbps: float = DEFAULT_LINK_MBPS
    rtt_ms: float = 0.0
    profile: str = "raspberry-pi-4"
    freq_mhz: int | None = None
    accel: str = "none"
    device_profiles: tuple[str, ...] = ()
    idle: str = "request"
    step_overhead_ms: float = 0.0
    transfer_overhead_ms: float = 0.0

    def __post_init__(self) -> None:
        check_idle(self.idle)
        for key in ("macs_per_s", "link_mbps", "rtt_ms", "step_overhead_ms",
                    "transfer_overhead_ms"):
            check_number(getattr(self, key), key, low_open=key in ("macs_per_s", "link_mbps"))
        object.__setattr__(self, "device_profiles", tuple(self.device_profiles))
        for name in self.device_profiles:  # unknown names and missing timing tables fail here
            self._speed(name)

    def profile_of(self, device: int) -> str:
        """The profile of ``device``."""
        return self.device_profiles[device] if self.device_profiles else self.profile

    def check_devices(self, n_devices: int) -> None:
        """Refuse a plan whose device count differs from ``device_profiles``' length."""
        if self.device_profiles and len(self.device_profiles) != n_devices:
            raise ConfigError(
                f"the cost model has {len(self.device_profiles)} device profiles "
                f"({choices(self.device_profiles)}) for a plan over {n_devices} devices")

    def macs_per_s_of(self, device: int) -> float:
        """The throughput of ``device`` (see ``device_profiles``)."""
        return self.macs_per_s * self._speed(self.profile_of(device))

    def speeds(self, n_devices: int) -> list[float]:
        """Each device's speed relative to a ``profile`` device: the strategies'
        ``speeds`` option, to give faster devices larger shares."""
        self.check_devices(n_devices)
        return [self._speed(self.profile_of(d)) for d in range(n_devices)]

    def power_model(self, device: int | None = None) -> PowerModel:
        """The power model of ``device``'s profile (None: of ``profile``); validates the
        frequency and the accelerator against it."""
        name = self.profile if device is None else self.profile_of(device)
        model = PowerModel(load_profile(name))
        model.busy_w(self.freq_mhz, self.accel)
        return model

    def energy_source(self, n_devices: int) -> str:
        """The ``energy_source`` of a plan over ``n_devices``: each profile's model, once."""
        return "+".join(dict.fromkeys(self.power_model(d).source for d in range(n_devices)))

    def _speed(self, name: str) -> float:
        """How much faster a device of profile ``name`` is than one of ``profile``."""
        if name == self.profile:
            return 1.0
        return _reference_ms(self.profile) / _reference_ms(name)


def _reference_ms(name: str) -> float:
    """A profile's int8 time for the reference block at its highest frequency."""
    profile = load_profile(name)
    if profile.timing is None or not profile.timing.has("int8"):
        raise ConfigError(f"profile {profile.name!r} has no [timing.int8] table, so its speed "
                          "relative to another device is unknown")
    return profile.timing.time_ms(REFERENCE_BLOCK, profile.max_freq, "int8")


@dataclass(frozen=True)
class DeviceCost:
    """Costs of one device of a plan (per sample); times and energy are predicted.

    ``energy_j`` is ``compute_energy_j + comm_energy_j + idle_energy_j`` (see the
    module docstring).
    """

    device: int
    macs: int
    weight_bytes: int
    peak_activation_bytes: int
    sent_bytes: int
    received_bytes: int
    sync_points: int
    compute_ms: float
    latency_ms: float
    energy_j: float
    energy_source: str
    profile: str = ""
    compute_energy_j: float = 0.0
    comm_energy_j: float = 0.0
    idle_energy_j: float = 0.0

    @property
    def energy_split(self) -> EnergySplit:
        """``energy_j`` in its compute, communication and idle parts."""
        return EnergySplit(self.compute_energy_j, self.comm_energy_j, self.idle_energy_j)

    def as_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class PlanCost:
    """Costs of a whole plan: per device, and the request's predicted latency and energy."""

    strategy: str
    n_devices: int
    devices: tuple[DeviceCost, ...]
    latency_ms: float
    energy_j: float
    sync_points: int
    energy_source: str
    model: CostModel

    @property
    def macs(self) -> int:
        """MACs summed over the devices."""
        return sum(d.macs for d in self.devices)

    @property
    def energy_split(self) -> EnergySplit:
        """``energy_j`` in its compute, communication and idle parts, summed over devices."""
        return EnergySplit.sum(d.energy_split for d in self.devices)


def _peak_bytes(plan: PartitionPlan, device: int) -> int:
    """Most bytes ``device`` holds at once, each tensor freed after its last use."""
    events: list[tuple[dict[str, int], tuple[str, ...]]] = []  # (defined, used)
    if device == 0:
        events.append(({INPUT: nbytes(plan.input_shape)}, ()))
    for stage in plan.stages:
        for st in stage.steps[device]:
            events.append(({st.dst: nbytes(st.out_shape)}, instruction_inputs(st)))
        for t in stage.outgoing(device):
            events.append(({}, (t.tensor,)))
        for t in stage.incoming(device):
            events.append(({t.as_name: t.nbytes}, ()))
    if device == plan.output[0]:
        events.append(({}, (plan.output[1],)))
    last: dict[str, int] = {}
    for i, (defined, used) in enumerate(events):
        for name in (*defined, *used):
            last[name] = i
    live: dict[str, int] = {}
    peak = 0
    for i, (defined, _) in enumerate(events):
        live.update(defined)
        peak = max(peak, sum(live.values()))
        live = {name: size for name, size in live.items() if last[name] != i}
    return peak


def estimate_cost(plan: PartitionPlan, model: CostModel | None = None) -> PlanCost:
    """Count a plan's per-device costs and predict its latency and energy.

    Args:
        plan: the partition plan.
        model: throughput, link rate and power profile (defaults: :class:`CostModel`).
    """
    check_plan(plan, "estimate_cost")
    model = model or CostModel()
    n = plan.n_devices
    model.check_devices(n)
    powers = [model.power_model(d) for d in range(n)]  # each profile read once per call
    rates = [model.macs_per_s_of(d) for d in range(n)]
    slowness = [model.macs_per_s / r for r in rates]  # a profile device's times scale by it
    step_s, transfer_s = model.step_overhead_ms / 1e3, model.transfer_overhead_ms / 1e3
    rate = model.link_mbps * 1e6 / 8.0
    ready = [0.0] * n
    busy = [0.0] * n
    uplink = [0.0] * n
    downlink = [0.0] * n
    sent = [0] * n
    received = [0] * n
    syncs = [0] * n
    for stage in plan.stages:
        end = list(ready)
        for d, steps in enumerate(stage.steps):
            seconds = sum(st.macs for st in steps if isinstance(st, Compute)) / rates[d] \
                + step_s * len(steps) * slowness[d]
            end[d] += seconds
            busy[d] += seconds
        done = list(end)
        for t in stage.transfers:
            end[t.src] += transfer_s * slowness[t.src]
            start = max(end[t.src], uplink[t.src], downlink[t.dst])
            finish = start + t.nbytes / rate
            uplink[t.src] = downlink[t.dst] = finish
            done[t.src] = max(done[t.src], finish)
            done[t.dst] = max(done[t.dst], finish + model.rtt_ms / 2e3) \
                + transfer_s * slowness[t.dst]
            sent[t.src] += t.nbytes
            received[t.dst] += t.nbytes
        for d in {t.src for t in stage.transfers} | {t.dst for t in stage.transfers}:
            syncs[d] += 1
        ready = done
    latency = ready[plan.output[0]]
    energies = [split_energy(powers[d], compute_s=busy[d], request_s=latency,
                             bytes_moved=sent[d] + received[d], idle=model.idle,
                             freq=model.freq_mhz, accel=model.accel) for d in range(n)]
    devices = [DeviceCost(
        device=d,
        macs=sum(c.macs for c in plan.computes(d)),
        weight_bytes=sum(op_weight_bytes(c.op) for c in plan.computes(d)),
        peak_activation_bytes=_peak_bytes(plan, d),
        sent_bytes=sent[d],
        received_bytes=received[d],
        sync_points=syncs[d],
        compute_ms=busy[d] * 1e3,
        latency_ms=ready[d] * 1e3,
        energy_j=energies[d].total_j,
        energy_source=powers[d].source,
        profile=model.profile_of(d),
        **energies[d].as_dict(),
    ) for d in range(n)]
    return PlanCost(plan.strategy, n, tuple(devices), latency * 1e3,
                    sum(d.energy_j for d in devices), plan.sync_points,
                    "+".join(dict.fromkeys(p.source for p in powers)), model)
