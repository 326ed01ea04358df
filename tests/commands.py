"""Command lines shared by end-to-end tests (``tests/`` is on ``sys.path``, see conftest)."""

from __future__ import annotations

import sys
from pathlib import Path


def measure_command(out: Path, *extra: str, testbeds: tuple[str, ...] = ("--testbed", "local"),
                    samples: int = 30) -> list[str]:
    """``dynasplit measure`` of digits-cnn over 3 splits × 2 frequencies × 2 edge
    accelerators, 2 runs each in shuffled order (seed 7), into ``out``."""
    return [sys.executable, "-m", "toolkit", "measure", *testbeds,
            "--model", "digits-cnn", "--splits", "0,3,9", "--cpu-freqs", "600,1800",
            "--edge-accels", "none,int8", "--runs", "2", "--samples", str(samples),
            "--order", "shuffle", "--seed", "7", "-o", str(out), *extra]
