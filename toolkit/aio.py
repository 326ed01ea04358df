"""A private asyncio event loop on a background thread.

The toolkit's I/O (worker connections, SSH) is asyncio. Notebooks already run an
event loop, where ``asyncio.run`` fails, so the synchronous public API hands its
coroutines to a :class:`BackgroundLoop` instead. Async callers may use the
coroutines directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["BackgroundLoop", "BlockingLifecycle"]

T = TypeVar("T")


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
