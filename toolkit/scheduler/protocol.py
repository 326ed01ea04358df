"""The scheduler's wire protocol: JSON lines in, JSON lines out.

A request is one JSON object per line::

    {"id": "r1", "deadline_ms": 250, "input": 17}
    {"id": 2, "deadline_ms": 90.5, "input": "images/cat.npy"}

``id`` (string or integer) is echoed on the outcome; ``deadline_ms`` is the
latency threshold in ms (a positive number); ``input`` names an evaluation
sample by index (an integer ≥ 0, default 0) or a ``.npy`` file. Every accepted
request gets exactly one outcome line carrying its ``id`` and a ``status``:
``ok``, ``timeout``, ``failed`` or ``cancelled`` (shutdown before it ran). A line
that is not a valid request gets one error line ``{"error": ..., "line": N}``
(with the ``id`` when one could be read) and is not accepted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError

__all__ = ["MAX_LINE_BYTES", "Request", "RequestError", "encode", "error_line", "parse_request"]

#: longest request line accepted (bytes)
MAX_LINE_BYTES = 64 * 1024


class RequestError(ToolkitError):
    """A line that is not a valid request; ``request_id`` is set when readable."""

    def __init__(self, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    """One accepted request.

    Attributes:
        id: the client's id (string or integer), echoed on the outcome.
        deadline_ms: the latency threshold, ms.
        sample: evaluation sample index, or None when ``path`` is given.
        path: a ``.npy`` input file, or None.
        line: the input line number (1-based, per connection).
    """

    id: str | int
    deadline_ms: float
    sample: int | None
    path: Path | None
    line: int


def parse_request(text: str | bytes, line: int = 0) -> Request:
    """Parse and check one request line.

    Raises:
        RequestError: not JSON, not an object, or a missing/invalid field; the
            message says which and what is valid.
    """
    if len(text) > MAX_LINE_BYTES:
        raise RequestError(f"request line longer than {MAX_LINE_BYTES} bytes")
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"not JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(doc, dict):
        raise RequestError("a request is a JSON object {\"id\", \"deadline_ms\", \"input\"}")
    rid = doc.get("id")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or rid == "":
        raise RequestError("'id' is required: a non-empty string or an integer")
    deadline = doc.get("deadline_ms")
    if (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
            or not math.isfinite(deadline) or deadline <= 0):
        raise RequestError(f"'deadline_ms' must be a positive number of ms, got {deadline!r}",
                           rid)
    raw = doc.get("input", 0)
    sample, path = None, None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        sample = raw
    elif isinstance(raw, str) and raw.endswith(".npy"):
        path = Path(raw)
    else:
        raise RequestError(f"'input' must be a sample index (integer >= 0) or a .npy file, "
                           f"got {raw!r}", rid)
    unknown = sorted(set(doc) - {"id", "deadline_ms", "input"})
    if unknown:
        raise RequestError(f"unknown request field(s) {', '.join(unknown)}; valid: id, "
                           "deadline_ms, input", rid)
    return Request(rid, float(deadline), sample, path, line)


def encode(obj: dict[str, Any]) -> bytes:
    """One JSON line (compact, newline-terminated)."""
    return (json.dumps(obj, separators=(",", ":"), default=str) + "\n").encode()


def error_line(exc: Exception, line: int) -> bytes:
    """The error line answering a malformed request."""
    out: dict[str, Any] = {"error": str(exc), "line": line}
    rid = getattr(exc, "request_id", None)
    if rid is not None:
        out["id"] = rid
    return encode(out)
