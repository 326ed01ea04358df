"""How long a device runs a model's head: the timing model behind the emulated edge.

The local emulated testbed runs every head for real on the host (so outputs and
accuracy are real) and then *pads* the head's time to what the device would
take, so that the edge time a cube records is the device's, not the host's.
The device's time comes from this module's model, fitted to DynaSplit's real
Raspberry Pi measurements (``avg latency edge (ms)`` of VGG16 heads, SPLINTER
simulation pool; see :func:`fit_splinter` and ``docs/calibration.md``).

A head is described by a few counts (:class:`HeadCost`): multiply-accumulates,
activation elements it produces, weights it holds, elements of the tensor it
sends. A profile's ``[timing.<accelerator>]`` table gives, per count, a pair
``[fixed, scaled]`` of milliseconds per unit; at CPU frequency ``f``

    time_ms = sum over counts x × (fixed + scaled × f_max / f)

so that CPU-bound parts slow down with the clock and accelerator-bound parts
(an Edge TPU's compute, USB transfers) do not. Counts are in the units the
table names: ``one`` (a constant), ``gmac`` (10⁹ MACs), ``mact`` (10⁶ activation
elements), ``mweight`` (10⁶ weights), ``mout`` (10⁶ elements sent),
``mweight_over_sram`` (10⁶ weights beyond the accelerator's on-chip memory,
``sram_mweights``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ConfigError, choices
from toolkit.tomlfile import TypedTable

__all__ = ["COUNTS", "REFERENCE_BLOCK", "EdgeTimingModel", "HeadCost", "TimingTerms", "head_cost"]

#: the counts a timing table may use
COUNTS: tuple[str, ...] = ("one", "gmac", "mact", "mweight", "mout", "mweight_over_sram")


@dataclass(frozen=True)
class HeadCost:
    """What a head computes, in the units of the timing tables.

    Attributes:
        macs: multiply-accumulates of one sample.
        activations: activation elements its layers produce (input excluded).
        weights: weights (parameters) it holds.
        out_elements: elements of the tensor it sends to the cloud.
    """

    macs: int
    activations: int
    weights: int
    out_elements: int

    def counts(self, sram_mweights: float = 0.0) -> dict[str, float]:
        """The counts of :data:`COUNTS` for this head."""
        return {
            "one": 1.0,
            "gmac": self.macs / 1e9,
            "mact": self.activations / 1e6,
            "mweight": self.weights / 1e6,
            "mout": self.out_elements / 1e6,
            "mweight_over_sram": max(self.weights / 1e6 - sram_mweights, 0.0),
        }


#: the reference block: a 28x28x64 input through two 3x3 convolutions with 64 filters
#: (host calibration times it; profiles are compared on it)
REFERENCE_BLOCK = HeadCost(macs=2 * 28 * 28 * 64 * 9 * 64, activations=2 * 28 * 28 * 64,
                           weights=2 * (9 * 64 * 64 + 64), out_elements=28 * 28 * 64)


def head_cost(split_model: Any, split: int) -> HeadCost | None:
    """The :class:`HeadCost` of a split's head (None at split 0: no head)."""
    head = split_model.head(split)
    if head is None:
        return None
    activations = sum(math.prod(int(d) for d in out.shape[1:] if d is not None)
                      for layer in head.layers if layer.__class__.__name__ != "InputLayer"
                      for out in _outputs(layer))
    cut = split_model.cut_points[split]
    return HeadCost(macs=int(cut.head_macs), activations=activations,
                    weights=int(head.count_params()), out_elements=math.prod(cut.shape))


def _outputs(layer: Any) -> list:
    out = layer.output
    return list(out) if isinstance(out, list | tuple) else [out]


@dataclass(frozen=True)
class TimingTerms:
    """One ``[timing.<accelerator>]`` table: ``{count: (fixed_ms, scaled_ms)}`` per unit."""

    terms: dict[str, tuple[float, float]]
    sram_mweights: float = 0.0

    def time_ms(self, cost: HeadCost, freq: int, max_freq: int) -> float:
        """Device time of a head at CPU frequency ``freq``."""
        r = max_freq / freq
        counts = cost.counts(self.sram_mweights)
        return sum(counts[k] * (a + b * r) for k, (a, b) in self.terms.items())


@dataclass(frozen=True)
class EdgeTimingModel:
    """A device's head timing per accelerator, from its profile's ``[timing]`` tables.

    Attributes:
        tables: accelerator -> its terms (``int8`` = int8 LiteRT on the CPU,
            DynaSplit's TPU "off"; ``tpu-std`` and ``tpu-max`` = Coral Edge TPU).
        max_freq: the device's highest CPU frequency (the reference of ``scaled``).
        source: where the figures come from (the profile's ``timing.source``).
        profile: the profile's name (for ``model:<profile>`` labels).
        fp32_per_int8: the device's fp32 head time over its int8 head time
            (``timing.fp32_per_int8``), or None where the profile gives none (the
            emulation then takes the host's measured ratio).
    """

    tables: dict[str, TimingTerms]
    max_freq: int
    source: str
    profile: str
    fp32_per_int8: float | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], max_freq: int | None,
                      profile: str, where: str = "profile") -> EdgeTimingModel | None:
        """Parse a profile's ``timing`` table; None where the profile has none."""
        if settings.get("timing") is None:
            return None
        if not max_freq:
            raise ConfigError(f"{where}: a [timing] table needs cpu.frequencies_mhz")
        timing = TypedTable(settings["timing"], where, "timing")
        tables = {}
        for accel, spec in timing.subtables(("source", "fp32_per_int8"), "[timing.int8]").items():
            terms = {key: spec.numbers(key, 2, "[fixed_ms, scaled_ms]", minimum=0)
                     for key in spec.counts(COUNTS, extra=("sram_mweights",))}
            tables[accel] = TimingTerms(terms, spec.number("sram_mweights", 0.0, 0.0,
                                                           strict=False))
        ratio = timing.number("fp32_per_int8") if "fp32_per_int8" in timing.data else None
        return cls(tables, int(max_freq), timing.get("source", str, ""), profile, ratio)

    def has(self, accel: str) -> bool:
        """Whether this model times ``accel``."""
        return accel in self.tables

    def time_ms(self, cost: HeadCost | None, freq: int, accel: str) -> float:
        """The device's time for a head (0 where there is no head)."""
        if cost is None:
            return 0.0
        if accel not in self.tables:
            raise ConfigError(f"profile {self.profile!r} has no timing for accelerator "
                              f"{accel!r}; it has: {choices(self.tables)}")
        return self.tables[accel].time_ms(cost, freq, self.max_freq)
