"""Layer-wise (pipeline) partitioning: consecutive blocks of layers per device.

Device ``k`` runs the ``k``-th block of consecutive ops and sends its last
activation to device ``k + 1``; the last device sends the result to device 0.
Blocks are balanced: first the largest block cost is made as small as possible
(by MACs, or by per-layer times the caller measured), then, among the
partitions with that largest block, the one sending the fewest bytes is taken.
Every supported layer type can be placed on any device.

A branching model (a :class:`~toolkit.partition.model.network.Network`: residual
blocks) is cut only at its cut points, the split engine's places where exactly
one tensor crosses: the blocks are runs of the parts between consecutive cut
points, balanced the same way, and each device sends the one tensor crossing
its last cut.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import keras

from toolkit.errors import ToolkitError, choices
from toolkit.partition.model.graph import Chain
from toolkit.partition.model.network import Network, read_model
from toolkit.partition.model.plan import (
    INPUT,
    PartitionPlan,
    PlanBuilder,
    check_devices,
    check_speeds,
    nbytes,
)

__all__ = ["balance_blocks", "layer_wise", "run_nodes"]

STRATEGY = "layer-wise"


def balance_blocks(
    costs: Sequence[float], cut_bytes: Sequence[int], n_blocks: int,
    speeds: Sequence[float] | None = None,
) -> list[tuple[int, int]]:
    """Cut ``costs`` into ``n_blocks`` non-empty consecutive blocks.

    Args:
        costs: cost of each item (op) in order.
        cut_bytes: ``cut_bytes[i]`` is what a cut before item ``i`` sends
            (``i`` from 1 to ``len(costs) - 1``; index 0 unused).
        n_blocks: number of blocks, at most ``len(costs)``.
        speeds: the speed of the device running each block (default: equal):
            a block's time is its cost divided by its device's speed.

    Returns:
        ``[start, stop)`` ranges of the blocks: the largest block time is
        minimal and, among such partitions, the bytes sent at the cuts too.
    """
    speed = [1.0] * n_blocks if speeds is None else [float(v) for v in speeds]
    n = len(costs)
    prefix = list(itertools.accumulate((float(c) for c in costs), initial=0.0))
    inf = math.inf
    # pass 1: the smallest achievable largest block
    best = [[inf] * (n + 1) for _ in range(n_blocks + 1)]
    best[0][0] = 0.0
    for k in range(1, n_blocks + 1):
        for j in range(k, n + 1):
            best[k][j] = min(
                (max(best[k - 1][i], (prefix[j] - prefix[i]) / speed[k - 1])
                 for i in range(k - 1, j)),
                default=inf,
            )
    bound = best[n_blocks][n] * (1 + 1e-9) + 1e-12
    # pass 2: the fewest bytes at the cuts with every block within the bound
    sent = [[inf] * (n + 1) for _ in range(n_blocks + 1)]
    back = [[-1] * (n + 1) for _ in range(n_blocks + 1)]
    sent[0][0] = 0.0
    for k in range(1, n_blocks + 1):
        for j in range(k, n + 1):
            for i in range(k - 1, j):
                if (prefix[j] - prefix[i]) / speed[k - 1] > bound or sent[k - 1][i] == inf:
                    continue
                value = sent[k - 1][i] + (cut_bytes[i] if i > 0 else 0)
                if value < sent[k][j]:
                    sent[k][j], back[k][j] = value, i
    blocks, j = [], n
    for k in range(n_blocks, 0, -1):
        i = back[k][j]
        blocks.append((i, j))
        j = i
    return blocks[::-1]


def _op_costs(chain: Chain | Network, layer_costs: Mapping[str, float] | None) -> list[float]:
    """Cost of each op (node): its MACs, or its layer's figure charged to the layer's first."""
    items = chain.ops if isinstance(chain, Chain) else chain.nodes
    if layer_costs is None:
        return [float(m) for m in (chain.op_macs() if isinstance(chain, Chain)
                                   else chain.node_macs())]
    names = list(dict.fromkeys(op.name for op in items))
    missing = [n for n in names if n not in layer_costs]
    unknown = [n for n in layer_costs if n not in names]
    if missing or unknown:
        raise ToolkitError(
            f"layer_costs must give one figure per layer; missing: {choices(missing) or '-'}; "
            f"unknown: {choices(unknown) or '-'}; layers: {choices(names)}"
        )
    bad = [n for n, v in layer_costs.items() if not (float(v) >= 0 and math.isfinite(float(v)))]
    if bad:
        raise ToolkitError(f"layer_costs must be finite and >= 0; bad: {choices(bad)}")
    first = {op.name: i for i, op in reversed(list(enumerate(items)))}
    # a layer made of several ops charges its first op
    return [float(layer_costs[op.name]) if first[op.name] == i else 0.0
            for i, op in enumerate(items)]


def layer_wise(
    model: keras.Model | Chain | Network,
    n_devices: int,
    *,
    layer_costs: Mapping[str, float] | None = None,
    input_shape: tuple[int, ...] | None = None,
    speeds: Sequence[float] | None = None,
) -> PartitionPlan:
    """Partition a model into consecutive blocks, one per device.

    Args:
        model: a Keras model, a :class:`~toolkit.partition.model.graph.Chain` or
            a :class:`~toolkit.partition.model.network.Network`.
        n_devices: number of devices (at most the number of ops, or of the
            parts between a network's cut points).
        layer_costs: measured time (or any cost) per Keras layer name, to
            balance by instead of MACs.
        input_shape: one sample's input shape, where the model leaves it open.
        speeds: each device's relative speed: block ``k``'s time is its cost
            over device ``k``'s speed (default: equal devices).

    Raises:
        ToolkitError: an unsupported layer, more devices than ops, or bad costs.
    """
    n = check_devices(n_devices, STRATEGY)
    speeds = check_speeds(speeds, n, STRATEGY)
    chain = read_model(model, STRATEGY, input_shape)
    if isinstance(chain, Network):
        return _network_layer_wise(chain, n, layer_costs, speeds)
    if n > len(chain.ops):
        raise ToolkitError(
            f"strategy {STRATEGY!r} needs at most one device per op: {chain.name!r} has "
            f"{len(chain.ops)} ops, {n} devices asked"
        )
    costs = _op_costs(chain, layer_costs)
    cuts = [nbytes(s) for s in chain.shapes[:-1]]
    blocks = balance_blocks(costs, cuts, n, speeds)
    options = {"balance": "layer_costs" if layer_costs is not None else "macs",
               "blocks": [[chain.ops[i].name, chain.ops[j - 1].name] for i, j in blocks]}
    if speeds is not None:
        options["speeds"] = list(speeds)
    b = PlanBuilder(STRATEGY, chain.name, n, chain.input_shape, options)
    current = INPUT
    for device, (start, stop) in enumerate(blocks):
        if device > 0:
            current = b.send(device - 1, device, current)
        for op in chain.ops[start:stop]:
            current = b.compute(device, op, current)
    return b.build(n - 1, current)


def _network_layer_wise(net: Network, n: int, layer_costs: Mapping[str, float] | None,
                        speeds: tuple[float, ...] | None) -> PartitionPlan:
    """Layer-wise blocks of a network, cut only at its cut points."""
    if n > len(net.cuts) - 1:
        raise ToolkitError(
            f"strategy {STRATEGY!r} needs at most one device per part between cut points: "
            f"{net.name!r} has {len(net.cuts) - 1} parts, {n} devices asked")
    node_costs = _op_costs(net, layer_costs)
    positions = [p for p, _ in net.cuts]
    costs = [sum(node_costs[a:z]) for a, z in itertools.pairwise(positions)]
    sent = [nbytes(net.shapes[t]) for _, t in net.cuts[:-1]]
    blocks = [(positions[i], positions[j]) for i, j in balance_blocks(costs, sent, n, speeds)]
    options = {"balance": "layer_costs" if layer_costs is not None else "macs",
               "blocks": [[net.nodes[i].name, net.nodes[j - 1].name] for i, j in blocks]}
    if speeds is not None:
        options["speeds"] = list(speeds)
    b = PlanBuilder(STRATEGY, net.name, n, net.input_shape, options)
    crossing = dict(net.cuts)
    names = {0: INPUT}
    for device, (start, stop) in enumerate(blocks):
        if device > 0:
            tensor = crossing[start]
            names = {tensor: b.send(device - 1, device, names[tensor])}
        run_nodes(b, device, net, range(start, stop), names)
    return b.build(n - 1, names[net.output])


def run_nodes(b: PlanBuilder, device: int, net: Network, positions: range,
              names: dict[int, str]) -> None:
    """``device`` computes the network's nodes at ``positions`` whole; ``names`` maps
    tensor indices to the device's names and receives each node's output."""
    for i in positions:
        node = net.nodes[i]
        if node.is_add:
            names[i + 1] = b.reduce(device, [names[t] for t in node.inputs], b.fresh(node.name))
        else:
            names[i + 1] = b.compute(device, node.op, names[node.inputs[0]])
