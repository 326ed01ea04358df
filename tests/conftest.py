"""Shared fixtures for the whole suite."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
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


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One ``dynasplit demo`` for the whole session: (its output folder, its stdout).

    ``tests/foundation/test_demo.py`` checks it, and the notebooks' demo mode
    resumes a copy of it (a finished demo resumes in seconds) instead of measuring
    the same campaign again.
    """
    out = tmp_path_factory.mktemp("demo")
    result = subprocess.run([sys.executable, "-m", "toolkit", "demo", "--out", str(out)],
                            capture_output=True, text=True, timeout=1500,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout


@pytest.fixture(scope="session")
def local_testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One started local emulated testbed (default settings) for the session's tests that
    only measure on it (campaigns, live evaluators): starting one costs its two worker
    processes (about 15 s on 2 cores), so they share it. A test may reconfigure it (every
    run applies its configuration) but must not stop or break it; closed at the end."""
    from toolkit.devices.testbeds.local import LocalTestbed

    tb = LocalTestbed(log_dir=tmp_path_factory.mktemp("local-testbed")).start()
    yield tb
    tb.close()


@contextmanager
def _alongside(target: Callable[[], None]) -> Iterator[None]:
    thread = threading.Thread(target=target)
    thread.start()
    try:
        yield
    finally:
        thread.join()


@pytest.fixture
def alongside() -> Callable[[Callable[[], None]], AbstractContextManager[None]]:
    """``with alongside(fault): ...`` runs ``fault`` in a thread while the block runs (a
    crash or kill during a campaign) and joins it when the block ends."""
    return _alongside
