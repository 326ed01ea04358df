"""Work that survives failures: backoff, retries, and the append-only journal.

* :class:`Backoff`: an exponential delay schedule (first delay, growth, longest
  delay, when to give up). SSH reconnects
  (:class:`~toolkit.devices.transport.connect.ReconnectPolicy` is one), channel
  re-opens and retried runs all sleep through it.
* :func:`retry_run`: awaits a run until it succeeds, retrying the errors that
  say a retry can help (:func:`~toolkit.errors.retryable`), with an optional
  recovery between attempts. Campaigns and partition studies use it.
* :class:`Journal`: the append-only, ``fsync``-ed JSON-lines file that makes
  campaigns and partition studies crash-safe and resumable, and their resume rule.
* :class:`JournalledRun`: what a campaign and a partition study share (their
  settings' checks, the journal beside the output cube, the retries, running
  blocking or async).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from toolkit.errors import ConfigError, ToolkitError, check_count, check_seconds, retryable
from toolkit.fileio import as_path

if TYPE_CHECKING:
    import xarray as xr

try:  # POSIX; elsewhere (Windows) journals are not locked
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms the toolkit runs on
    fcntl = None  # type: ignore[assignment]

__all__ = ["JOURNAL_SCHEMA", "Backoff", "Journal", "JournalledRun", "retry_run"]

log = logging.getLogger("toolkit.retry")

T = TypeVar("T")

#: the ``schema`` of a journal's first line
JOURNAL_SCHEMA = "dynasplit.journal/1"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff.

    Attributes:
        initial_s: delay after the first failed attempt.
        factor: growth of the delay per attempt.
        max_delay_s: longest single delay.
        give_up_s: stop retrying once this much time has passed.
    """

    initial_s: float = 0.1
    factor: float = 2.0
    max_delay_s: float = math.inf
    give_up_s: float = math.inf

    def delay(self, retry: int) -> float:
        """The delay before retry number ``retry`` (1 for the first)."""
        return min(self.initial_s * self.factor ** (retry - 1), self.max_delay_s)

    async def delays(self) -> AsyncIterator[float]:
        """Sleep through the schedule, yielding each delay after sleeping; ends once
        the next delay would pass ``give_up_s`` since the first."""
        start, retry = time.monotonic(), 1
        while time.monotonic() + (delay := self.delay(retry)) - start <= self.give_up_s:
            await asyncio.sleep(delay)
            yield delay
            retry += 1


async def retry_run(
    run: Callable[[], Awaitable[T]], *, retries: int, backoff_s: float, what: str,
    recover: Callable[[], Awaitable[None]] | None = None, recovering: str = "recovering",
) -> tuple[T | None, str]:
    """Await ``run()`` until it succeeds, at most ``retries + 1`` times.

    Between attempts it waits ``backoff_s``, doubled each retry, then awaits
    ``recover()`` where given (a recovery that fails uses up that attempt, with
    ``recovering`` naming it in the reason). It asks the error whether a retry can
    help (:func:`~toolkit.errors.retryable`): the user's mistakes are raised at
    once; device errors, timeouts and lost connections are logged with ``what``
    and retried.

    Returns:
        (the result, ``""``), or (None, the last failure's reason).
    """
    schedule, reason = Backoff(backoff_s), ""
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(schedule.delay(attempt))
            if recover is not None:
                try:
                    await recover()
                except Exception as exc:  # recovery itself failed; count the attempt
                    reason = f"{recovering} failed: {exc}"
                    continue
        try:
            return await run(), ""
        except Exception as exc:
            if not retryable(exc):
                raise  # the user's mistake (or a bug): trying again cannot help
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("%s failed (attempt %d/%d): %s", what, attempt + 1, retries + 1,
                        reason)
    return None, reason


