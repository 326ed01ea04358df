"""Partition plans: what each device computes and what it sends, stage by stage.

A :class:`PartitionPlan` is a sequence of :class:`Stage` objects. In a stage,
every device first runs its own local instructions (:class:`Compute`,
:class:`Slice`, :class:`Concat`, :class:`Assemble`, :class:`Reduce`) on the
tensors it holds, then the stage's :class:`Transfer` list moves tensors (or a
contiguous region of one) between devices: that exchange is a synchronisation
point. Tensors are named per device; a device only ever reads names it holds.

The request's input arrives at device 0 under the name ``"input"``; the answer
is due at device 0 (:attr:`PartitionPlan.output`). The plan holds everything a
device needs: its ops carry their (sliced) weights. Running a plan in one
process is :func:`toolkit.partition.model.execute.execute_plan`; a worker process
runs ``stage.steps[device]`` and then its ``stage.outgoing(device)`` /
``stage.incoming(device)`` for each stage in turn.

Shapes exclude the batch dimension; byte counts are per sample in float32.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError, in_range, is_count
from toolkit.partition.model.ops import BYTES_PER_ELEMENT, Op, op_macs, op_output_shape

__all__ = [
    "INPUT",
    "MAX_DEVICES",
    "Assemble",
    "Compute",
    "Concat",
    "Instruction",
    "PartitionPlan",
    "PlanBuilder",
    "Reduce",
    "Region",
    "Slice",
    "Stage",
    "Transfer",
    "check_devices",
    "check_plan",
    "check_speeds",
    "instruction_inputs",
    "nbytes",
    "split_evenly",
    "split_shares",
]

#: the name of the request's input on device 0
INPUT = "input"

Shape = tuple[int, ...]


def nbytes(shape: Shape) -> int:
    """Bytes of one float32 sample of ``shape``."""
    return BYTES_PER_ELEMENT * math.prod(shape)


def split_evenly(size: int, parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges cutting ``range(size)`` into ``parts`` near-equal pieces.

    The first ``size % parts`` pieces are one longer; pieces are empty where
    ``size < parts``.
    """
    base, extra = divmod(size, parts)
    return [(i * base + min(i, extra), (i + 1) * base + min(i + 1, extra)) for i in range(parts)]


