"""Multi-device partitioning strategies for chain CNNs, with per-device costs.

Four strategies split a chain-shaped Keras model over N devices, each into a
:class:`PartitionPlan` that lists, stage by stage, what every device computes
(its ops, with their weight slices) and which tensors it sends and receives:

* :func:`layer_wise`: consecutive blocks of layers (a pipeline);
* :func:`spatial`: horizontal stripes with halo rows and fusion groups;
* :func:`output_channel`: filter (unit) subsets, outputs gathered;
* :func:`input_channel`: input-channel subsets, partial sums reduced.

:func:`execute_plan` runs a plan in one process (numerically equivalent to the
model); :func:`estimate_cost` counts per-device MACs, memory and traffic and
predicts latency and energy; :func:`evaluate` does both for the command
``dynasplit partition``. See ``docs/partitioning.md``.
"""

from toolkit.partition.channels import input_channel, output_channel
from toolkit.partition.cost import (
    DEFAULT_LINK_MBPS,
    DEFAULT_MACS_PER_S,
    CostModel,
    DeviceCost,
    PlanCost,
    estimate_cost,
)
from toolkit.partition.execute import execute_plan, run_steps, transfer_payload
from toolkit.partition.graph import SUPPORTED_LAYERS, Chain, chain_from_model
from toolkit.partition.layerwise import layer_wise
from toolkit.partition.ops import Activation, Op
from toolkit.partition.plan import (
    Assemble,
    Compute,
    Concat,
    PartitionPlan,
    Reduce,
    Region,
    Slice,
    Stage,
    Transfer,
)
from toolkit.partition.report import evaluate, format_table, max_abs_error
from toolkit.partition.spatial import check_fuse, spatial
from toolkit.partition.stacks import (
    STACKS,
    load_partition_model,
    mobilenet_stack,
    randomize_weights,
    vgg_stack,
)
from toolkit.partition.strategies import STRATEGIES, partition

__all__ = [
    "DEFAULT_LINK_MBPS",
    "DEFAULT_MACS_PER_S",
    "STACKS",
    "STRATEGIES",
    "SUPPORTED_LAYERS",
    "Activation",
    "Assemble",
    "Chain",
    "Compute",
    "Concat",
    "CostModel",
    "DeviceCost",
    "Op",
    "PartitionPlan",
    "PlanCost",
    "Reduce",
    "Region",
    "Slice",
    "Stage",
    "Transfer",
    "chain_from_model",
    "check_fuse",
    "estimate_cost",
    "evaluate",
    "execute_plan",
    "format_table",
    "input_channel",
    "layer_wise",
    "load_partition_model",
    "max_abs_error",
    "mobilenet_stack",
    "output_channel",
    "partition",
    "randomize_weights",
    "run_steps",
    "spatial",
    "transfer_payload",
    "vgg_stack",
]