class JournalledRun:
    """What a campaign and a partition study share: planned runs measured into a cube
    file through one :class:`Journal`, with the same resume rule and the same retries.

    A subclass sets ``kind`` and ``spec_type``, implements ``_run_locked`` (the work,
    with the journal held) and names in ``runs_on`` what runs it (anything with a
    ``run_blocking``: a testbed, a pool, a partition cluster).

    Args:
        spec: what to measure (a ``spec_type``, whose ``settings()`` the journal keeps).
        out: the cube file; its journal is ``out + ".journal"``.
        retries: retries of a failing run before it is recorded as failed.
        backoff_s: first retry delay, doubled each retry.
        attrs: extra cube attributes.
        progress: show tqdm progress bars.

    Raises:
        ConfigError: a spec of another type, an output that is no path, retries that
            are not an integer >= 0, a first backoff that is not a finite number of
            seconds >= 0, each named with what it should be.
    """

    kind = "run"
    spec_type: type = object

    def __init__(self, spec: Any, out: str | os.PathLike, *, retries: int, backoff_s: float,
                 attrs: Mapping[str, Any] | None, progress: bool) -> None:
        if not isinstance(spec, self.spec_type):
            raise ConfigError(f"a {self.kind} needs a {self.spec_type.__name__} (what to "
                              f"measure), got {spec!r}")
        if not isinstance(out, str | os.PathLike):
            raise ConfigError(f"a {self.kind} needs its output cube's path, got {out!r}")
        check_count(retries, "retries", 0)
        check_seconds(backoff_s, "backoff_s")
        self.spec = spec
        self.out = Path(out)
        self.journal = Journal(Path(f"{out}.journal"), self.kind, spec.settings())
        self.retries = retries
        self.backoff_s = backoff_s
        self.attrs = dict(attrs or {})
        self.progress = progress

    @property
    def runs_on(self) -> Any:
        """What runs the work (its ``run_blocking`` serves :meth:`run`)."""
        raise NotImplementedError

    async def _run_locked(self) -> xr.Dataset:
        raise NotImplementedError

    async def arun(self) -> xr.Dataset:
        """Run (or resume, or grow) the work; returns the cube, also saved to ``out``.

        The journal is held (locked) while it runs: another run on the same output
        is refused until this one ends.
        """
        try:
            return await self._run_locked()
        finally:
            self.journal.close()

    def run(self) -> xr.Dataset:
        """Blocking :meth:`arun`, on the private event loop of what runs the work."""
        return self.runs_on.run_blocking(self.arun())


def _is_entry(entry: Any) -> bool:
    """Whether a journal line after the header is an entry :class:`Journal` wrote."""
    return (isinstance(entry, dict) and entry.get("type") in ("run", "failure", "refused")
            and isinstance(entry.get("key"), str)
            and (entry["type"] != "run" or isinstance(entry.get("row"), dict)))


