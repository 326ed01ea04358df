"""Running a partition plan: one device's stage, or the whole plan in one process.

:func:`run_steps` is what a device does with its local instructions;
:func:`transfer_payload` is what it puts on the wire for one of its outgoing
transfers. :func:`execute_plan` runs every device of a plan in this process,
stage by stage, moving payloads between the devices' tensor stores: the
equivalence tests use it, and worker processes run the same two functions per
device with a real link in between.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np
import tensorflow as tf

from toolkit.errors import ToolkitError
from toolkit.partition.model.ops import apply_op
from toolkit.partition.model.plan import (
    INPUT,
    Assemble,
    Compute,
    Concat,
    Instruction,
    PartitionPlan,
    Reduce,
    Region,
    Slice,
    Transfer,
    check_plan,
)

__all__ = ["execute_plan", "run_steps", "transfer_payload"]

Store = MutableMapping[str, tf.Tensor]


def _batched_axis(axis: int) -> int:
    return axis + 1 if axis >= 0 else axis


def _take(x: tf.Tensor, region: Region) -> tf.Tensor:
    index = [slice(None)] * len(x.shape)
    index[_batched_axis(region.axis)] = slice(region.start, region.stop)
    return x[tuple(index)]


def run_steps(steps: tuple[Instruction, ...], store: Store) -> None:
    """Run one device's local instructions of a stage on its tensor ``store``."""
    for st in steps:
        if isinstance(st, Compute):
            store[st.dst] = apply_op(st.op, store[st.src])
        elif isinstance(st, Slice):
            store[st.dst] = _take(store[st.src], st.region)
        elif isinstance(st, Concat):
            store[st.dst] = tf.concat([store[s] for s in st.srcs], _batched_axis(st.axis))
        elif isinstance(st, Reduce):
            store[st.dst] = tf.add_n([store[s] for s in st.srcs])
        elif isinstance(st, Assemble):
            pieces = tf.concat([store[s] for s in st.srcs], -1)
            order = np.argsort(np.concatenate(st.indices), kind="stable")
            store[st.dst] = tf.gather(pieces, order, axis=-1)
        else:  # pragma: no cover - the plan types are closed
            raise TypeError(f"unknown instruction {st!r}")


def transfer_payload(transfer: Transfer, store: Store) -> tf.Tensor:
    """The tensor ``transfer`` sends, read from the sending device's ``store``."""
    x = store[transfer.tensor]
    return _take(x, transfer.region) if transfer.region is not None else x


def execute_plan(plan: PartitionPlan, x: np.ndarray) -> np.ndarray:
    """Run every device of ``plan`` in this process and return the result.

    Args:
        plan: the partition plan.
        x: a batch ``(B, *plan.input_shape)`` or one sample ``plan.input_shape``.

    Returns:
        The output batch (or sample, matching ``x``) as float32 NumPy.

    Raises:
        ToolkitError: ``plan`` is no plan, or ``x`` is not numbers of the plan's
            input shape.
    """
    check_plan(plan, "execute_plan")
    try:
        x = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise ToolkitError(f"execute_plan needs its input as numbers of shape "
                           f"{tuple(plan.input_shape)} (or a batch of them), got "
                           f"{type(x).__name__}") from None
    single = x.shape == tuple(plan.input_shape)
    if single:
        x = x[None]
    if x.shape[1:] != tuple(plan.input_shape):
        raise ToolkitError(
            f"input of shape {x.shape[1:]} does not match the plan's {plan.input_shape}"
        )
    stores: list[dict[str, tf.Tensor]] = [{} for _ in range(plan.n_devices)]
    stores[0][INPUT] = tf.convert_to_tensor(x)
    for stage in plan.stages:
        for device, steps in enumerate(stage.steps):
            run_steps(steps, stores[device])
        payloads = [(t, transfer_payload(t, stores[t.src])) for t in stage.transfers]
        for t, value in payloads:
            stores[t.dst][t.as_name] = value
    device, name = plan.output
    out = np.asarray(stores[device][name])
    return out[0] if single else out
