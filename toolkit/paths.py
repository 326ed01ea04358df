"""Where the toolkit finds its shipped files.

The repository's ``hardware/`` (device profiles, testbed inventories) and
``datasets/`` (the trained digits model, example cubes) folders sit beside the
``toolkit`` package in a checkout. ``DYNASPLIT_HARDWARE`` and
``DYNASPLIT_DATASETS`` point elsewhere when set.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATASETS_DIR", "HARDWARE_DIR", "PROFILES_DIR", "REPO_ROOT", "TESTBEDS_DIR",
           "splinter_dir"]

REPO_ROOT = Path(__file__).resolve().parent.parent
HARDWARE_DIR = Path(os.environ.get("DYNASPLIT_HARDWARE", REPO_ROOT / "hardware"))
DATASETS_DIR = Path(os.environ.get("DYNASPLIT_DATASETS", REPO_ROOT / "datasets"))
PROFILES_DIR = HARDWARE_DIR / "profiles"
TESTBEDS_DIR = HARDWARE_DIR / "testbeds"


def splinter_dir() -> Path:
    """Folder of DynaSplit's published measurements (SPLINTER CSVs).

    The repository's ``datasets/splinter`` where it is shipped, otherwise the
    shared reference copy ``../shared/datasets/splinter`` beside the checkout;
    ``DYNASPLIT_SPLINTER`` overrides both.
    """
    env = os.environ.get("DYNASPLIT_SPLINTER")
    if env:
        return Path(env)
    for candidate in (DATASETS_DIR / "splinter",
                      REPO_ROOT.parent / "shared" / "datasets" / "splinter",
                      REPO_ROOT.parent.parent / "shared" / "datasets" / "splinter"):
        if (candidate / "simulation_pool_vgg16.csv").is_file():
            return candidate
    return DATASETS_DIR / "splinter"
