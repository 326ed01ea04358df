"""A Jupyter kernel spec for the tests: this interpreter (the project's .venv), nothing else.

The notebook and browser tests point Jupyter at a kernel spec in a temporary
folder, so the kernels they start run ``sys.executable`` whatever other kernels
the machine has registered.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil

__all__ = ["KERNEL_NAME", "processes_with_tmpdir", "write_kernel_spec"]

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


def processes_with_tmpdir(folder: Path, wait_s: float = 15.0) -> list[psutil.Process]:
    """Processes (kernels, workers) still running with ``TMPDIR=folder`` after ``wait_s``.

    The tests start kernels with a TMPDIR of their own, which every process the
    kernel starts inherits: this finds exactly the processes a test started.
    """
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for p in psutil.process_iter():
            try:
                if p.environ().get("TMPDIR") == str(folder) and \
                        p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.Error:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
