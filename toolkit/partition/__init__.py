"""Multi-device partitioning strategies for chain CNNs, with per-device costs.

Four strategies split a chain-shaped Keras model over N devices (layer-wise and
spatial also a residual one, read as a :class:`Network`), each into a
:class:`PartitionPlan` that lists, stage by stage, what every device computes
(its ops, with their weight slices) and which tensors it sends and receives:

* :func:`layer_wise`: consecutive blocks of layers (a pipeline);
* :func:`spatial`: horizontal stripes with halo rows and fusion groups;
* :func:`output_channel`: filter (unit) subsets, outputs gathered;
* :func:`input_channel`: input-channel subsets, partial sums reduced.

:func:`hybrid_plan` partitions the head of a vertical edge/cloud split over the
devices (the tail runs in the cloud, the activation travels through a codec);
:func:`choose_hybrid` picks its cut, head strategy and codec for the least
predicted energy above an accuracy floor, and :func:`hybrid_curve` draws the
energy–accuracy trade-off.

:func:`execute_plan` runs a plan in one process (numerically equivalent to the
model); :func:`estimate_cost` counts per-device MACs, memory and traffic and
predicts latency and energy; :func:`evaluate` does both for the command
``dynasplit partition``. :class:`PartitionCluster` runs plans for real on N
local device-worker processes over TCP (per-device latency and energy), and
:class:`PartitionStudy` measures strategies × device counts into a cube,
resumably. See ``docs/partitioning.md``.
"""

from toolkit.partition.cost.energy import (
    ENERGY_SPLIT_KEYS,
    IDLE_ACCOUNTINGS,
    EnergySplit,
    split_energy,
)
from toolkit.partition.cost.hybrid import (
    DEFAULT_CLOUD_MACS_PER_S,
    CloudModel,
    HybridCost,
    estimate_hybrid_cost,
)
from toolkit.partition.cost.per_device import (
    DEFAULT_LINK_MBPS,
    DEFAULT_MACS_PER_S,
    CostModel,
    DeviceCost,
    PlanCost,
    estimate_cost,
)
from toolkit.partition.cost.stream import (
    MAX_STREAM_REQUESTS,
    PIPELINED_STRATEGIES,
    StreamCost,
    check_stream,
    estimate_stream,
    estimate_turns,
    pipelines,
    stream_figures,
)
from toolkit.partition.execution.emulation import emulated_cost_model, emulated_macs_per_s
from toolkit.partition.execution.measurement import DeviceMeasurement, PartitionRun
from toolkit.partition.execution.runtime import INPUT_KINDS, PartitionCluster
from toolkit.partition.execution.spec import PlanSpec, plan_fingerprint, strategy_names
from toolkit.partition.execution.study import (
    PARTITION_VARIABLES,
    PartitionStudy,
    StudySpec,
    StudySummary,
)
from toolkit.partition.hybrid_choice import (
    HYBRID_OBJECTIVES,
    AccuracyFloorError,
    HybridAccuracy,
    HybridChoice,
    choose_hybrid,
    hybrid_candidates,
    hybrid_curve,
)
from toolkit.partition.model.execute import execute_plan, run_steps, transfer_payload
from toolkit.partition.model.graph import SUPPORTED_LAYERS, Chain, chain_from_model, chain_head
from toolkit.partition.model.network import (
    Network,
    Node,
    head_model,
    network_from_model,
    read_model,
)
from toolkit.partition.model.ops import Activation, Op
from toolkit.partition.model.plan import (
    MAX_DEVICES,
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
from toolkit.partition.model.stacks import (
    STACKS,
    load_partition_model,
    mobilenet_stack,
    randomize_weights,
    vgg_stack,
)
from toolkit.partition.report import HYBRID, add_measurements, evaluate, format_table, max_abs_error
from toolkit.partition.strategies.channels import input_channel, output_channel
from toolkit.partition.strategies.hybrid import (
    CODEC_BYTES,
    HYBRID_PREFIX,
    HybridPlan,
    codec_roundtrip,
    default_hybrid_split,
    execute_hybrid,
    hybrid_plan,
    hybrid_splits,
)
from toolkit.partition.strategies.layerwise import layer_wise
from toolkit.partition.strategies.registry import STRATEGIES, partition
from toolkit.partition.strategies.spatial import check_fuse, spatial
from toolkit.partition.sweep import (
    concordance,
    crossovers,
    device_table,
    hybrid_table,
    predict_table,
    ranking_agreement,
)
from toolkit.runtime.link import Link

__all__ = [
    "CODEC_BYTES",
    "DEFAULT_CLOUD_MACS_PER_S",
    "DEFAULT_LINK_MBPS",
    "DEFAULT_MACS_PER_S",
    "ENERGY_SPLIT_KEYS",
    "HYBRID",
    "HYBRID_OBJECTIVES",
    "HYBRID_PREFIX",
    "IDLE_ACCOUNTINGS",
    "INPUT_KINDS",
    "MAX_DEVICES",
    "MAX_STREAM_REQUESTS",
    "PARTITION_VARIABLES",
    "PIPELINED_STRATEGIES",
    "STACKS",
    "STRATEGIES",
    "SUPPORTED_LAYERS",
    "AccuracyFloorError",
    "Activation",
    "Assemble",
    "Chain",
    "CloudModel",
    "Compute",
    "Concat",
    "CostModel",
    "DeviceCost",
    "DeviceMeasurement",
    "EnergySplit",
    "HybridAccuracy",
    "HybridChoice",
    "HybridCost",
    "HybridPlan",
    "Link",
    "Network",
    "Node",
    "Op",
    "PartitionCluster",
    "PartitionPlan",
    "PartitionRun",
    "PartitionStudy",
    "PlanCost",
    "PlanSpec",
    "Reduce",
    "Region",
    "Slice",
    "Stage",
    "StreamCost",
    "StudySpec",
    "StudySummary",
    "Transfer",
    "add_measurements",
    "chain_from_model",
    "chain_head",
    "check_fuse",
    "check_stream",
    "choose_hybrid",
    "codec_roundtrip",
    "concordance",
    "crossovers",
    "default_hybrid_split",
    "device_table",
    "emulated_cost_model",
    "emulated_macs_per_s",
    "estimate_cost",
    "estimate_hybrid_cost",
    "estimate_stream",
    "estimate_turns",
    "evaluate",
    "execute_hybrid",
    "execute_plan",
    "format_table",
    "head_model",
    "hybrid_candidates",
    "hybrid_curve",
    "hybrid_plan",
    "hybrid_splits",
    "hybrid_table",
    "input_channel",
    "layer_wise",
    "load_partition_model",
    "max_abs_error",
    "mobilenet_stack",
    "network_from_model",
    "output_channel",
    "partition",
    "pipelines",
    "plan_fingerprint",
    "predict_table",
    "randomize_weights",
    "ranking_agreement",
    "read_model",
    "run_steps",
    "spatial",
    "split_energy",
    "strategy_names",
    "stream_figures",
    "transfer_payload",
    "vgg_stack",
]
