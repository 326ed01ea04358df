"""Shared fixtures for the whole suite."""

from __future__ import annotations

import fcntl
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

#: the suite's helper modules (fake_pi, sshd_fixture, kernels, refusals) import by name
sys.path.insert(0, str(REPO_ROOT / "tests"))


@pytest.fixture(scope="session")
def splinter_dir() -> Path:
    """DynaSplit's published VGG16 data, shipped under ``datasets/splinter/``."""
    assert SPLINTER.is_dir(), f"{SPLINTER} is missing: it ships with the repository"
    return SPLINTER


#: test files that take minutes: collected first, so that ``make test`` (pytest-xdist,
#: ``-n 2 --dist loadfile``: each file runs whole in one process, files handed out in
#: collection order) starts them early and the two processes finish together
SLOW_FILES = ("notebooks/test_notebooks.py", "browser/test_jupyterlab.py",
              "partition/test_cli.py", "campaign/test_pool.py",
              "devices/testbeds/test_ssh_testbed.py", "campaign/test_campaign_resume.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slowest files first (:data:`SLOW_FILES`); the order inside each file is kept."""
    def rank(item: pytest.Item) -> int:
        path = Path(item.path).relative_to(REPO_ROOT / "tests").as_posix()
        return SLOW_FILES.index(path) if path in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on file ``lock`` (one test process at a time)."""
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One ``dynasplit demo`` for the whole run: (its output folder, its stdout).

    ``tests/foundation/test_demo.py`` checks it, and the notebooks' demo mode
    resumes a copy of it (a finished demo resumes in seconds) instead of measuring
    the same campaign again. Under pytest-xdist the run's test processes share it:
    the first to ask runs it, the others wait for it and read it (they only read).
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    out, stdout = shared / "demo", shared / "demo.stdout"
    with _exclusive(shared / "demo.lock"):
        if not stdout.exists():
            out.mkdir(exist_ok=True)
            result = subprocess.run([sys.executable, "-m", "toolkit", "demo", "--out", str(out)],
                                    capture_output=True, text=True, timeout=1500,
                                    stdin=subprocess.DEVNULL)
            assert result.returncode == 0, result.stderr[-3000:]
            stdout.write_text(result.stdout)
    return out, stdout.read_text()


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
