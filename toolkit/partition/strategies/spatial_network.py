"""Spatial partitioning of a branching network (residual blocks): row bands with halos.

The generalisation of the chain's spatial plan (:mod:`.spatial`) to a
:class:`~toolkit.partition.model.network.Network`. The spatial part is the
network's longest prefix of spatial nodes (the chain's spatial op kinds, and
``Add``) that ends at a cut point. It is cut into fusion groups *at cut
points*, so that each group reads one tensor and yields one: a residual block
is never split between groups (``fuse=K`` closes a group before the part that
would take it past ``K`` windowed ops; a part with more stays whole).

Per group, each device owns a band of the group's output rows (even, or in
proportion to ``speeds``). Walking the group's nodes backwards gives, for every
tensor, the rows the device needs of it: an op needs the rows its receptive
field (kernel, dilation, stride, padding) reads for the rows needed of its
output, an ``Add`` needs the same rows of each input, and a tensor read by
several nodes (the input of a block, read by its branch and its shortcut)
needs the union (a band: the smallest interval holding them all). The rows the
device needs of the group's input -- its band widened by the group's receptive
field, the union over the branches -- arrive in one halo exchange; the device
then computes every node on the rows needed of its output, taking from a wider
input only the rows that node reads, and pads only where its band touches the
image's top or bottom (a band that would read nothing but padding, such as the
row a ``ZeroPadding2D`` adds at the bottom, joins its neighbour's). After the
last group the bands are gathered on device 0, which runs the rest of the
network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from toolkit.errors import ToolkitError, choices
from toolkit.partition.model.network import Network
from toolkit.partition.model.ops import Op
from toolkit.partition.model.plan import (
    INPUT,
    PartitionPlan,
    PlanBuilder,
    Region,
    split_shares,
)
from toolkit.partition.strategies.layerwise import run_nodes

__all__ = ["SPATIAL_KINDS", "band_builder", "band_op", "gather_bands", "network_groups",
           "network_spatial", "network_spatial_prefix", "not_spatial"]

STRATEGY = "spatial"
#: op kinds the spatial part may hold (``dense`` only on image tensors)
SPATIAL_KINDS: tuple[str, ...] = (
    "conv2d", "depthwise", "maxpool", "avgpool", "zeropad", "affine", "dense",
)

Rows = tuple[int, int]


def not_spatial(name: str, layer_type: str, shape: tuple[int, ...], start: str) -> ToolkitError:
    """Why spatial partitioning refuses a model whose first layer ``name`` is not spatial."""
    return ToolkitError(f"strategy {STRATEGY!r} cannot split layer {name!r} of type "
                        f"{layer_type} on input shape {shape}: the model must start with {start}")


def band_builder(name: str, n: int, input_shape: tuple[int, ...], fuse: int | str,
                 groups: list[list[str]], speeds: Sequence[float] | None) -> PlanBuilder:
    """An empty spatial plan recording ``fuse``, its ``groups`` and ``speeds``."""
    options: dict = {"fuse": fuse, "groups": groups}
    if speeds is not None:
        options["speeds"] = list(speeds)
    return PlanBuilder(STRATEGY, name, n, input_shape, options)


def band_op(op: Op, rows: Rows, in_rows: int, device: int, part: str) -> tuple[Rows, Op]:
    """The input rows ``op`` reads for output ``rows`` of ``device``'s ``part`` (its
    stripe or band), and the op with that part's own vertical padding.

    Raises:
        ToolkitError: the part of ``op``'s layer lies entirely in padding.
    """
    lo, hi, top, bottom = op.rows_needed(*rows, in_rows)
    if hi <= lo:
        raise ToolkitError(
            f"strategy {STRATEGY!r}: device {device}'s {part} of layer {op.name!r} "
            "lies entirely in padding; use fewer devices")
    if op.windowed:
        op = replace(op, pads=(top, bottom, op.pads[2], op.pads[3]))
    return (lo, hi), op


def network_spatial_prefix(net: Network) -> int:
    """Index into ``net.cuts`` of the cut point that ends the spatial part (0: none)."""
    end = len(net.nodes)
    for i, node in enumerate(net.nodes):
        in_shape = net.shapes[node.inputs[0]]
        if len(in_shape) != 3 or not (node.is_add or node.op.kind in SPATIAL_KINDS):
            end = i
            break
    return max(k for k, (p, _) in enumerate(net.cuts) if p <= end)


def network_groups(net: Network, last_cut: int, limit: int | None) -> list[tuple[int, int]]:
    """Fusion groups of the spatial part as ``(first cut, last cut)`` indices into
    ``net.cuts``; ``limit`` windowed ops per group (None: one group)."""
    groups: list[tuple[int, int]] = []
    start, windowed = 0, 0
    for k in range(last_cut):
        (a, _), (z, _) = net.cuts[k], net.cuts[k + 1]
        part = sum(1 for n in net.nodes[a:z] if not n.is_add and n.op.windowed)
        if limit is not None and part and windowed and windowed + part > limit:
            groups.append((start, k))
            start, windowed = k, 0
        windowed += part
    groups.append((start, last_cut))
    return groups


def _hull(a: Rows | None, b: Rows) -> Rows:
    return b if a is None else (min(a[0], b[0]), max(a[1], b[1]))


def _band_work(net: Network, first: int, stop: int, rows: Rows, out: int,
               device: int) -> tuple[dict[int, Rows], dict[int, tuple[Rows, Op] | None]]:
    """Rows a device needs of every tensor of group nodes ``[first, stop)`` for ``rows``
    of tensor ``out``, and per op node the input rows it reads and its local op."""
    need: dict[int, Rows] = {out: rows}
    local: dict[int, tuple[Rows, Op] | None] = {}
    for i in range(stop - 1, first - 1, -1):
        node = net.nodes[i]
        if i + 1 not in need:
            continue
        a, b = need[i + 1]
        if node.is_add:
            for t in node.inputs:
                need[t] = _hull(need.get(t), (a, b))
            local[i] = None
            continue
        src = node.inputs[0]
        local[i] = band_op(node.op, (a, b), net.shapes[src][0], device, "band")
        need[src] = _hull(need.get(src), local[i][0])
    return need, local


def _bands(net: Network, first: int, stop: int, out: int,
           owned: list[Rows]) -> dict[int, tuple[dict[int, Rows], dict]]:
    """Each device's work on group nodes ``[first, stop)``; a band that would read
    nothing but padding (e.g. the rows a ``ZeroPadding2D`` adds) joins its
    neighbour's (``owned`` is updated)."""
    while True:
        active = [d for d, (a, z) in enumerate(owned) if z > a]
        try:
            return {d: _band_work(net, first, stop, owned[d], out, d) for d in active}
        except ToolkitError:
            if len(active) == 1:
                raise
            for k, d in enumerate(active):
                try:
                    _band_work(net, first, stop, owned[d], out, d)
                except ToolkitError:
                    e = active[k - 1] if k > 0 else active[1]
                    owned[e] = (min(owned[e][0], owned[d][0]), max(owned[e][1], owned[d][1]))
                    owned[d] = (owned[d][0], owned[d][0])
                    break


