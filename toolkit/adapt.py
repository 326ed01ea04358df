"""Online adaptation: correcting predicted latency from observed transfer times."""

from __future__ import annotations

import math

from toolkit.errors import check_number

__all__ = ["DriftTracker"]


class DriftTracker:
    """An EWMA of observed / expected transfer time: the online network correction.

    After each request that sent data, :meth:`observe` updates
    ``factor ← (1 − α)·factor + α·observed/expected``. A request that sent
    nothing tells nothing about the network, so :meth:`idle` lets the factor
    decay towards 1 (``factor ← factor + β·(1 − factor)``): once the policy has
    moved away from the network it eventually tries it again instead of
    avoiding it for ever. :attr:`grid_factor` rounds the factor *up* to a
    geometric grid (``step`` apart, never below 1) so that a policy compiles one
    selector per grid point (cached) and decisions stay O(log n).
    """

    def __init__(self, alpha: float = 0.3, step: float = 0.05, decay: float = 0.02) -> None:
        check_number(alpha, "EWMA alpha", 0.0, 1.0, low_open=True)
        check_number(step, "the factor grid step", low_open=True)
        check_number(decay, "the idle decay", 0.0, 1.0, high_open=True)
        self.alpha = alpha
        self.step = step
        self.decay = decay
        self.factor = 1.0

    def observe(self, expected_ms: float, observed_ms: float) -> None:
        """Fold in one request's transfer time (:meth:`idle` when nothing was expected)."""
        if expected_ms > 0.0 and math.isfinite(observed_ms):
            self.factor += self.alpha * (observed_ms / expected_ms - self.factor)
        else:
            self.idle()

    def idle(self) -> None:
        """A request without transfer: decay the factor towards 1."""
        self.factor += self.decay * (1.0 - self.factor)

    @property
    def grid_factor(self) -> float:
        """The factor rounded up to ``(1 + step)**k`` (1.0 at or below 1)."""
        if self.factor <= 1.0:
            return 1.0
        k = math.ceil(math.log(self.factor) / math.log1p(self.step) - 1e-9)
        return round((1.0 + self.step) ** k, 9)
