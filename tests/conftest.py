"""Shared fixtures for the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_SPLINTER = REPO_ROOT.parent / "shared" / "datasets" / "splinter"
#: where the DynaSplit data may be: the repo's copy, ../shared, or ../../shared (a worktree)
SPLINTER_CANDIDATES = (REPO_ROOT / "datasets" / "splinter", SHARED_SPLINTER,
                       REPO_ROOT.parent.parent / "shared" / "datasets" / "splinter")


@pytest.fixture(scope="session")
def splinter_dir() -> Path:
    """The DynaSplit reference data in ../shared; skipped with a reason when absent."""
    for path in SPLINTER_CANDIDATES:
        if (path / "simulation_pool_vgg16.csv").is_file():
            return path
    pytest.skip(f"DynaSplit reference data not found at {SHARED_SPLINTER} (a user's clone)")