def gather_bands(b: PlanBuilder, held: dict[int, tuple[int, int, str]],
                 wanted: dict[int, Rows]) -> dict[int, str]:
    """Give each device the rows it wants of a tensor held in bands, in one exchange.

    Args:
        b: the plan being built.
        held: device -> ``(first row, stop row, name)`` of its band of the tensor.
        wanted: device -> ``(first row, stop row)`` it needs (its band and halo).

    Returns:
        device -> the name of the wanted rows on it: the rows other devices hold
        arrive first (the halo exchange), then each device joins them to its own.
    """
    pieces: dict[int, list[tuple[int, str]]] = {d: [] for d in wanted}
    for d, (lo, hi) in wanted.items():
        for e, (s, t, name) in held.items():
            a, z = max(lo, s), min(hi, t)
            if e != d and z > a:
                pieces[d].append((a, b.send(e, d, name, Region(0, a - s, z - s))))
    for d, (lo, hi) in wanted.items():
        if d in held:
            s, t, name = held[d]
            a, z = max(lo, s), min(hi, t)
            if z > a:
                pieces[d].append((a, _rows_of(b, d, name, (s, t), (a, z))))
    return {d: b.concat(d, [nm for _, nm in sorted(p)], axis=0) for d, p in pieces.items()}


def _rows_of(b: PlanBuilder, device: int, name: str, held: Rows, wanted: Rows) -> str:
    """``name`` (rows ``held`` of a tensor) cut down to rows ``wanted``."""
    if held == wanted:
        return name
    return b.slice(device, name, Region(0, wanted[0] - held[0], wanted[1] - held[0]))


def network_spatial(net: Network, n: int, fuse: int | str, limit: int | None,
                    speeds: tuple[float, ...] | None) -> PartitionPlan:
    """Row bands of a network over ``n`` devices (see the module's description).

    Args:
        net: the network.
        n: number of devices.
        fuse: the ``fuse`` option as given (recorded in the plan's options).
        limit: windowed ops per fusion group (None: one group).
        speeds: each device's relative speed (bands in proportion), or None.

    Raises:
        ToolkitError: the network does not start with spatial layers, or a
            band lies entirely in padding.
    """
    last = network_spatial_prefix(net)
    if last == 0:
        node = net.nodes[0]
        raise not_spatial(node.name, node.layer_type, net.shapes[node.inputs[0]],
                          f"spatial layers ({choices(SPATIAL_KINDS)}, Add) on an image")
    groups = network_groups(net, last, limit)
    b = band_builder(net.name, n, net.input_shape, fuse, [
        [net.nodes[net.cuts[g][0]].name, net.nodes[net.cuts[h][0] - 1].name] for g, h in groups],
        speeds)
    held: dict[int, tuple[int, int, str]] = {0: (0, net.input_shape[0], INPUT)}
    for g, h in groups:
        (first, source), (stop, out) = net.cuts[g], net.cuts[h]
        owned = split_shares(net.shapes[out][0], n, speeds)
        work = _bands(net, first, stop, out, owned)
        current = gather_bands(b, held, {d: need[source] for d, (need, _) in work.items()})
        held = {}
        for d, (need, local) in work.items():
            names = {source: current[d]}
            for i in range(first, stop):
                if i not in local:
                    continue
                node = net.nodes[i]
                if local[i] is None:
                    srcs = [_rows_of(b, d, names[t], need[t], need[i + 1]) for t in node.inputs]
                    names[i + 1] = b.reduce(d, srcs, b.fresh(node.name))
                else:
                    rows, op = local[i]
                    src = node.inputs[0]
                    names[i + 1] = b.compute(d, op, _rows_of(b, d, names[src], need[src], rows))
            held[d] = (*owned[d], names[out])
    parts = [(s, b.send(e, 0, name) if e != 0 else name) for e, (s, _, name) in held.items()]
    start, tensor = net.cuts[last]
    names = {tensor: b.concat(0, [nm for _, nm in sorted(parts)], axis=0)}
    run_nodes(b, 0, net, range(start, len(net.nodes)), names)
    return b.build(0, names[net.output])

