"""Every limit the scheduler puts on its input and its clients, in one place.

The request protocol (:mod:`toolkit.scheduler.protocol`), the line reader
(:mod:`toolkit.scheduler.lines`), the per-client channel
(:mod:`toolkit.scheduler.channel`) and the server
(:mod:`toolkit.scheduler.server`) read their bounds from here; ``docs/online.md``
documents them under "Input handling".
"""

from __future__ import annotations

__all__ = [
    "AUTH_TIMEOUT_S",
    "FINAL_FLUSH_S",
    "MAX_AUTH_LINE",
    "MAX_CLIENTS",
    "MAX_DEADLINE_MS",
    "MAX_DEPTH",
    "MAX_FLOAT_CHARS",
    "MAX_ID_CHARS",
    "MAX_ID_INT",
    "MAX_IMAGE_PIXELS",
    "MAX_INT_DIGITS",
    "MAX_LINE_BYTES",
    "MAX_NDIM",
    "MAX_PATH_CHARS",
    "MAX_PENDING_ANSWERS",
    "MAX_SAMPLE",
    "MAX_TENSOR_BYTES",
    "MAX_TOP_K",
    "MIN_TOKEN_CHARS",
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

# -- inputs a request carries (toolkit.scheduler.inputs, toolkit.scheduler.frames) ----
#: largest raw tensor payload in a tensor frame, in bytes (an inline base64 input
#: is bounded by MAX_LINE_BYTES)
MAX_TENSOR_BYTES = 4 * 1024 * 1024
#: largest inline image, width × height, read from its header before decoding
MAX_IMAGE_PIXELS = 4096 * 4096
#: most dimensions of an inline array
MAX_NDIM = 8
#: largest ``top_k`` a request may ask for
MAX_TOP_K = 100

# -- authentication (toolkit.scheduler.auth) -----------------------------------------
#: seconds a new connection has to finish its TLS handshake and send its token
AUTH_TIMEOUT_S = 10.0
#: longest first line read for the bearer token, in bytes
MAX_AUTH_LINE = 4096
#: shortest token accepted, in characters
MIN_TOKEN_CHARS = 16

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
