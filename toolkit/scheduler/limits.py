"""Every limit the scheduler puts on its input and its clients, in one place.

The request protocol (:mod:`toolkit.scheduler.protocol`), the line reader
(:mod:`toolkit.scheduler.lines`), the per-client channel
(:mod:`toolkit.scheduler.channel`) and the server
(:mod:`toolkit.scheduler.server`) read their bounds from here; ``docs/online.md``
documents them under "Input handling".
"""

from __future__ import annotations

__all__ = [
    "FINAL_FLUSH_S",
    "MAX_CLIENTS",
    "MAX_DEADLINE_MS",
    "MAX_DEPTH",
    "MAX_FLOAT_CHARS",
    "MAX_ID_CHARS",
    "MAX_ID_INT",
    "MAX_INT_DIGITS",
    "MAX_LINE_BYTES",
    "MAX_PATH_CHARS",
    "MAX_PENDING_ANSWERS",
    "MAX_SAMPLE",
    "READ_CHUNK",
    "SHOW_CHARS",
    "WRITE_HIGH_WATER",
]

# -- one request line --------------------------------------------------------------
#: longest request line, in bytes without its newline; a longer one is skipped
#: up to its newline and answered with one error line
MAX_LINE_BYTES = 64 * 1024
#: deepest nesting of JSON arrays/objects in a line (a request itself is depth 1)
MAX_DEPTH = 8
#: most digits of a JSON integer literal (int64 has 19)
MAX_INT_DIGITS = 20
#: longest JSON number literal with a fraction or exponent, in characters
MAX_FLOAT_CHARS = 64

# -- request fields ----------------------------------------------------------------
#: longest string ``id``, in characters
MAX_ID_CHARS = 256
#: integer ``id`` range: -MAX_ID_INT - 1 .. MAX_ID_INT (int64)
MAX_ID_INT = 2**63 - 1
#: largest ``deadline_ms`` (one day)
MAX_DEADLINE_MS = 86_400_000.0
#: largest sample index in ``input``
MAX_SAMPLE = 2**31 - 1
#: longest ``.npy`` path in ``input``, in characters
MAX_PATH_CHARS = 4096
#: longest excerpt of a bad value quoted in an error message, in characters
SHOW_CHARS = 40

# -- clients -----------------------------------------------------------------------
#: bytes read from a client at a time
READ_CHUNK = 64 * 1024
#: answers a client may have outstanding (lines read, answer not yet taken by the
#: client); at this bound the server stops reading from that client
MAX_PENDING_ANSWERS = 1024
#: bytes of answers buffered for a client before the server waits for it to read
WRITE_HIGH_WATER = 64 * 1024
#: concurrent TCP connections; one more is answered with an error line and closed
MAX_CLIENTS = 256

# -- shutdown ----------------------------------------------------------------------
#: on a signal, queued requests run until this long before the grace period ends
#: (at most half of it); the rest is answered ``cancelled`` and written in the time
#: left, then any output not yet taken is dropped and the process exits
FINAL_FLUSH_S = 0.5
