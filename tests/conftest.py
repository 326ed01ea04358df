"""Shared fixtures for the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
#: the repository's copy, else ../shared (a checkout) or ../../shared (a worktree)
SHARED_SPLINTER = next(
    (p for p in (REPO_ROOT / "datasets" / "splinter",
                 REPO_ROOT.parent.parent / "shared" / "datasets" / "splinter")
     if (p / "simulation_pool_vgg16.csv").is_file()),
    REPO_ROOT.parent / "shared" / "datasets" / "splinter")


@pytest.fixture(scope="session")
def splinter_dir() -> Path:
    """The DynaSplit reference data in ../shared; skipped with a reason when absent."""
    if not SHARED_SPLINTER.is_dir():
        pytest.skip(f"DynaSplit reference data not found at {SHARED_SPLINTER} (a user's clone)")
    return SHARED_SPLINTER
