"""Event loops: which one runs a process's main, and a private one on a thread.

The toolkit's I/O (worker connections, SSH) is asyncio. Processes that serve
frames (the edge and cloud workers, the runtime benchmark) start their main
coroutine with :func:`run`, which uses uvloop when it is installed -- its
per-request cost is a fraction of the standard loop's -- and the standard
asyncio loop otherwise. ``DYNASPLIT_LOOP=asyncio`` (or ``uvloop``) forces one.

Notebooks already run an event loop, where ``asyncio.run`` fails, so the
synchronous public API hands its coroutines to a :class:`BackgroundLoop`
instead. Async callers may use the coroutines directly.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from toolkit.errors import ConfigError, choices

__all__ = ["EVENT_LOOPS", "LOOP_ENV", "BackgroundLoop", "BlockingLifecycle", "event_loop",
           "new_event_loop", "run", "running_loop"]

T = TypeVar("T")

#: environment variable that picks the event loop of :func:`run`
LOOP_ENV = "DYNASPLIT_LOOP"
#: valid values of :data:`LOOP_ENV` (and of ``event_loop``'s argument)
EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def event_loop(choice: str | None = None) -> str:
    """The event loop :func:`run` uses: ``"uvloop"`` or ``"asyncio"``.

    Args:
        choice: ``auto`` (uvloop when installed), ``uvloop`` or ``asyncio``;
            default: the ``DYNASPLIT_LOOP`` environment variable, else ``auto``.

    Raises:
        ConfigError: an unknown choice, or ``uvloop`` when it is not installed.
    """
    choice = (choice or os.environ.get(LOOP_ENV) or "auto").strip().lower()
    if choice not in EVENT_LOOPS:
        raise ConfigError(f"unknown event loop {choice!r} ({LOOP_ENV}); valid: "
                          f"{choices(EVENT_LOOPS)}")
    available = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not available:
        raise ConfigError(f"event loop 'uvloop' is not installed ({LOOP_ENV}); "
                          "valid here: auto, asyncio")
    if choice == "auto":
        return "uvloop" if available else "asyncio"
    return choice


def running_loop() -> str:
    """The running event loop's kind: ``"uvloop"`` or ``"asyncio"``."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"


def new_event_loop(choice: str | None = None) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind :func:`event_loop` names."""
    if event_loop(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], choice: str | None = None) -> T:
    """Like :func:`asyncio.run`, on the event loop :func:`event_loop` names.

    Raises:
        ConfigError: as :func:`event_loop` (``main`` is then closed unstarted).
    """
    try:
        name = event_loop(choice)
    except ConfigError:
        main.close()
        raise
    if name == "asyncio":
        return asyncio.run(main)
    import uvloop

    return uvloop.run(main)


class BackgroundLoop:
    """An event loop running forever on a daemon thread until :meth:`close`."""

    def __init__(self, name: str = "dynasplit-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the loop and wait for its result (re-raising its error)."""
        if self.loop.is_closed():
            raise RuntimeError("the background loop is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        """Stop the loop and join its thread (idempotent)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def __enter__(self) -> BackgroundLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlockingLifecycle:
    """Blocking ``start``/``close``/``with`` for an object with ``astart``/``aclose``.

    The coroutines run on a private :class:`BackgroundLoop`, created on first
    use and stopped by :meth:`close`; subclasses call :meth:`_sync` for their own
    blocking twins.
    """

    _loop: BackgroundLoop | None = None
    _loop_name: str = "dynasplit-loop"
    _loop_shared: bool = False

    def use_loop(self, loop: BackgroundLoop) -> None:
        """Run this object's blocking methods on ``loop``, which its owner closes.

        Objects driven together from one event loop (the testbeds of a pool) share
        their owner's loop this way; :meth:`close` then leaves the loop running.

        Raises:
            RuntimeError: the object already runs on another loop.
        """
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError("this object already runs on its own event loop")
        self._loop, self._loop_shared = loop, True

    async def astart(self) -> None:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    async def aclose(self) -> None:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = BackgroundLoop(self._loop_name)
        return self._loop.run(coro)

    def start(self):
        """Blocking :meth:`astart`; returns self."""
        self._sync(self.astart())
        return self

    def close(self) -> None:
        """Blocking :meth:`aclose`; also stops the private event loop (not a shared one)."""
        if self._loop is not None:
            try:
                self._loop.run(self.aclose())
            finally:
                if not self._loop_shared:
                    self._loop.close()
                    self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
