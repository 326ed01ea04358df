"""A Jupyter kernel spec for the tests: this interpreter (the project's .venv), nothing else.

The notebook and browser tests point Jupyter at a kernel spec in a temporary
folder, so the kernels they start run ``sys.executable`` whatever other kernels
the machine has registered.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["KERNEL_NAME", "write_kernel_spec"]

KERNEL_NAME = "dynasplit-test"


def write_kernel_spec(folder: Path) -> Path:
    """Write ``folder/kernels/dynasplit-test/kernel.json``; returns ``folder`` (a JUPYTER_PATH)."""
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (dynasplit tests)",
        "language": "python",
        "metadata": {"debugger": False},
    }, indent=1))
    return folder
