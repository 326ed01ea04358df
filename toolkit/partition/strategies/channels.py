"""Channel partitioning: split each layer's output channels or input channels.

Both strategies keep, between layers, a *layout*: either the whole tensor on
device 0 (the input, or after a gather), or on each device a subset of the
last axis (channels, or features after ``Flatten``) given by index arrays.

* **Output-channel**: a channel-mixing op (``Conv2D``, ``Dense``) needs the
  whole input on every device that computes: the subsets are all-gathered (or
  the whole tensor broadcast from device 0); each device then computes its
  share of the filters (or units), an even split of the output channels.
* **Input-channel**: each device computes, from its own input channels and the
  matching filter slices, a partial sum of *every* output channel; a
  reduce-scatter sums them so that each device ends with an even share of the
  output channels, to which it adds the bias once and then applies the
  activation (after the reduction).

Per-channel ops run on each device's own channels with no exchange in both
strategies: ``DepthwiseConv2D`` (a channel subset with its filters), batch
normalisation, element-wise activations, pooling, ``ZeroPadding2D``, global
pooling and ``Flatten`` (which turns channel subsets into feature subsets).
Both refuse a branching model, naming its first residual ``Add``.
Where the whole tensor sits on device 0, a depthwise convolution is scattered
by channels; cheaper per-channel ops (no MACs) stay on device 0. A
channel-global activation (softmax) gathers its input on device 0. The result
is gathered on device 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import keras
import numpy as np

from toolkit.partition.model.graph import Chain
from toolkit.partition.model.network import chain_only
from toolkit.partition.model.ops import LINEAR, Op, op_macs
from toolkit.partition.model.plan import (
    INPUT,
    PartitionPlan,
    PlanBuilder,
    Region,
    check_devices,
    check_speeds,
    split_shares,
)

__all__ = ["input_channel", "output_channel"]


@dataclass
class _Layout:
    """Where the current tensor is: whole on device 0 (``index`` None) or split."""

    names: dict[int, str]
    index: dict[int, np.ndarray] | None = None

    @property
    def split(self) -> bool:
        return self.index is not None


def _region(start: int, stop: int, size: int) -> Region | None:
    return None if (start, stop) == (0, size) else Region(-1, start, stop)


def _shares(b: PlanBuilder, size: int) -> list[tuple[int, int]]:
    """Channel ranges per device: in proportion to the plan's ``speeds``, else even."""
    return split_shares(size, b.n, b.options.get("speeds"))


def _scatter(b: PlanBuilder, layout: _Layout, size: int) -> _Layout:
    """Send even channel ranges of device 0's whole tensor to every device."""
    src = layout.names[0]
    parts = _shares(b, size)
    names = {d: b.send(0, d, src, _region(s, t, size))
             for d, (s, t) in enumerate(parts) if t > s and d != 0}
    s, t = parts[0]
    if t > s:
        region = _region(s, t, size)
        names[0] = src if region is None else b.slice(0, src, region)
    return _Layout(dict(sorted(names.items())),
                   {d: np.arange(*parts[d]) for d in names})


def _gather(b: PlanBuilder, layout: _Layout, targets: list[int]) -> dict[int, str]:
    """Make the whole tensor present on each of ``targets``; returns its names there."""
    if not layout.split:
        src = layout.names[0]
        received = {t: b.send(0, t, src) for t in targets if t != 0}
        return {t: src if t == 0 else received[t] for t in targets}
    pieces: dict[int, list[tuple[np.ndarray, str]]] = {t: [] for t in targets}
    for t in targets:
        for e, name in layout.names.items():
            if e != t:
                pieces[t].append((layout.index[e], b.send(e, t, name)))
    out = {}
    for t in targets:
        if t in layout.names:
            pieces[t].append((layout.index[t], layout.names[t]))
        idx, names = zip(*pieces[t], strict=True)
        out[t] = names[0] if len(names) == 1 else b.assemble(t, list(names), list(idx))
    return out


def _per_channel(op: Op, idx: np.ndarray, in_shape: tuple[int, ...]) -> tuple[Op, np.ndarray]:
    """``op`` restricted to input channels ``idx``, and the output channels it yields."""
    if op.kind == "depthwise":
        mult = op.kernel.shape[3]
        out = (idx[:, None] * mult + np.arange(mult)[None, :]).ravel()
        bias = op.bias[out] if op.bias is not None else None
        return replace(op, kernel=op.kernel[:, :, idx, :], bias=bias), out
    if op.kind == "affine":
        scale = op.scale[idx] if op.scale is not None else None
        bias = op.bias[idx] if op.bias is not None else None
        return replace(op, scale=scale, bias=bias), idx
    if op.kind == "flatten":
        positions = math.prod(in_shape[:-1])
        out = (np.arange(positions)[:, None] * in_shape[-1] + idx[None, :]).ravel()
        return op, out
    return op, idx  # pooling, padding, global pooling


