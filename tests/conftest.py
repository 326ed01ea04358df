"""Shared fixtures for the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
SPLINTER = REPO_ROOT / "datasets" / "splinter"


@pytest.fixture(scope="session")
def splinter_dir() -> Path:
    """DynaSplit's published VGG16 data, shipped under ``datasets/splinter/``."""
    assert SPLINTER.is_dir(), f"{SPLINTER} is missing: it ships with the repository"
    return SPLINTER
