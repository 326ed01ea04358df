"""What a set of device workers runs: a strategy, a device count, and its options.

A :class:`PlanSpec` names a plan without holding it: the controller and every
device worker build the same plan from it and the same model, since building a
plan is deterministic. :func:`plan_fingerprint` digests a plan's structure
(stages, steps, shapes, tensor names, padding, transfers) so that a worker can
check it built the plan the controller predicted for.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import keras

from toolkit.errors import ToolkitError, choices
from toolkit.models.codecs import check_codec
from toolkit.models.split import SplitModel
from toolkit.partition.model.plan import PartitionPlan
from toolkit.partition.strategies.hybrid import HYBRID_PREFIX, HybridPlan, hybrid_plan
from toolkit.partition.strategies.registry import (
    STRATEGIES,
    check_strategy,
    partition,
    strategy_options,
)
from toolkit.partition.strategies.spatial import check_fuse

__all__ = ["PlanSpec", "plan_fingerprint", "strategy_names"]


def strategy_names(hybrid: bool = True) -> tuple[str, ...]:
    """Every strategy name a :class:`PlanSpec` takes (``hybrid-<s>`` included)."""
    return (*STRATEGIES, *(f"{HYBRID_PREFIX}{s}" for s in STRATEGIES)) if hybrid else STRATEGIES


@dataclass(frozen=True)
class PlanSpec:
    """A plan by name.

    Attributes:
        strategy: a strategy of :data:`~toolkit.partition.STRATEGIES`, or
            ``hybrid-<strategy>`` for a hybrid plan (head over the devices,
            tail in the cloud).
        devices: number of (edge) devices.
        fuse: the spatial strategy's fusion (ignored by the others).
        split: the hybrid plan's cut point (required for, and only for, hybrid).
        codec: the hybrid plan's activation codec.
        speeds: each device's relative speed, shares in proportion (None: equal
            shares; see :meth:`~toolkit.partition.CostModel.speeds`).

    Raises:
        ToolkitError: an unknown strategy or codec, a bad ``fuse`` or device
            count, or a split missing (hybrid) or given (other strategies).
    """

    strategy: str
    devices: int
    fuse: int | str = "all"
    split: int | None = None
    codec: str = "fp32"
    speeds: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.strategy not in strategy_names():
            raise ToolkitError(f"unknown strategy {self.strategy!r}; valid: "
                               f"{choices(strategy_names())}")
        check_strategy(self.head_strategy)
        check_codec(self.codec)
        object.__setattr__(self, "fuse", check_fuse(self.fuse))
        if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1:
            raise ToolkitError(f"devices must be an integer >= 1, got {self.devices!r}")
        if self.speeds is not None:
            object.__setattr__(self, "speeds", tuple(float(s) for s in self.speeds))
        if self.hybrid and self.split is None:
            raise ToolkitError(f"strategy {self.strategy!r} needs a split (the edge/cloud cut)")
        if not self.hybrid and self.split is not None:
            raise ToolkitError(f"strategy {self.strategy!r} runs everything on the edge devices; "
                               f"a split needs a hybrid strategy (e.g. "
                               f"{HYBRID_PREFIX}{self.strategy})")

    @property
    def hybrid(self) -> bool:
        """Whether the tail runs in the cloud."""
        return self.strategy.startswith(HYBRID_PREFIX)

    @property
    def head_strategy(self) -> str:
        """The strategy partitioning the (head of the) model over the devices."""
        return self.strategy[len(HYBRID_PREFIX):] if self.hybrid else self.strategy

    @property
    def options(self) -> dict[str, Any]:
        """The strategy's keyword options."""
        speeds = None if self.speeds is None else list(self.speeds)
        return strategy_options(self.head_strategy, self.fuse, speeds)

    def build(self, model: keras.Model, split_model: SplitModel | None = None,
              model_name: str | None = None) -> PartitionPlan | HybridPlan:
        """The plan for ``model`` (a :class:`HybridPlan` for hybrid strategies)."""
        if self.hybrid:
            return hybrid_plan(model, self.devices, self.split, self.head_strategy, self.codec,
                               split_model=split_model, model_name=model_name, **self.options)
        return partition(model, self.devices, self.strategy, **self.options)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {**asdict(self), "speeds": None if self.speeds is None else list(self.speeds)}

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> PlanSpec:
        """Read the JSON form."""
        try:
            split, speeds = message.get("split"), message.get("speeds")
            return cls(str(message["strategy"]), int(message["devices"]),
                       message.get("fuse", "all"), None if split is None else int(split),
                       str(message.get("codec", "fp32")),
                       None if speeds is None else tuple(float(v) for v in speeds))
        except (KeyError, TypeError, ValueError) as exc:
            raise ToolkitError(f"malformed plan specification {message!r}: {exc}") from None


def plan_fingerprint(plan: PartitionPlan | HybridPlan) -> str:
    """A digest of a plan's structure (not its weights)."""
    if isinstance(plan, HybridPlan):
        text = f"hybrid {plan.split} {plan.codec} {plan.tail_macs}\n{plan.head.describe()}"
    else:
        text = plan.describe()
    return hashlib.sha256(text.encode()).hexdigest()[:16]
