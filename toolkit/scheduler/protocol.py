"""The scheduler's wire protocol: JSON lines in, JSON lines out.

A request is one JSON object per line::

    {"id": "r1", "deadline_ms": 250, "input": 17}
    {"id": 2, "deadline_ms": 90.5, "input": "images/cat.npy"}
    {"id": 3, "deadline_ms": 250, "input": {"image": "iVBORw0KGgo..."}, "top_k": 3}

``id`` (string or integer) is echoed on the outcome; ``deadline_ms`` is the
latency threshold in ms (a positive number); ``input`` names an evaluation
sample by index (an integer ≥ 0, default 0) or a ``.npy`` file, or carries the
input inline as ``{"npy": BASE64}`` or ``{"image": BASE64}`` (see
:mod:`toolkit.scheduler.inputs`); ``top_k`` (0..100, default 5) is how many of
the best classes a live answer lists. Every accepted
request gets exactly one outcome line carrying its ``id``, its ``line`` and a
``status``: ``ok``, ``timeout``, ``failed`` or ``cancelled`` (shutdown before it
ran). A line that is not a valid request gets one error line
``{"error": ..., "line": N}`` (with the ``id`` when one could be read) and is
not accepted.

:func:`parse_request` raises :class:`RequestError` and nothing else, whatever
the line holds: sizes, number ranges and nesting are bounded by
:mod:`toolkit.scheduler.limits`.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError
from toolkit.scheduler.inputs import MAX_TOP_K, InlineInput, InputError, parse_inline
from toolkit.scheduler.limits import (
    MAX_DEADLINE_MS,
    MAX_DEPTH,
    MAX_FLOAT_CHARS,
    MAX_ID_CHARS,
    MAX_ID_INT,
    MAX_INT_DIGITS,
    MAX_LINE_BYTES,
    MAX_PATH_CHARS,
    MAX_SAMPLE,
    SHOW_CHARS,
)

__all__ = ["DEFAULT_TOP_K", "FIELDS", "MAX_LINE_BYTES", "Request", "RequestError", "encode",
           "error_line", "load_document", "parse_request", "request_from_doc"]

#: the fields of a request
FIELDS = ("id", "deadline_ms", "input", "top_k")
_FIELD_SET = frozenset(FIELDS)
#: classes listed in a live answer when the request does not say
DEFAULT_TOP_K = 5


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
        inline: an input the request carries itself, or None.
        top_k: how many of the best classes a live answer lists (0: none).
    """

    id: str | int
    deadline_ms: float
    sample: int | None
    path: Path | None
    line: int
    inline: InlineInput | None = None
    top_k: int = DEFAULT_TOP_K


def parse_request(text: str | bytes, line: int = 0) -> Request:
    """Parse and check one request line.

    Raises:
        RequestError: too long, not UTF-8, not JSON, too deeply nested, a number
            out of range, not an object, or a missing/invalid/unknown field; the
            message says which and what is valid. No other exception escapes.
    """
    return request_from_doc(load_document(text), line)


