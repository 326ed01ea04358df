"""Where the toolkit finds its shipped files.

The repository's ``hardware/`` (device profiles, testbed inventories) and
``datasets/`` (the trained digits model, example cubes) folders sit beside the
``toolkit`` package in a checkout. ``DYNASPLIT_HARDWARE`` and
``DYNASPLIT_DATASETS`` point elsewhere when set.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DATASETS_DIR",
    "HARDWARE_DIR",
    "PROFILES_DIR",
    "REPO_ROOT",
    "SPLINTER_DIR",
    "TESTBEDS_DIR",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
HARDWARE_DIR = Path(os.environ.get("DYNASPLIT_HARDWARE", REPO_ROOT / "hardware"))
DATASETS_DIR = Path(os.environ.get("DYNASPLIT_DATASETS", REPO_ROOT / "datasets"))
PROFILES_DIR = HARDWARE_DIR / "profiles"
TESTBEDS_DIR = HARDWARE_DIR / "testbeds"
#: DynaSplit's published VGG16 measurements and QoS traces (CC BY-SA 4.0; see its README)
SPLINTER_DIR = DATASETS_DIR / "splinter"
