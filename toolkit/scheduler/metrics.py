"""Watching the scheduler: Prometheus metrics, a health check and JSON-lines logs.

- :class:`Metrics` holds the scheduler's Prometheus metrics (official
  ``prometheus_client``, in a registry of its own): requests by outcome,
  thresholds met, energy, decision time, time to answer and queue depth as
  histograms, failed authentications, open connections, and the active
  configuration.
- :func:`start_http` serves ``GET /metrics`` (Prometheus text format) and
  ``GET /healthz`` (a small JSON document; 200 while serving, 503 when
  stopping) on a port of its own, off by default (``--metrics HOST:PORT``).
- :func:`setup_logging` makes the ``toolkit.scheduler`` logger write one JSON
  object per line on stderr (``ts``, ``level``, ``event`` and the record's
  fields, e.g. ``request_id``); ``--log-level`` sets its level.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TextIO

from toolkit.config import CONFIG_KEYS

__all__ = ["LOGGER", "LOG_LEVELS", "Metrics", "json_record", "log_event", "setup_logging",
           "start_http"]

#: the scheduler's logger
LOGGER = logging.getLogger("toolkit.scheduler")
#: valid ``--log-level`` values
LOG_LEVELS = ("debug", "info", "warning", "error")

_OUTCOMES = ("ok", "timeout", "failed", "cancelled", "malformed")
_MS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
               0.5, 1.0, 2.5, 5.0, 10.0)
_DECIDE_BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2)
_DEPTH_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_ENERGY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0)


def json_record(level: str, event: str, created: float | None = None, **fields: Any) -> str:
    """One log line: ``{"ts", "level", "event", **fields}`` as compact JSON."""
    created = time.time() if created is None else created
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    doc = {"ts": f"{ts}.{int(created * 1000) % 1000:03d}Z", "level": level, "event": event,
           **fields}
    return json.dumps(doc, default=str, separators=(",", ":"))


class _JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, event, then the record's extra fields."""

    _PLAIN = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {k: v for k, v in vars(record).items() if k not in self._PLAIN}
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json_record(record.levelname.lower(), record.getMessage(), record.created,
                           **doc)


def setup_logging(level: str = "info", stream: TextIO | None = None) -> logging.Logger:
    """JSON lines on ``stream`` (default stderr) for the scheduler's logger.

    Raises:
        ValueError: ``level`` is not one of :data:`LOG_LEVELS`.
    """
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {level!r}; valid: {', '.join(LOG_LEVELS)}")
    for handler in list(LOGGER.handlers):
        LOGGER.removeHandler(handler)
    stream = stream if stream is not None else sys.stderr
    handler: logging.Handler = (logging.NullHandler() if stream is None    # 2>&-
                                else logging.StreamHandler(stream))
    handler.setFormatter(_JsonFormatter())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False
    return LOGGER


def log_event(level: str, event: str, **fields: Any) -> None:
    """Log ``event`` with ``fields`` (e.g. ``request_id``) at ``level`` on the scheduler logger."""
    number = logging.getLevelName(level.upper())
    if LOGGER.isEnabledFor(number):
        LOGGER.log(number, event, extra=fields)


