"""How long the cloud runs a model's tail: the timing model behind the emulated cloud.

The local emulated testbed runs every tail for real on the host (so outputs and
accuracy are real), but the host is neither DynaSplit's server nor quiet: a
2-core machine that also plays the edge runs a tail slower and far noisier
than a cloud node. Where the cloud profile has a ``[tail_timing]`` table, the
testbed reports the *modelled* time of the tail on DynaSplit's server instead
(``latency_source`` says so), fitted to DynaSplit's measured ``avg latency
cloud (ms)`` of VGG16 tails (SPLINTER simulation pool; see
:func:`toolkit.devices.testbeds.splinter_fit.fit_splinter_cloud` and
``docs/calibration.md``).

A tail is described by three counts (:class:`TailCost`): multiply-accumulates,
weights it holds, elements of the tensor it receives. Per cloud accelerator a
``[tail_timing.<accel>]`` table gives milliseconds per unit of each count
(``gmac`` = 10⁹ MACs, ``mweight`` = 10⁶ weights, ``min`` = 10⁶ elements
received), and the model adds a per-request cost::

    time_ms = request_ms + Σ_counts x × ms_per_unit

DynaSplit's fit has a per-request intercept of about 69 ms, the same with and
without the GPU: the cost of their serving software per request, not of the
server's hardware. It is kept in the table (``dynasplit_request_ms``) but the
emulated cloud charges ``request_ms``, the toolkit's own cloud worker's
per-request cost, instead (see ``docs/calibration.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ConfigError, choices
from toolkit.tomlfile import TypedTable

__all__ = ["TAIL_COUNTS", "CloudTimingModel", "TailCost", "tail_cost"]

#: the counts a ``[tail_timing.<accel>]`` table may use
TAIL_COUNTS: tuple[str, ...] = ("gmac", "mweight", "min")


@dataclass(frozen=True)
class TailCost:
    """What a tail computes, in the units of the tail timing tables.

    Attributes:
        macs: multiply-accumulates of one sample.
        weights: weights (parameters) the tail holds.
        in_elements: elements of the tensor it receives from the edge.
    """

    macs: int
    weights: int
    in_elements: int

    def counts(self) -> dict[str, float]:
        """The counts of :data:`TAIL_COUNTS` for this tail."""
        return {"gmac": self.macs / 1e9, "mweight": self.weights / 1e6,
                "min": self.in_elements / 1e6}


def tail_cost(split_model: Any, split: int) -> TailCost | None:
    """The :class:`TailCost` of a split's tail (None at the last split: no tail)."""
    tail = split_model.tail(split)
    if tail is None:
        return None
    cut = split_model.cut_points[split]
    return TailCost(macs=int(cut.tail_macs), weights=int(tail.count_params()),
                    in_elements=math.prod(cut.shape))


@dataclass(frozen=True)
class CloudTimingModel:
    """A cloud node's tail timing per accelerator, from its profile's ``[tail_timing]``.

    Attributes:
        tables: cloud accelerator (``none`` = the server's CPU, ``gpu``) -> ms per unit
            of each count.
        request_ms: the per-request cost the emulated cloud charges.
        dynasplit_request_ms: per accelerator, the fit's per-request intercept on
            DynaSplit's data (their serving software; for reference and reproduction).
        source: where the figures come from.
        profile: the profile's name (for ``model:<profile>`` labels).
    """

    tables: dict[str, dict[str, float]]
    request_ms: float
    dynasplit_request_ms: dict[str, float]
    source: str
    profile: str

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], profile: str,
                      where: str = "profile") -> CloudTimingModel | None:
        """Parse a profile's ``tail_timing`` table; None where the profile has none."""
        if settings.get("tail_timing") is None:
            return None
        timing = TypedTable(settings["tail_timing"], where, "tail_timing")
        request = timing.number("request_ms", ..., 0.0, strict=False)
        tables, intercepts = {}, {}
        for accel, spec in timing.subtables(("request_ms", "source"), "[tail_timing.none]").items():
            tables[accel] = {key: spec.number(key, ..., 0.0, strict=False)
                             for key in spec.counts(TAIL_COUNTS, extra=("dynasplit_request_ms",))}
            if "dynasplit_request_ms" in spec.data:
                intercepts[accel] = spec.number("dynasplit_request_ms", ..., 0.0, strict=False)
        return cls(tables, request, intercepts, timing.get("source", str, ""), profile)

    def has(self, accel: str) -> bool:
        """Whether this model times ``accel``."""
        return accel in self.tables

    def time_ms(self, cost: TailCost | None, accel: str,
                request_ms: float | None = None) -> float:
        """The cloud's time for a tail (0 where there is no tail).

        Args:
            cost: the tail's counts.
            accel: the cloud accelerator.
            request_ms: the per-request cost (default: :attr:`request_ms`; give
                ``dynasplit_request_ms[accel]`` to reproduce DynaSplit's server).
        """
        if cost is None:
            return 0.0
        if accel not in self.tables:
            raise ConfigError(f"profile {self.profile!r} has no tail timing for cloud "
                              f"accelerator {accel!r}; it has: {choices(self.tables)}")
        counts = cost.counts()
        work = sum(counts[k] * v for k, v in self.tables[accel].items())
        return (self.request_ms if request_ms is None else request_ms) + work
