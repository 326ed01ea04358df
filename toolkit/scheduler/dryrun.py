"""The dry run's outcomes, decided and encoded once per deadline and hardware state.

In ``--dry-run`` an outcome is the policy's prediction: it depends only on the
deadline, the hardware state before the decision and the drift factor, so
:class:`DryRun` keeps the outcome of each such triple as a
:class:`~toolkit.scheduler.protocol.Prepared` (its JSON made once) beside the
state after it, and answers a request with a copy. Only ``decide_us`` (the time
this request's decision took, the lookup included) is added per request. At
most :data:`KEPT` outcomes are kept; beyond that the memory starts afresh.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from toolkit.scheduler.protocol import Prepared

if TYPE_CHECKING:
    from toolkit.policy import Policy
    from toolkit.switching import HardwareState

__all__ = ["KEPT", "DryRun"]

#: outcomes remembered, by (deadline, hardware state, drift factor): about 0.9 kB each,
#: so a client sending a new deadline every time costs at most ~8 MB
KEPT = 8192


class DryRun:
    """Dry-run outcomes of ``policy``; see the module docstring."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._known: dict[tuple, tuple[Prepared, HardwareState]] = {}

    def outcome(self, deadline_ms: float, state: HardwareState | None,
                factor: float = 1.0) -> tuple[Prepared, HardwareState]:
        """(the outcome, the hardware state after it) of a request."""
        t0 = time.perf_counter()
        key = (deadline_ms, state, factor)
        known = self._known.get(key)
        if known is None:
            decision = self.policy.decide(deadline_ms, state, factor)
            predicted = round(decision.predicted_ms, 3)
            known = (Prepared.make({
                "status": "ok", "config": decision.config, "deadline_ms": deadline_ms,
                "predicted_ms": predicted, "latency_ms": predicted,
                "energy_j": decision.energy_j, "switch_j": decision.switch_j,
                "energy_source": self.policy.energy_source, "measured": False,
                "met": decision.meets}), decision.state)
            if len(self._known) >= KEPT:
                self._known.clear()
            self._known[key] = known
        out = known[0].copy()
        out["decide_us"] = round((time.perf_counter() - t0) * 1e6, 1)
        return out, known[1]
