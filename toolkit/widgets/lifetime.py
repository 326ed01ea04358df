"""Stopping a testbed's worker processes when the notebook's kernel exits.

A testbed started in a notebook lives as long as the kernel. Python runs
``atexit`` handlers only after it has shut its thread pools down, and closing a
testbed stops its workers through the event loop's thread pool, so an
``atexit.register(testbed.close)`` comes too late and leaves the workers
running. :func:`close_at_exit` hooks in before the thread pools shut down.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 - registers its exit hook before ours
import threading
from collections.abc import Callable

from toolkit.devices.testbed import Testbed

__all__ = ["close_at_exit"]


def close_at_exit(testbed: Testbed) -> Callable[[], None]:
    """Close ``testbed`` when Python exits (a kernel shut down or restarted).

    Args:
        testbed: a testbed (started or not).

    Returns:
        A function that closes the testbed now; each close happens at most once,
        whether by that function or at exit.
    """
    lock = threading.Lock()
    closed = False

    def close() -> None:
        nonlocal closed
        with lock:
            if closed:
                return
            closed = True
        testbed.close()

    # threading's exit hooks run before those of concurrent.futures registered earlier
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("no threading exit hooks")
        register(close)
    except RuntimeError:
        atexit.register(close)
    return close