def request_from_doc(doc: Any, line: int = 0, inline: InlineInput | None = None) -> Request:
    """Check a decoded request object; ``inline`` is an input that came beside it
    (a framed tensor), in which case the object has no ``input``.

    Raises:
        RequestError: as :func:`parse_request`.
    """
    if not isinstance(doc, dict):
        raise RequestError("a request is a JSON object {\"id\", \"deadline_ms\", \"input\"}, "
                           f"got {type(doc).__name__ if doc is not None else 'null'}")
    rid = _check_id(doc.get("id"))
    deadline = doc.get("deadline_ms")
    if (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
            or not 0 < deadline <= MAX_DEADLINE_MS):
        raise RequestError(f"'deadline_ms' must be a number of ms in (0, {MAX_DEADLINE_MS:.0f}], "
                           f"got {_show(deadline)}", rid)
    raw = doc.get("input", 0)
    sample, path = None, None
    if inline is not None:
        if "input" in doc:
            raise RequestError("a request sent with a tensor frame has no 'input' field", rid)
    elif isinstance(raw, dict):
        try:
            inline = parse_inline(raw)
        except InputError as exc:
            raise RequestError(str(exc), rid) from None
    elif isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= MAX_SAMPLE:
        sample = raw
    elif (isinstance(raw, str) and raw.endswith(".npy") and len(raw) <= MAX_PATH_CHARS
          and "\x00" not in raw):
        path = Path(raw)
    else:
        raise RequestError(f"'input' must be a sample index (integer 0..{MAX_SAMPLE}), a .npy "
                           f"file path (at most {MAX_PATH_CHARS} characters), {{\"npy\": "
                           f"BASE64}} or {{\"image\": BASE64}}, got {_show(raw)}", rid)
    k = doc.get("top_k", DEFAULT_TOP_K)
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_TOP_K:
        raise RequestError(f"'top_k' must be an integer 0..{MAX_TOP_K}, got {_show(k)}", rid)
    if len(doc) > 2 and not _FIELD_SET.issuperset(doc):
        unknown = sorted(set(doc) - _FIELD_SET)
        names = ", ".join(_show(k) for k in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise RequestError(f"unknown request field(s) {names}; valid: {', '.join(FIELDS)}", rid)
    return Request(rid, float(deadline), sample, path, line, inline, k)


def load_document(text: str | bytes) -> Any:
    """JSON with bounded size, depth and numbers; any failure as RequestError."""
    if len(text) > MAX_LINE_BYTES:
        raise RequestError(f"request line longer than {MAX_LINE_BYTES} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(f"not UTF-8: byte {exc.start} is invalid ({exc.reason})") from None
    if _depth(text) > MAX_DEPTH:
        raise RequestError(f"JSON nested more than {MAX_DEPTH} levels deep (arrays/objects)")
    try:
        return _decoder().decode(text)
    except RequestError:
        raise
    except json.JSONDecodeError as exc:
        raise RequestError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except Exception as exc:  # whatever the decoder meets is the line's fault
        raise RequestError(f"not a valid JSON request ({type(exc).__name__})") from None


def _depth(text: str) -> int:
    """Deepest nesting of arrays/objects outside strings (fast when obviously shallow)."""
    opened = text.count("[") + text.count("{")
    if opened <= MAX_DEPTH:
        return opened
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _int(literal: str) -> int:
    digits = len(literal) - literal.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise RequestError(f"integer with {digits} digits; numbers have at most "
                           f"{MAX_INT_DIGITS} digits")
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > MAX_FLOAT_CHARS:
        raise RequestError(f"number literal of {len(literal)} characters; at most "
                           f"{MAX_FLOAT_CHARS} allowed")
    value = float(literal)
    if not math.isfinite(value):
        raise RequestError(f"number {_show_text(literal)} is out of range (not finite)")
    return value


def _constant(name: str) -> float:
    raise RequestError(f"{name} is not a valid JSON number; numbers must be finite")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise RequestError(f"duplicate field {_show(duplicate)} in one object")
    return doc


def _check_id(rid: Any) -> str | int:
    if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_CHARS:
        return rid
    if isinstance(rid, int) and not isinstance(rid, bool) and -MAX_ID_INT - 1 <= rid <= MAX_ID_INT:
        return rid
    raise RequestError(f"'id' is required: a non-empty string of at most {MAX_ID_CHARS} "
                       f"characters or a 64-bit integer, got {_show(rid)}")


def _show(value: Any) -> str:
    """A bad value for an error message, cut to :data:`SHOW_CHARS`."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ID_INT:
        return f"an integer of {len(str(abs(value)))} digits"
    return _show_text(json.dumps(value)) if value is not None else "null/missing"


def _show_text(text: str) -> str:
    return text if len(text) <= SHOW_CHARS else text[:SHOW_CHARS] + "..."


@functools.cache
def _decoder() -> json.JSONDecoder:
    """The bounded decoder, made once (``json.loads`` with hooks makes one per call)."""
    return json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant,
                            object_pairs_hook=_object)


#: the compact encoder, made once (``json.dumps`` with options makes one per call)
_ENCODE = json.JSONEncoder(separators=(",", ":"), default=str, allow_nan=False).encode


def encode(obj: dict[str, Any]) -> bytes:
    """One JSON line (compact, newline-terminated; non-finite floats become null)."""
    try:
        text = _ENCODE(obj)
    except ValueError:
        text = json.dumps(_finite(obj), separators=(",", ":"), default=str)
    return (text + "\n").encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def error_line(exc: Exception, line: int) -> bytes:
    """The error line answering a malformed request."""
    out: dict[str, Any] = {"error": str(exc), "line": line}
    rid = getattr(exc, "request_id", None)
    if rid is not None:
        out["id"] = rid
    return encode(out)
