"""Keep freed tensor buffers in the process instead of returning them to the OS.

Every frame's payload and every encoded tensor is a fresh buffer of the same
size as the last one. With glibc's default settings a freed buffer of that size
is often given back to the kernel (``munmap``, or a trim of the heap) and the
next one is faulted in again page by page: about 0.25 ms per MiB on the
development machine, more than sending the MiB over loopback. Worker processes
therefore ask glibc, once at start, to serve buffers up to 32 MiB from the heap
and to keep up to 256 MiB of freed heap (a worker's memory then stays at its
peak). Elsewhere (musl, macOS, Windows) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for repeated large buffers; True where it applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
