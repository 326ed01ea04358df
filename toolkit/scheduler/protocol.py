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
import itertools
import json
import math
import re
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

__all__ = ["DEFAULT_TOP_K", "FIELDS", "MAX_LINE_BYTES", "AnswerEncoder", "Prepared", "Request",
           "RequestError", "encode",
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
    if isinstance(text, bytes):
        simple = _SIMPLE(text)
        if simple is not None:
            rid, name, deadline, sample = simple.groups()
            value = float(deadline)
            if 0 < value <= MAX_DEADLINE_MS:
                return Request(int(rid) if rid is not None else name.decode(), value,
                               int(sample) if sample is not None else 0, None, line)
    return request_from_doc(load_document(text), line)


#: the common request, matched without a JSON decoder: ``id`` (an integer of at most
#: 18 digits, or a plain string of at most MAX_ID_CHARS characters that needs no
#: escapes), ``deadline_ms`` and an optional sample ``input``, in this order. A line
#: it matches is valid JSON with valid fields (the deadline's range is checked
#: after); anything else goes through the bounded decoder, which has the errors.
_SIMPLE = re.compile(
    rb'[ \t\r]*\{[ \t\r]*"id"[ \t\r]*:[ \t\r]*(?:(-?(?:0|[1-9][0-9]{0,17}))|'
    rb'"([A-Za-z0-9_.:/+-]{1,%d})")[ \t\r]*,[ \t\r]*"deadline_ms"[ \t\r]*:[ \t\r]*'
    rb'((?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,9})?)[ \t\r]*'
    rb'(?:,[ \t\r]*"input"[ \t\r]*:[ \t\r]*(0|[1-9][0-9]{0,8})[ \t\r]*)?\}[ \t\r]*'
    % MAX_ID_CHARS).fullmatch


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
    text = text.removeprefix("\ufeff")  # a byte-order mark, which RFC 8259 lets parsers skip
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


class Prepared(dict):
    """An outcome whose first fields were encoded once, for many answers.

    Its first ``fixed`` fields (in order) are spelled by ``text``, the JSON of
    those members without braces; fields added after them (a measured time) are
    encoded per answer by :class:`AnswerEncoder`. Build one with :meth:`make`
    and copy it per answer; do not change its first fields.
    """

    __slots__ = ("fixed", "text")

    @classmethod
    def make(cls, fields: dict[str, Any]) -> Prepared:
        """A prepared outcome of ``fields`` (all of them fixed)."""
        out = cls(fields)
        out.fixed = len(fields)
        out.text = encode(fields)[1:-2].decode()     # without "{" and "}\n"
        return out

    def copy(self) -> Prepared:
        """A copy with the same encoded fields, to add per-answer fields to."""
        out = Prepared(self)
        out.fixed, out.text = self.fixed, self.text
        return out


class AnswerEncoder:
    """Outcome lines, byte for byte as ``encode({"id": id, "line": line, **outcome})``.

    Faster for the values outcomes carry: field names are encoded once, plain
    values with their JSON spelling directly, and a nested dict (the chosen
    ``config``, the same object for every request choosing it) once per object:
    a handler must not change a dict after returning it. Anything else, or a
    value the fast way cannot spell, goes through :func:`encode`.

    Args:
        max_cached: nested dicts remembered before the memory is cleared.
    """

    def __init__(self, max_cached: int = 4096) -> None:
        self.max_cached = max_cached
        self._keys: dict[str, str] = {}
        self._dicts: dict[int, tuple[dict, str]] = {}

    def __call__(self, rid: str | int, line: int, outcome: dict[str, Any]) -> bytes:
        if "id" in outcome or "line" in outcome:
            return encode({"id": rid, "line": line, **outcome})
        parts = ['{"id":', int.__repr__(rid) if type(rid) is int else _ENCODE(rid),
                 ',"line":', int.__repr__(line)]
        items: Any = outcome.items()
        if type(outcome) is Prepared and len(outcome) >= outcome.fixed:
            if outcome.fixed:
                parts += (",", outcome.text)
            items = itertools.islice(items, outcome.fixed, None)
        keys, dicts = self._keys, self._dicts
        for k, v in items:
            key = keys.get(k)
            if key is None:
                if type(k) is not str or len(keys) >= 1024:
                    return encode({"id": rid, "line": line, **outcome})
                key = keys[k] = "," + _ENCODE(k) + ":"
            kind = type(v)
            if kind is float:
                text = float.__repr__(v) if math.isfinite(v) else "null"
            elif kind is str:
                text = _ENCODE(v)
            elif kind is bool:
                text = "true" if v else "false"
            elif kind is int:
                text = int.__repr__(v)
            elif v is None:
                text = "null"
            elif kind is dict:
                known = dicts.get(id(v))
                if known is not None and known[0] is v:
                    text = known[1]
                else:
                    try:
                        text = _ENCODE(v)
                    except ValueError:          # a non-finite float inside
                        return encode({"id": rid, "line": line, **outcome})
                    if len(dicts) >= self.max_cached:
                        dicts.clear()
                    dicts[id(v)] = (v, text)
            else:
                return encode({"id": rid, "line": line, **outcome})
            parts.append(key)
            parts.append(text)
        parts.append("}\n")
        return "".join(parts).encode()


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
