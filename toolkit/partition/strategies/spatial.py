"""Spatial (feature-map) partitioning: each device computes a horizontal stripe.

The spatial part of the model is its longest prefix of ops that keep an image
tensor and work row-locally: ``Conv2D``, ``DepthwiseConv2D`` (and the two
halves of ``SeparableConv2D``), pooling, ``ZeroPadding2D``, batch
normalisation, activations (softmax over channels included) and ``Dense`` on an
image tensor (a 1x1 convolution). That prefix is cut into *fusion groups* of
up to ``fuse`` windowed ops (an op whose output row needs other input rows:
kernel or stride above 1, or vertical padding); element-wise ops join the group
of the op before them.

Per group, the group's output rows are split evenly over the devices. Walking
the group backwards through each op's receptive field (kernel, dilation,
stride, padding) gives the input rows each device needs: its own rows plus halo
rows, which it receives from the devices holding them at the start of the
group. Inside a group nothing is exchanged; devices recompute the rows their
stripes overlap by, and each stripe only pads where it touches the image's top
or bottom. After the last group the stripes are gathered on device 0, which
runs the rest of the model (``Flatten``, global pooling, ``Dense`` on vectors)
on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from toolkit.errors import ToolkitError, choices
from toolkit.partition.model.graph import Chain
from toolkit.partition.model.network import Network, read_model
from toolkit.partition.model.ops import Op
from toolkit.partition.model.plan import (
    INPUT,
    PartitionPlan,
    check_devices,
    check_speeds,
    split_shares,
)
from toolkit.partition.strategies.spatial_network import (
    SPATIAL_KINDS,
    STRATEGY,
    band_builder,
    band_op,
    gather_bands,
    network_spatial,
    not_spatial,
)

__all__ = ["SPATIAL_KINDS", "check_fuse", "fusion_groups", "spatial", "spatial_prefix"]

_SPATIAL_LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D",
                   "AveragePooling2D", "ZeroPadding2D", "BatchNormalization", "Activation",
                   "ReLU", "LeakyReLU", "ELU", "Softmax", "Rescaling", "Dense (on images)")


def spatial_prefix(chain: Chain) -> int:
    """Number of leading ops of ``chain`` that the spatial strategy splits."""
    for i, op in enumerate(chain.ops):
        if op.kind not in SPATIAL_KINDS or len(chain.shapes[i]) != 3:
            return i
    return len(chain.ops)


def check_fuse(fuse: int | str) -> int | str:
    """Validate a ``fuse`` option; returns ``"all"``, ``"none"`` or an int >= 1.

    Raises:
        ToolkitError: anything else, naming the valid choices.
    """
    limit = _parse_fuse(fuse)
    return "all" if limit is None else ("none" if fuse == "none" else limit)


def _parse_fuse(fuse: int | str) -> int | None:
    if fuse == "all":
        return None
    if fuse == "none":
        return 1
    if isinstance(fuse, str) and fuse.isdigit():
        fuse = int(fuse)
    if isinstance(fuse, int) and not isinstance(fuse, bool) and fuse >= 1:
        return fuse
    raise ToolkitError(
        f"fuse must be 'all', 'none' or a number of layers >= 1, got {fuse!r}"
    )


def fusion_groups(ops: tuple[Op, ...] | list[Op], fuse: int | str = "all") -> list[tuple[int, int]]:
    """``[start, stop)`` op ranges of the fusion groups of a spatial prefix.

    Args:
        ops: the spatial prefix's ops.
        fuse: ``"all"`` (one group), ``"none"`` (one windowed op per group) or
            the number of windowed ops a group may hold.
    """
    limit = _parse_fuse(fuse)
    groups: list[tuple[int, int]] = []
    start, windowed = 0, 0
    for i, op in enumerate(ops):
        if op.windowed:
            if limit is not None and windowed == limit:
                groups.append((start, i))
                start, windowed = i, 0
            windowed += 1
    if ops:
        groups.append((start, len(ops)))
    return groups


def _stripe_ops(chain: Chain, start: int, stop: int, rows: tuple[int, int],
                device: int) -> tuple[tuple[int, int], list[Op]]:
    """Input rows a stripe of group ``[start, stop)`` needs, and its per-op local ops."""
    local: list[Op] = []
    for i in range(stop - 1, start - 1, -1):
        rows, op = band_op(chain.ops[i], rows, chain.shapes[i][0], device, "stripe")
        local.append(op)
    return rows, local[::-1]


def spatial(
    model: keras.Model | Chain | Network,
    n_devices: int,
    *,
    fuse: int | str = "all",
    input_shape: tuple[int, ...] | None = None,
    speeds: Sequence[float] | None = None,
) -> PartitionPlan:
    """Partition a model into horizontal stripes, one per device.

    Args:
        model: a Keras model, a :class:`~toolkit.partition.model.graph.Chain` or a
            :class:`~toolkit.partition.model.network.Network` (residual blocks:
            see :mod:`toolkit.partition.strategies.spatial_network`).
        n_devices: number of devices.
        fuse: ``"all"`` exchanges halos once, at the input; ``"none"`` before
            every windowed op; an integer ``k`` every ``k`` windowed ops.
        input_shape: one sample's input shape, where the model leaves it open.
        speeds: each device's relative speed: stripes in proportion (default:
            equal stripes).

    Raises:
        ToolkitError: an unsupported layer, a model that does not start with
            spatial layers, or a bad ``fuse``.
    """
    n = check_devices(n_devices, STRATEGY)
    speeds = check_speeds(speeds, n, STRATEGY)
    chain = read_model(model, STRATEGY, input_shape)
    if isinstance(chain, Network):
        return network_spatial(chain, n, fuse, _parse_fuse(fuse), speeds)
    end = spatial_prefix(chain)
    if end == 0:
        op = chain.ops[0]
        raise not_spatial(op.name, op.layer_type, chain.shapes[0],
                          f"spatial layers ({choices(_SPATIAL_LAYERS)}) on an image "
                          "(rows, columns, channels)")
    groups = fusion_groups(chain.ops[:end], fuse)
    b = band_builder(chain.name, n, chain.input_shape, fuse,
                     [[chain.ops[i].name, chain.ops[j - 1].name] for i, j in groups], speeds)
    # rows of the current tensor each device holds: device -> (start, stop, name)
    held = {0: (0, chain.input_shape[0], INPUT)}
    for start, stop in groups:
        owned = split_shares(chain.shapes[stop][0], n, speeds)
        work = {d: _stripe_ops(chain, start, stop, rows, d)
                for d, rows in enumerate(owned) if rows[1] > rows[0]}
        inputs = gather_bands(b, held, {d: rows for d, (rows, _) in work.items()})
        held = {}
        for d, (_, ops) in work.items():
            current = inputs[d]
            for op in ops:
                current = b.compute(d, op, current)
            held[d] = (*owned[d], current)
    # gather the stripes on device 0, which runs the rest
    parts = [(s, b.send(e, 0, name) if e != 0 else name) for e, (s, _, name) in held.items()]
    current = b.concat(0, [nm for _, nm in sorted(parts)], axis=0)
    for op in chain.ops[end:]:
        current = b.compute(0, op, current)
    return b.build(0, current)
