"""Event loops: which one runs a process's main, and a private one on a thread.

The toolkit's I/O (worker connections, SSH) is asyncio. Processes that serve
frames (the edge and cloud workers, the runtime benchmark) start their main
coroutine with :func:`run`, which uses uvloop when it is installed -- its
per-request cost is a fraction of the standard loop's -- and the standard
asyncio loop otherwise. ``DYNASPLIT_LOOP=asyncio`` (or ``uvloop``) forces one.

Notebooks already run an event loop, where ``asyncio.run`` fails, so the
synchronous public API hands its coroutines to a :class:`BackgroundLoop`
instead: this module is the toolkit's one bridge from blocking code to async
code. Testbeds, pools and clusters own a private loop
(:class:`BlockingLifecycle`); the device objects (transports, controllers),
which keep their SSH connections on the loop that opened them, share one
(:func:`device_loop`), through :class:`Blocking` and :func:`run_blocking`::

    pi = Blocking(PiController.from_host(inventory.host("pi")))
    pi.set_cpu_freq(1200)                      # a KnobChange, no await
    results = run_blocking(apply_all(controllers, config))

Async callers may use the objects and coroutines directly.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Generic, TypeVar

from toolkit.errors import ConfigError, choices

__all__ = ["EVENT_LOOPS", "LOOP_ENV", "BackgroundLoop", "Blocking", "BlockingLifecycle",
           "device_loop", "event_loop", "new_event_loop", "run", "run_blocking", "running_loop"]

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
    use and stopped by :meth:`close`; subclasses call :meth:`run_blocking` for their own
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

    @property
    def background_loop(self) -> BackgroundLoop | None:
        """The loop this object's blocking methods run on (None until first used)."""
        return self._loop

    def run_blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this object's loop (started on first use); its result."""
        if self._loop is None:
            self._loop = BackgroundLoop(self._loop_name)
        return self._loop.run(coro)

    def start(self):
        """Blocking :meth:`astart`; returns self."""
        self.run_blocking(self.astart())
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


_device_loop: BackgroundLoop | None = None
_device_loop_lock = threading.Lock()


def device_loop() -> BackgroundLoop:
    """The background loop shared by every synchronous device call (started on first use)."""
    global _device_loop
    with _device_loop_lock:
        if _device_loop is None or _device_loop.loop.is_closed():
            _device_loop = BackgroundLoop("dynasplit-devices")
        return _device_loop


def run_blocking(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run a device coroutine on :func:`device_loop` and return its result."""
    return device_loop().run(coro, timeout)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _iterate(agen: AsyncIterator[T]) -> Iterator[T]:
    loop = device_loop()
    try:
        while True:
            try:
                yield loop.run(_await(agen.__anext__()))
            except StopAsyncIteration:
                return
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            loop.run(_await(aclose()))


class Blocking(Generic[T]):
    """A synchronous view of an async device object.

    Coroutine methods run on :func:`device_loop` and return their result; async
    generator methods (such as log streams) become ordinary generators; every
    other attribute is the wrapped object's own.

    Args:
        target: the async object (an ``SshTransport``, ``PiController``...).
    """

    def __init__(self, target: T) -> None:
        self.__dict__["target"] = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.target, name)
        if inspect.iscoroutinefunction(attr):
            @functools.wraps(attr)
            def call(*args: Any, **kwargs: Any) -> Any:
                return run_blocking(attr(*args, **kwargs))
            return call
        if inspect.isasyncgenfunction(attr):
            @functools.wraps(attr)
            def generate(*args: Any, **kwargs: Any) -> Iterator[Any]:
                return _iterate(attr(*args, **kwargs))
            return generate
        return attr

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.target, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.target)) | {"target"})

    def __repr__(self) -> str:
        return f"Blocking({self.target!r})"
