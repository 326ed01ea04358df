"""How many times to repeat a configuration: a fixed number, or until the mean is precise.

:class:`AdaptiveRepeats` is the stopping rule of ``dynasplit measure --runs auto``:
keep repeating a configuration until the 95 % confidence half-width of the mean
of every watched variable (by default mean latency and mean energy per sample)
is within ``rel_ci`` of that mean, after at least ``min_runs`` runs, or stop at
``max_runs``. The half-width is Student's t: ``t(0.975, n-1) × s / sqrt(n)``
with ``s`` the sample standard deviation of the runs' values.

A campaign records the rule it used in the cube attribute ``stopping_rule``
(JSON, see :func:`stopping_rule_attr`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.config import MAX_RUNS, PARTITION_VARIABLES, VARIABLES
from toolkit.errors import ConfigError, check_count, check_number, choices, short_repr

__all__ = ["AdaptiveRepeats", "ci_half_width", "stopping_rule_attr", "t_975"]

#: Student's t 97.5 % quantile for 1..30 degrees of freedom
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_Z975 = 1.959963984540054


def t_975(df: int) -> float:
    """Student's t 97.5 % quantile (two-sided 95 %) for ``df`` degrees of freedom.

    Tabulated to 4 decimals up to 30; beyond, the Cornish-Fisher expansion
    (error below 1e-7).
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    g = ((z**3 + z) / 4, (5 * z**5 + 16 * z**3 + 3 * z) / 96,
         (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
         (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160)
    return z + sum(gi / df ** (i + 1) for i, gi in enumerate(g))


def ci_half_width(values: Sequence[float]) -> float:
    """Half-width of the 95 % confidence interval of the mean of ``values``.

    Returns ``inf`` for fewer than two values.
    """
    n = len(values)
    if n < 2:
        return math.inf
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return t_975(n - 1) * sd / math.sqrt(n)


@dataclass(frozen=True)
class AdaptiveRepeats:
    """Repeat a configuration until its means are precise enough, or ``max_runs``.

    Attributes:
        rel_ci: the largest 95 % confidence half-width allowed, as a fraction of
            the mean (0.05: within 5 % of the mean).
        max_runs: stop here even when the rule is not met.
        min_runs: never stop before this many runs (at least 2: one run has no
            spread).
        variables: run values whose means must be precise.
    """

    rel_ci: float = 0.05
    max_runs: int = 10
    min_runs: int = 2
    variables: tuple[str, ...] = ("latency_ms", "energy_j")

    def __post_init__(self) -> None:
        check_number(self.rel_ci, "rel-ci", 0.0, 1.0, low_open=True, high_open=True)
        check_count(self.min_runs, "min_runs", 2, MAX_RUNS)
        check_count(self.max_runs, "max-runs", self.min_runs, MAX_RUNS)
        valid = [*VARIABLES, *PARTITION_VARIABLES]
        if (isinstance(self.variables, str) or not isinstance(self.variables, Iterable)
                or not all(v in valid for v in self.variables)):
            raise ConfigError(f"the adaptive repeats' variables must be run values among "
                              f"{choices(valid)}, got {short_repr(self.variables)}")

    def met(self, runs: Sequence[Mapping[str, Any]]) -> bool:
        """Whether the runs' means are precise enough (at least ``min_runs`` runs)."""
        if len(runs) < self.min_runs:
            return False
        for var in self.variables:
            values = [float(r[var]) for r in runs]
            mean = sum(values) / len(values)
            if not math.isfinite(mean) or ci_half_width(values) > self.rel_ci * abs(mean):
                return False
        return True

    def done(self, runs: Sequence[Mapping[str, Any]]) -> bool:
        """Whether to stop repeating: the rule is met or ``max_runs`` are measured."""
        return len(runs) >= self.max_runs or self.met(runs)


def stopping_rule_attr(repeats: AdaptiveRepeats | None, runs: int,
                       unmet: int = 0) -> dict[str, Any]:
    """The cube attribute ``stopping_rule`` for a fixed or an adaptive campaign.

    Args:
        repeats: the adaptive rule, or None for a fixed number of runs.
        runs: the fixed number of runs (ignored for an adaptive rule).
        unmet: configurations that reached ``max_runs`` without meeting the rule.
    """
    if repeats is None:
        return {"rule": "fixed", "runs": runs}
    return {"rule": "ci", "confidence": 0.95, "rel_ci": repeats.rel_ci,
            "min_runs": repeats.min_runs, "max_runs": repeats.max_runs,
            "variables": list(repeats.variables), "configurations_unmet": unmet}