class Journal:
    """A campaign's append-only JSON-lines journal, and the resume rule.

    A header line (the specification, the *settings* each run is measured with),
    then one entry per line (``type`` ``run``, ``failure`` or ``refused``, with its
    ``key``), each flushed and ``fsync``-ed; :meth:`read` drops (and truncates
    away) a last line that a crash cut short. The resume rule (:meth:`open`): a
    journal with the same ``settings`` is reopened with every run it holds, so a
    campaign may grow and measure only its new runs; other settings are refused.
    ``kind`` names the campaign in messages.
    ``done`` and ``refused`` map keys to entries; ``failures`` holds this
    session's failures, ``failed_before`` the journal's.

    :meth:`open` also takes an exclusive lock on the file until :meth:`close`: a
    second campaign writing the same output, in another process or this one, is
    refused with a message instead of interleaving its runs and overwriting the
    first one's cube.
    """

    def __init__(self, path: Path, kind: str = "campaign",
                 settings: Mapping[str, Any] | None = None) -> None:
        self.path, self.kind = as_path(path, f"a {kind} journal"), kind
        self.settings = dict(settings or {})
        self.done: dict[str, dict[str, Any]] = {}
        self.refused: dict[str, dict[str, Any]] = {}
        self.failures: list[dict[str, Any]] = []
        self.failed_before: list[dict[str, Any]] = []
        self._held: Any = None  # the open file that holds the lock

    def _lock(self) -> None:
        """Hold the file (creating it) until :meth:`close`; refuse a journal that
        another campaign holds."""
        if self._held is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            held = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held until close
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            if fcntl is not None:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.close()
            raise ToolkitError(
                f"another {self.kind} is writing {self.path} (the same output) right now; "
                "wait for it to finish, or give another output file") from None
        except OSError as exc:  # a file system without locks: go on unlocked
            log.debug("journal %s: cannot lock (%s)", self.path, exc)
        self._held = held

    def close(self) -> None:
        """Release the lock :meth:`open` took (nothing else changes: entries are on disk)."""
        if self._held is not None:
            self._held.close()
            self._held = None

    def read(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(the header, the entries after it); (None, []) for a missing or empty file."""
        if not self.path.exists():
            return None, []
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete, torn = lines[:-1], lines[-1]
        if torn:  # a crash cut the last line short: drop it from the file too
            log.warning("journal %s: dropping a torn last line", self.path)
            with open(self.path, "r+b") as fh:
                fh.truncate(len(data) - len(torn))
        entries = []
        for n, line in enumerate(complete, 1):
            try:
                entry = json.loads(line)  # bad JSON and bad UTF-8 are ValueErrors
            except ValueError as exc:
                raise self._corrupt(n, str(exc)) from None
            if n == 1 and not (isinstance(entry, dict)
                               and entry.get("schema") == JOURNAL_SCHEMA):
                raise ToolkitError(f"{self.path} is not a {self.kind} journal of this toolkit")
            if n > 1 and not _is_entry(entry):
                raise self._corrupt(n, "not a run, failure or refusal with its key")
            entries.append(entry)
        if not entries:
            return None, []
        return entries[0], entries[1:]

    def _corrupt(self, n: int, why: str) -> ToolkitError:
        return ToolkitError(f"journal {self.path} line {n} is corrupt ({why}); move it away "
                            "to start over")

    def append(self, entry: Mapping[str, Any]) -> None:
        """Write one line, flushed and ``fsync``-ed."""
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:  # what is journalled so far stays; a rerun resumes from it
            raise self._unwritable(exc) from None

    def _unwritable(self, exc: OSError) -> ToolkitError:
        return ToolkitError(f"cannot write the {self.kind} journal {self.path}: "
                            f"{exc.strerror or exc}")

    def open(self, header: Mapping[str, Any]) -> dict[str, Any]:
        """Lock the journal, then read its entries, or start it with ``header`` and the
        settings; returns its first line. Raises :class:`ToolkitError` where another
        campaign holds it, or it was written with other settings or by another kind
        of campaign (another ``study``)."""
        self._lock()
        try:
            return self._open(header)
        except BaseException:
            self.close()
            raise

    def _open(self, header: Mapping[str, Any]) -> dict[str, Any]:
        first, entries = self.read()
        digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()
        if first is None:
            first = {"schema": JOURNAL_SCHEMA, **header, "settings": self.settings,
                     "fingerprint": digest[:16]}
            self.append(first)
            return first
        if first.get("fingerprint") != digest[:16] or \
                first.get("study") != header.get("study"):
            theirs = first.get("settings", {})
            differ = ", ".join(f"{k} {theirs.get(k)} -> {v}"
                               for k, v in self.settings.items() if theirs.get(k) != v)
            raise ToolkitError(
                f"{self.path} belongs to a different {self.kind}, measured with other "
                f"settings ({differ}); its runs cannot share a cube with these. Give another "
                "output file, or delete the journal to start over")
        self.done = {e["key"]: e for e in entries if e.get("type") == "run"}
        self.refused = {e["key"]: e for e in entries if e.get("type") == "refused"}
        self.failed_before = [e for e in entries
                              if e.get("type") == "failure" and e["key"] not in self.done]
        return first

    def record(self, entry: dict[str, Any]) -> None:
        """Append one entry and keep it in ``done``, ``refused`` or ``failures``."""
        self.append(entry)
        if entry["type"] == "run":
            self.done[entry["key"]] = entry
        elif entry["type"] == "refused":
            self.refused[entry["key"]] = entry
        else:
            self.failures.append(entry)

    def all_failures(self) -> list[dict[str, Any]]:
        """This session's failures, then the journal's neither measured nor failed since."""
        now = {e["key"] for e in self.failures}
        return self.failures + [e for e in self.failed_before
                                if e["key"] not in self.done and e["key"] not in now]

    def rows(self, with_codec: bool) -> list[dict[str, Any]]:
        """The measured runs' cube rows by repeat (``codec`` dropped unless ``with_codec``)."""
        rows = [dict(e["row"]) for e in sorted(self.done.values(), key=lambda e: e["repeat"])]
        for row in rows if not with_codec else ():
            row.pop("codec", None)
        return rows