class Metrics:
    """The scheduler's Prometheus metrics, in their own registry.

    Args:
        namespace: prefix of every metric name.
    """

    def __init__(self, namespace: str = "dynasplit_scheduler") -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        own = {"namespace": namespace, "registry": self.registry}
        self.requests = Counter("requests", "Request lines answered, by outcome",
                                ["outcome"], **own)
        self._by_outcome = {o: self.requests.labels(o) for o in _OUTCOMES}
        self.met = Counter("thresholds_met", "Requests answered within their deadline_ms", **own)
        self.energy = Histogram("energy_joules", "Energy per answered request (J), measured "
                                "or predicted (see the outcome's energy_source)",
                                buckets=_ENERGY_BUCKETS, **own)
        self.decision = Histogram("decision_seconds", "Time to choose a configuration",
                                  buckets=_DECIDE_BUCKETS, **own)
        self.answer = Histogram("answer_seconds", "Time from accepting a request to its "
                                "answer (queue wait included)", buckets=_MS_BUCKETS, **own)
        self.queue = Histogram("queue_depth", "Requests waiting, seen by each new request",
                               buckets=_DEPTH_BUCKETS, **own)
        self.auth_failures = Counter("auth_failures", "Failed authentications, by reason",
                                     ["reason"], **own)
        self.connections = Gauge("connections", "Open client connections", **own)
        self.active = Gauge("active_configuration", "1 for the configuration the testbed "
                            "holds now (the last one chosen)", [*CONFIG_KEYS, "extra"], **own)
        self._active: tuple[str, ...] | None = None

    def queued(self, depth: int) -> None:
        """A request was accepted with ``depth`` requests already waiting."""
        self.queue.observe(depth)

    def malformed(self) -> None:
        """A line was answered with an error."""
        self._by_outcome["malformed"].inc()

    def auth_failed(self, reason: str) -> None:
        """A connection failed to authenticate (``token``, ``tls``, ``timeout``)."""
        self.auth_failures.labels(reason).inc()

    def answered(self, outcome: dict[str, Any], seconds: float | None) -> None:
        """Record one outcome and the time from acceptance to answer (None: a request
        refused at shutdown before it was accepted, not timed)."""
        status = outcome.get("status", "ok")
        counter = self._by_outcome.get(status)
        if counter is not None:
            counter.inc()
        if seconds is not None:
            self.answer.observe(seconds)
        if status != "ok":
            return
        if outcome.get("met"):
            self.met.inc()
        energy = outcome.get("energy_j")
        if isinstance(energy, (int, float)):
            self.energy.observe(energy)
        decide_us = outcome.get("decide_us")
        if isinstance(decide_us, (int, float)):
            self.decision.observe(decide_us / 1e6)
        config = outcome.get("config")
        if isinstance(config, dict):
            self._set_active(config)

    def _set_active(self, config: dict[str, Any]) -> None:
        extra = {k: v for k, v in config.items() if k not in CONFIG_KEYS}
        labels = (*(str(config.get(k, "")) for k in CONFIG_KEYS),
                  json.dumps(extra, sort_keys=True, separators=(",", ":")) if extra else "")
        if labels == self._active:
            return
        if self._active is not None:
            with contextlib.suppress(KeyError):
                self.active.remove(*self._active)
        self.active.labels(*labels).set(1)
        self._active = labels

    def render(self) -> bytes:
        """The metrics in the Prometheus text exposition format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


async def start_http(host: str, port: int, metrics: Metrics,
                     health: Callable[[], tuple[bool, dict[str, Any]]]) -> asyncio.Server:
    """Serve ``GET /metrics`` and ``GET /healthz`` (HTTP/1.0, one request per connection).

    Args:
        host, port: where to listen (port 0: any free port).
        metrics: what ``/metrics`` renders.
        health: returns (healthy, details); ``/healthz`` answers 200 or 503 with
            the details as JSON.
    """
    from prometheus_client import CONTENT_TYPE_LATEST

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                first = await asyncio.wait_for(_request_line(reader), 5.0)
            except ValueError:  # a line over the reader's limit
                first = None
            method, path, *_ = [*(first or b"").decode("latin-1").split(), "", ""]
            path = path.split("?", 1)[0]
            if first is None:
                code, ctype, body = 431, "text/plain", b"request line or header too long\n"
            elif not path.startswith("/"):
                code, ctype, body = 400, "text/plain", b"expected GET /metrics or /healthz\n"
            elif method not in ("GET", "HEAD"):
                code, ctype, body = 405, "text/plain", b"only GET\n"
            elif path == "/metrics":
                code, ctype, body = 200, CONTENT_TYPE_LATEST, metrics.render()
            elif path == "/healthz":
                healthy, details = health()
                code, ctype = (200 if healthy else 503), "application/json"
                body = json.dumps(details).encode() + b"\n"
            else:
                code, ctype, body = 404, "text/plain", b"try /metrics or /healthz\n"
            writer.write(f"HTTP/1.0 {code} {HTTPStatus(code).phrase}\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + (b"" if method == "HEAD" else body))
            await writer.drain()
            if first is None:  # read the rest of what was sent (up to 1 MiB), so that closing
                # with unread data does not reset the connection before the client reads the answer
                await asyncio.wait_for(_discard(reader, 1 << 20), 1.0)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, host, port, limit=16 * 1024)


async def _discard(reader: asyncio.StreamReader, limit: int) -> None:
    """Read and drop what the client sends, until it stops or ``limit`` bytes."""
    read = 0
    while read < limit and (chunk := await reader.read(64 * 1024)):
        read += len(chunk)


async def _request_line(reader: asyncio.StreamReader) -> bytes:
    """An HTTP request's first line; its header lines, up to the blank line (CRLF or a
    bare LF, which RFC 9112 lets a server accept) or the end, are read and dropped."""
    first = await reader.readline()
    while await reader.readline() not in (b"\r\n", b"\n", b""):
        pass
    return first
