"""Stopping a testbed's worker processes when the notebook's kernel exits.

A testbed started in a notebook lives as long as the kernel. Its workers stop by
themselves when the kernel process is gone (they watch the process that started
them); :func:`close_at_exit` also closes the testbed cleanly when Python exits
normally (a kernel shut down or restarted), so logs and cgroups are tidied too.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable

from toolkit.devices.testbeds.testbed import Testbed
from toolkit.errors import ToolkitError

__all__ = ["close_at_exit"]


def close_at_exit(testbed: Testbed) -> Callable[[], None]:
    """Close ``testbed`` when Python exits (a kernel shut down or restarted).

    Args:
        testbed: a testbed (started or not).

    Returns:
        A function that closes the testbed now; each close happens at most once,
        whether by that function or at exit.

    Raises:
        ToolkitError: ``testbed`` cannot be closed (no ``close`` method), before
            anything is registered.
    """
    if not callable(getattr(testbed, "close", None)):
        raise ToolkitError(f"close_at_exit needs a testbed (e.g. LocalTestbed or open_testbed's), "
                           f"got {type(testbed).__name__}")
    lock = threading.Lock()
    closed = False

    def close() -> None:
        nonlocal closed
        with lock:
            if closed:
                return
            closed = True
        testbed.close()

    atexit.register(close)
    return close
