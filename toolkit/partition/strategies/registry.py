"""The partitioning strategies by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from toolkit.errors import ToolkitError, choices
from toolkit.partition.model.graph import Chain
from toolkit.partition.model.network import Network
from toolkit.partition.model.plan import PartitionPlan
from toolkit.partition.model.stacks import as_partition_model
from toolkit.partition.strategies.channels import input_channel, output_channel
from toolkit.partition.strategies.layerwise import layer_wise
from toolkit.partition.strategies.spatial import spatial

__all__ = ["STRATEGIES", "check_strategy", "partition", "strategy_options"]

_BUILDERS: dict[str, Callable[..., PartitionPlan]] = {
    "layer-wise": layer_wise,
    "spatial": spatial,
    "output-channel": output_channel,
    "input-channel": input_channel,
}
#: strategy names, in the order tables list them
STRATEGIES: tuple[str, ...] = tuple(_BUILDERS)
_OPTIONS = {"layer-wise": {"layer_costs", "speeds"}, "spatial": {"fuse", "speeds"},
            "output-channel": {"speeds"}, "input-channel": {"speeds"}}


def check_strategy(name: str) -> str:
    """Return ``name`` if it is a strategy, else raise a ToolkitError naming the valid ones."""
    if name not in _BUILDERS:
        raise ToolkitError(f"unknown strategy {name!r}; valid: {choices(STRATEGIES)}")
    return name


def strategy_options(strategy: str, fuse: int | str = "all",
                     speeds: Sequence[float] | None = None) -> dict[str, Any]:
    """The options :func:`partition` takes for ``strategy``: ``fuse`` (spatial) and
    ``speeds`` (where given)."""
    options: dict[str, Any] = {"fuse": fuse} if strategy == "spatial" else {}
    if speeds is not None:
        options["speeds"] = speeds
    return options


def partition(
    model: keras.Model | Chain,
    n_devices: int,
    strategy: str,
    *,
    input_shape: tuple[int, ...] | None = None,
    **options: Any,
) -> PartitionPlan:
    """Partition ``model`` over ``n_devices`` devices with the named strategy.

    Args:
        model: a chain Keras model, a :class:`~toolkit.partition.model.graph.Chain`,
            or a name :func:`~toolkit.partition.model.stacks.load_partition_model`
            loads (``vgg-stack``, a zoo name, a ``.keras`` path).
        n_devices: number of devices.
        strategy: one of :data:`STRATEGIES`.
        input_shape: one sample's input shape, where the model leaves it open.
        **options: the strategy's own options: ``fuse`` (spatial),
            ``layer_costs`` (layer-wise), and ``speeds`` (every strategy: each
            device's relative speed, shares in proportion; default equal).

    Raises:
        ToolkitError: unknown strategy or option, or the strategy refuses the model.
    """
    check_strategy(strategy)
    model = as_partition_model(model, "partition", (Chain, Network),
                               "a Keras model, a Chain, a Network")
    allowed = _OPTIONS.get(strategy, set())
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ToolkitError(
            f"strategy {strategy!r} takes no option {choices(unknown)}; "
            f"its options: {choices(sorted(allowed)) or 'none'}"
        )
    return _BUILDERS[strategy](model, n_devices, input_shape=input_shape, **options)
