"""Hardware states and the cost of switching between them.

A configuration needs the edge CPU at its frequency, the Coral TPU off
(``none``/``int8``) or on in the runtime mode of ``tpu-std``/``tpu-max``, and —
when the cloud runs part of the model (split below the last) — the cloud on its
accelerator. Switching costs come from the device profiles' ``[reconfiguration]``
tables: a frequency change (``cpu_freq_*``), TPU power on/off
(``tpu_power_on_*``, ``tpu_power_off_*``), a TPU runtime mode switch
(``tpu_mode_switch_*``) and a cloud CPU/GPU switch (``gpu_switch_*``). Edge
changes run one after another; the cloud switch runs in parallel with them, so
the switch time is ``max(edge, cloud)`` and its energy the sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from toolkit.config import ACCELERATORS

__all__ = ["HardwareState", "SwitchStep", "elapsed_ms", "hardware_state", "next_state",
           "switch_cost", "switch_steps"]


class HardwareState(NamedTuple):
    """The hardware setting a configuration needs (or the testbed is in).

    Attributes:
        cpu_freq: edge CPU frequency, MHz.
        tpu: ``off``, ``std`` or ``max`` (the Coral TPU's power and runtime mode).
        cloud: the cloud accelerator, or None where the cloud runs nothing (any
            state will do) or is not known yet.
    """

    cpu_freq: int
    tpu: str
    cloud: str | None


def hardware_state(config: Mapping[str, Any], last_split: int) -> HardwareState:
    """The hardware setting a configuration needs (see :class:`HardwareState`)."""
    uses_cloud = int(config["split"]) < last_split
    accel = ACCELERATORS["edge"].get(str(config["edge_accel"]))
    return HardwareState(int(config["cpu_freq"]), accel.tpu if accel else "off",
                         str(config["cloud_accel"]) if uses_cloud else None)


def next_state(current: HardwareState | None, needed: HardwareState) -> HardwareState:
    """The state after switching from ``current`` to what a configuration needs."""
    cloud = needed.cloud if needed.cloud is not None or current is None else current.cloud
    return HardwareState(needed.cpu_freq, needed.tpu, cloud)


class SwitchStep(NamedTuple):
    """One hardware change of a switch (see :func:`switch_steps`).

    Attributes:
        side: ``edge`` or ``cloud`` (edge steps run one after another, the cloud's
            in parallel with them).
        knob: ``cpu_freq``, ``tpu_power``, ``tpu_mode`` or ``cloud_accel``.
        value: the value set (``on``/``off`` for ``tpu_power``).
        ms, j: its time and energy from the profiles' ``[reconfiguration]``.
    """

    side: str
    knob: str
    value: str
    ms: float
    j: float


def switch_steps(costs: Mapping[str, float], current: HardwareState | None,
                 needed: HardwareState) -> list[SwitchStep]:
    """The hardware changes that go from ``current`` to ``needed``, in order.

    Args:
        costs: the profiles' ``[reconfiguration]`` entries (missing ones cost 0).
        current: the present state; None (unknown) needs no step.
        needed: the state a configuration needs.
    """
    if current is None:
        return []

    def step(side: str, knob: str, value: str, name: str) -> SwitchStep:
        return SwitchStep(side, knob, value, costs.get(f"{name}_ms", 0.0),
                          costs.get(f"{name}_j", 0.0))

    steps = []
    if current.cpu_freq != needed.cpu_freq:
        steps.append(step("edge", "cpu_freq", str(needed.cpu_freq), "cpu_freq"))
    if current.tpu != needed.tpu:
        if current.tpu == "off":
            steps.append(step("edge", "tpu_power", "on", "tpu_power_on"))
        elif needed.tpu == "off":
            steps.append(step("edge", "tpu_power", "off", "tpu_power_off"))
        else:
            steps.append(step("edge", "tpu_mode", needed.tpu, "tpu_mode_switch"))
    if needed.cloud is not None and current.cloud is not None and needed.cloud != current.cloud:
        steps.append(step("cloud", "cloud_accel", needed.cloud, "gpu_switch"))
    return steps


def elapsed_ms(durations: Iterable[tuple[str, float]]) -> float:
    """How long changes take, from ``(side, ms)`` pairs: the changes of one side (a host:
    the edge, the cloud) one after another, the sides at the same time."""
    per_side: dict[str, float] = {}
    for side, ms in durations:
        per_side[side] = per_side.get(side, 0.0) + ms
    return max(per_side.values(), default=0.0)


def switch_cost(costs: Mapping[str, float], current: HardwareState | None,
                needed: HardwareState) -> tuple[float, float]:
    """Time (ms) and energy (J) to go from ``current`` to ``needed``.

    Args:
        costs: the profiles' ``[reconfiguration]`` entries (missing ones cost 0).
        current: the present state; None (unknown) costs nothing.
        needed: the state a configuration needs.
    """
    if current is None or current == needed:   # the common case, kept fast (decisions)
        return 0.0, 0.0
    steps = switch_steps(costs, current, needed)
    return elapsed_ms((s.side, s.ms) for s in steps), sum((s.j for s in steps), 0.0)