def _run_per_channel(b: PlanBuilder, chain: Chain, i: int, layout: _Layout) -> _Layout:
    op, in_shape = chain.ops[i], chain.shapes[i]
    if not layout.split:
        if op_macs(op, in_shape) == 0:
            return _Layout({0: b.compute(0, op, layout.names[0])})
        layout = _scatter(b, layout, in_shape[-1])
    names, index = {}, {}
    for d, name in layout.names.items():
        local, index[d] = _per_channel(op, layout.index[d], in_shape)
        names[d] = b.compute(d, local, name)
    return _Layout(names, index)


def _mix_outputs(b: PlanBuilder, chain: Chain, i: int, layout: _Layout) -> _Layout:
    """Output-channel: the whole input on every device that computes a share of the filters."""
    op = chain.ops[i]
    parts = _shares(b, chain.shapes[i + 1][-1])
    workers = [d for d, (s, t) in enumerate(parts) if t > s]
    whole = _gather(b, layout, workers)
    names, index = {}, {}
    for d in workers:
        s, t = parts[d]
        bias = op.bias[s:t] if op.bias is not None else None
        local = replace(op, kernel=op.kernel[..., s:t], bias=bias)
        names[d], index[d] = b.compute(d, local, whole[d]), np.arange(s, t)
    return _Layout(names, index)


def _mix_inputs(b: PlanBuilder, chain: Chain, i: int, layout: _Layout) -> _Layout:
    """Input-channel: partial sums of every output channel, reduce-scattered."""
    op = chain.ops[i]
    if not layout.split:
        layout = _scatter(b, layout, chain.shapes[i][-1])
    partial = {}
    for d, name in layout.names.items():
        idx = layout.index[d]
        kernel = op.kernel[:, :, idx, :] if op.kind == "conv2d" else op.kernel[idx, :]
        local = replace(op, kernel=kernel, bias=None, activation=LINEAR)
        partial[d] = b.compute(d, local, name)
    cout = chain.shapes[i + 1][-1]
    parts = _shares(b, cout)
    received = {e: [b.send(c, e, name, _region(s, t, cout))  # reduce-scatter: one sync point
                    for c, name in partial.items() if t > s and c != e]
                for e, (s, t) in enumerate(parts)}
    names, index = {}, {}
    for e, (s, t) in enumerate(parts):
        if t <= s:
            continue
        own = []
        if e in partial:
            region = _region(s, t, cout)
            own = [partial[e] if region is None else b.slice(e, partial[e], region)]
        total = b.reduce(e, own + received[e])
        post = Op("affine", op.name, op.layer_type, activation=op.activation,
                  bias=op.bias[s:t] if op.bias is not None else None)
        if post.bias is not None or not post.activation.is_linear:
            total = b.compute(e, post, total)
        names[e], index[e] = total, np.arange(s, t)
    return _Layout(names, index)


def _partition(model: keras.Model | Chain, n_devices: int, strategy: str,
               input_shape: tuple[int, ...] | None, speeds: Sequence[float] | None,
               mix: Callable[[PlanBuilder, Chain, int, _Layout], _Layout]) -> PartitionPlan:
    """The plan of a channel strategy: ``mix(b, chain, i, layout)`` places channel-mixing
    layer ``i``; both strategies place the other layers alike (``speeds`` recorded)."""
    n = check_devices(n_devices, strategy)
    speeds = check_speeds(speeds, n, strategy)
    chain = chain_only(model, strategy, input_shape)
    b = PlanBuilder(strategy, chain.name, n, chain.input_shape,
                    {"speeds": list(speeds)} if speeds else None)
    layout = _Layout({0: INPUT})
    for i, op in enumerate(chain.ops):
        if op.mixes_channels:
            layout = mix(b, chain, i, layout)
        elif op.kind == "affine" and op.activation.channel_global:
            whole = _gather(b, layout, [0])[0]
            layout = _Layout({0: b.compute(0, op, whole)})
        else:
            layout = _run_per_channel(b, chain, i, layout)
    return b.build(0, _gather(b, layout, [0])[0])


def output_channel(
    model: keras.Model | Chain,
    n_devices: int,
    *,
    input_shape: tuple[int, ...] | None = None,
    speeds: Sequence[float] | None = None,
) -> PartitionPlan:
    """Partition every channel-mixing layer by output channels (filters or units).

    Args:
        model: a chain Keras model or a :class:`~toolkit.partition.model.graph.Chain`.
        n_devices: number of devices; a layer with fewer output channels than
            devices leaves the rest idle for that layer.
        input_shape: one sample's input shape, where the model leaves it open.
        speeds: each device's relative speed: channel shares in proportion
            (default: equal shares).

    Raises:
        ToolkitError: an unsupported layer.
    """
    return _partition(model, n_devices, "output-channel", input_shape, speeds, _mix_outputs)


def input_channel(
    model: keras.Model | Chain,
    n_devices: int,
    *,
    input_shape: tuple[int, ...] | None = None,
    speeds: Sequence[float] | None = None,
) -> PartitionPlan:
    """Partition every channel-mixing layer by input channels, reducing partial sums.

    Takes the arguments of :func:`output_channel`; a layer with fewer input
    channels than devices leaves the rest without a partial sum to compute.

    Raises:
        ToolkitError: an unsupported layer.
    """
    return _partition(model, n_devices, "input-channel", input_shape, speeds, _mix_inputs)
