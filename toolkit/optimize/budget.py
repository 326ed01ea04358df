"""Evaluation budgets: a fraction of the valid space or an absolute count."""

from __future__ import annotations

import numbers

from toolkit.errors import ConfigError

__all__ = ["parse_budget", "resolve_budget"]


def resolve_budget(budget: float | int, space_size: int) -> int:
    """Distinct evaluations allowed.

    Args:
        budget: a float in (0, 1] is a fraction of the valid space (rounded to the
            nearest count, at least 1); an int is an absolute count (capped at the
            space size: evaluating everything is exhaustive search).
        space_size: number of valid configurations.

    Raises:
        ConfigError: a fraction outside (0, 1], a count below 1, or not a number.
    """
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real):
        raise ConfigError(f"budget must be a fraction in (0, 1] or a count >= 1, got {budget!r}")
    if isinstance(budget, numbers.Integral):
        if budget < 1:
            raise ConfigError(f"budget count must be >= 1, got {budget}")
        return min(int(budget), space_size)
    if not 0.0 < float(budget) <= 1.0:
        raise ConfigError(
            f"budget fraction must be in (0, 1], got {budget}; for an absolute number of "
            "evaluations pass an integer"
        )
    return max(1, min(space_size, round(float(budget) * space_size)))


def parse_budget(text: str) -> float | int:
    """Parse a command-line budget: ``0.2`` (fraction) or ``150`` (count).

    Raises:
        ConfigError: neither an integer nor a decimal number.
    """
    text = str(text).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"budget {text!r} is neither a fraction like 0.2 nor a count like 150"
        ) from None