def split_shares(size: int, parts: int,
                 speeds: Sequence[float] | None = None) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges cutting ``range(size)`` into ``parts`` pieces, each in
    proportion to its device's speed (largest remainders round; the earlier piece
    wins a tie); :func:`split_evenly` where ``speeds`` is None."""
    if speeds is None:
        return split_evenly(size, parts)
    total = float(sum(speeds))
    quotas = [size * float(w) / total for w in speeds]
    counts = [math.floor(q) for q in quotas]
    for i in sorted(range(parts), key=lambda i: (counts[i] - quotas[i], i))[:size - sum(counts)]:
        counts[i] += 1
    return [(stop - c, stop) for c, stop in zip(counts, itertools.accumulate(counts), strict=True)]


def check_speeds(speeds: Sequence[float] | None, n_devices: int,
                 strategy: str) -> tuple[float, ...] | None:
    """Validate per-device speeds (one positive, finite number per device) or None."""
    if speeds is None:
        return None
    values = tuple(speeds)
    if len(values) != n_devices or not all(in_range(v, low_open=True) for v in values):
        raise ToolkitError(f"strategy {strategy!r} needs one speed > 0 per device "
                           f"({n_devices}), got {list(values)!r}")
    return tuple(float(v) for v in values)


#: the most devices a plan spreads over: a testbed of edge devices, not a data centre;
#: a plan, its cost and its tables grow with the count (1000 devices take half a
#: minute to predict), so a mistyped count is refused instead of running for an hour
MAX_DEVICES = 1024


def check_devices(n_devices: int, strategy: str | None = None) -> int:
    """Validate a device count (an integer in 1..:data:`MAX_DEVICES`).

    Raises:
        ToolkitError: anything else, naming ``strategy`` where one asks.
    """
    who = f"strategy {strategy!r}" if strategy else "a plan"
    if not is_count(n_devices):
        raise ToolkitError(f"{who} needs a number of devices >= 1, got {n_devices!r}")
    if n_devices > MAX_DEVICES:
        raise ToolkitError(f"{who} spreads over at most {MAX_DEVICES} devices, got {n_devices}")
    return int(n_devices)


@dataclass(frozen=True)
class Region:
    """A contiguous part of a tensor along one axis (no batch dimension).

    ``axis`` 0 is the rows of an image tensor; -1 the channels or features.
    """

    axis: int
    start: int
    stop: int

    def shape_of(self, shape: Shape) -> Shape:
        """The shape of this region of a tensor of ``shape``."""
        out = list(shape)
        out[self.axis] = self.stop - self.start
        return tuple(out)


@dataclass(frozen=True, eq=False)
class Instruction:
    """A device's local instruction: it writes the tensor ``dst``, of one sample's shape
    ``out_shape`` (both keyword arguments of every kind below)."""

    dst: str = field(kw_only=True)
    out_shape: Shape = field(kw_only=True)


@dataclass(frozen=True, eq=False)
class Compute(Instruction):
    """``dst = op(src)``."""

    op: Op
    src: str
    in_shape: Shape

    @property
    def macs(self) -> int:
        """Multiply-accumulates of this step on one sample."""
        return op_macs(self.op, self.in_shape)


@dataclass(frozen=True)
class Slice(Instruction):
    """``dst = src[region]``."""

    src: str
    region: Region


@dataclass(frozen=True)
class Concat(Instruction):
    """``dst`` = the ``srcs`` joined along ``axis`` in order."""

    srcs: tuple[str, ...]
    axis: int


@dataclass(frozen=True, eq=False)
class Assemble(Instruction):
    """``dst[..., indices[i]] = srcs[i]`` along the last axis (covers it exactly)."""

    srcs: tuple[str, ...]
    indices: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Reduce(Instruction):
    """``dst`` = the element-wise sum of ``srcs`` (partial sums)."""

    srcs: tuple[str, ...]


def instruction_inputs(step: Instruction) -> tuple[str, ...]:
    """Names a local instruction reads."""
    return (step.src,) if isinstance(step, (Compute, Slice)) else step.srcs


@dataclass(frozen=True)
class Transfer:
    """Send ``tensor`` (or its ``region``) from device ``src`` to ``dst`` as ``as_name``."""

    src: int
    dst: int
    tensor: str
    as_name: str
    region: Region | None
    shape: Shape

    @property
    def nbytes(self) -> int:
        """Bytes on the wire for one sample."""
        return nbytes(self.shape)


@dataclass(frozen=True, eq=False)
class Stage:
    """Local work on every device, then one exchange."""

    steps: tuple[tuple[Instruction, ...], ...]
    transfers: tuple[Transfer, ...]

    def outgoing(self, device: int) -> tuple[Transfer, ...]:
        """The transfers ``device`` sends at the end of this stage."""
        return tuple(t for t in self.transfers if t.src == device)

    def incoming(self, device: int) -> tuple[Transfer, ...]:
        """The transfers ``device`` receives at the end of this stage."""
        return tuple(t for t in self.transfers if t.dst == device)


@dataclass(frozen=True, eq=False)
class PartitionPlan:
    """A model partitioned over ``n_devices`` devices by one strategy.

    Attributes:
        strategy: the strategy's name (e.g. ``spatial``).
        model: the model's name.
        n_devices: number of devices.
        input_shape: one sample's input shape.
        output_shape: one sample's output shape.
        stages: local work and exchanges in order.
        output: ``(device, name)`` of the result.
        options: the strategy's options (e.g. ``{"fuse": "all"}``).
    """

    strategy: str
    model: str
    n_devices: int
    input_shape: Shape
    output_shape: Shape
    stages: tuple[Stage, ...]
    output: tuple[int, str]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def sync_points(self) -> int:
        """Number of exchanges (stages that move data between devices)."""
        return sum(1 for s in self.stages if s.transfers)

    def computes(self, device: int) -> list[Compute]:
        """Every :class:`Compute` step of ``device`` in order."""
        return [st for s in self.stages for st in s.steps[device] if isinstance(st, Compute)]

    def layers(self, device: int) -> list[str]:
        """Names of the Keras layers ``device`` computes (part of), in order, once each."""
        return list(dict.fromkeys(c.op.name for c in self.computes(device)))

    def describe(self) -> str:
        """A readable listing of the plan, stage by stage."""
        lines = [f"{self.strategy} plan of {self.model} over {self.n_devices} devices"]
        for i, stage in enumerate(self.stages):
            lines.append(f"stage {i}:")
            for d, steps in enumerate(stage.steps):
                for st in steps:
                    lines.append(f"  device {d}: {_describe(st)}")
            for t in stage.transfers:
                part = f" {_region_text(t.region)}" if t.region else ""
                lines.append(f"  {t.src} -> {t.dst}: {t.tensor}{part} as {t.as_name} "
                             f"{t.shape} ({t.nbytes} B)")
        lines.append(f"output: device {self.output[0]} {self.output[1]} {self.output_shape}")
        return "\n".join(lines)


def _region_text(r: Region) -> str:
    return f"{'rows' if r.axis == 0 else 'channels'} {r.start}:{r.stop}"


def _describe(st: Instruction) -> str:
    if isinstance(st, Compute):
        return (f"{st.dst} = {st.op.kind}[{st.op.name}]({st.src}) {st.in_shape}->{st.out_shape}"
                f" pads={st.op.pads}")
    if isinstance(st, Slice):
        return f"{st.dst} = {st.src} {_region_text(st.region)}"
    if isinstance(st, Concat):
        return f"{st.dst} = concat({', '.join(st.srcs)}; axis {st.axis})"
    if isinstance(st, Assemble):
        return f"{st.dst} = assemble({', '.join(st.srcs)})"
    return f"{st.dst} = sum({', '.join(st.srcs)})"


class PlanBuilder:
    """Records instructions and transfers into stages, tracking every tensor's shape.

    A local instruction issued after a transfer of the current stage opens a new
    stage, so received tensors are always used after the exchange.
    """

    def __init__(self, strategy: str, model: str, n_devices: int, input_shape: Shape,
                 options: dict[str, Any] | None = None) -> None:
        self.strategy, self.model, self.n = strategy, model, n_devices
        self.input_shape = tuple(input_shape)
        self.options = dict(options or {})
        self._shapes: list[dict[str, Shape]] = [{} for _ in range(n_devices)]
        self._shapes[0][INPUT] = self.input_shape
        self._stages: list[tuple[list[list[Instruction]], list[Transfer]]] = []
        self._arriving: set[tuple[int, str]] = set()
        self._counter = 0
        self._new_stage()

    def _new_stage(self) -> None:
        self._stages.append(([[] for _ in range(self.n)], []))
        self._arriving = set()

    def fresh(self, prefix: str) -> str:
        """A new tensor name."""
        self._counter += 1
        return f"{prefix}#{self._counter}"

    def shape(self, device: int, name: str) -> Shape:
        """The shape of tensor ``name`` on ``device``."""
        try:
            return self._shapes[device][name]
        except KeyError:
            raise AssertionError(f"device {device} holds no tensor {name!r}") from None

    def _local(self, device: int, step: Instruction) -> None:
        steps, transfers = self._stages[-1]
        if transfers:
            self._new_stage()
            steps = self._stages[-1][0]
        for s in instruction_inputs(step):
            self.shape(device, s)
        steps[device].append(step)
        self._shapes[device][step.dst] = step.out_shape

    def compute(self, device: int, op: Op, src: str, dst: str | None = None) -> str:
        """``device`` runs ``op`` on ``src``; returns the output's name."""
        dst = dst or self.fresh(op.name)
        in_shape = self.shape(device, src)
        step = Compute(op, src, in_shape, dst=dst, out_shape=op_output_shape(op, in_shape))
        self._local(device, step)
        return dst

    def slice(self, device: int, src: str, region: Region, dst: str | None = None) -> str:
        """``device`` takes ``region`` of ``src``; returns the new name."""
        dst = dst or self.fresh(src.split("#")[0])
        shape = region.shape_of(self.shape(device, src))
        self._local(device, Slice(src, region, dst=dst, out_shape=shape))
        return dst

    def concat(self, device: int, srcs: Sequence[str], axis: int, dst: str | None = None) -> str:
        """``device`` joins ``srcs`` along ``axis``; returns the new name."""
        if len(srcs) == 1:
            return srcs[0]
        shapes = [self.shape(device, s) for s in srcs]
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        dst = dst or self.fresh(srcs[0].split("#")[0])
        self._local(device, Concat(tuple(srcs), axis, dst=dst, out_shape=tuple(out)))
        return dst

    def assemble(self, device: int, srcs: Sequence[str], indices: Sequence[np.ndarray],
                 dst: str | None = None) -> str:
        """``device`` places ``srcs`` at ``indices`` of the last axis; returns the new name."""
        out = (*self.shape(device, srcs[0])[:-1], sum(len(i) for i in indices))
        dst = dst or self.fresh(srcs[0].split("#")[0])
        index = tuple(np.asarray(i, dtype=np.int64) for i in indices)
        step = Assemble(tuple(srcs), index, dst=dst, out_shape=out)
        self._local(device, step)
        return dst

    def reduce(self, device: int, srcs: Sequence[str], dst: str | None = None) -> str:
        """``device`` sums ``srcs``; returns the new name."""
        if len(srcs) == 1:
            return srcs[0]
        shape = self.shape(device, srcs[0])
        dst = dst or self.fresh(srcs[0].split("#")[0])
        self._local(device, Reduce(tuple(srcs), dst=dst, out_shape=shape))
        return dst

    def send(self, src: int, dst: int, tensor: str, region: Region | None = None,
             as_name: str | None = None) -> str:
        """Device ``src`` sends ``tensor`` (or its region) to ``dst``; returns the name there."""
        if src == dst:
            raise AssertionError("a device does not send to itself")
        if (src, tensor) in self._arriving:
            raise AssertionError(f"{tensor!r} arrives at device {src} in this same exchange")
        shape = self.shape(src, tensor)
        if region is not None:
            shape = region.shape_of(shape)
        as_name = as_name or self.fresh(f"{tensor.split('#')[0]}@{src}")
        self._stages[-1][1].append(Transfer(src, dst, tensor, as_name, region, shape))
        self._shapes[dst][as_name] = shape
        self._arriving.add((dst, as_name))
        return as_name

    def build(self, device: int, name: str) -> PartitionPlan:
        """The finished plan, with the result ``name`` on ``device`` (sent to device 0)."""
        if device != 0:
            name = self.send(device, 0, name)
            device = 0
        stages = tuple(
            Stage(tuple(tuple(s) for s in steps), tuple(transfers))
            for steps, transfers in self._stages
            if transfers or any(steps)
        )
        if not stages:
            raise ToolkitError("empty plan")
        return PartitionPlan(self.strategy, self.model, self.n, self.input_shape,
                             self.shape(device, name), stages, (device, name), self.options)


def check_plan(plan: Any, purpose: str) -> PartitionPlan:
    """``plan`` where it is a :class:`PartitionPlan`, else one line naming ``purpose``
    and where a plan comes from.

    Raises:
        ToolkitError: anything else (a model, a strategy's name, None...).
    """
    if not isinstance(plan, PartitionPlan):
        raise ToolkitError(f"{purpose} needs a PartitionPlan, e.g. from "
                           f"partition(model, n_devices, strategy), got {type(plan).__name__}")
    return plan
