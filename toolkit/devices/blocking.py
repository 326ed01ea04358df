"""Synchronous use of the async device API, for notebooks and scripts.

Notebooks already run an event loop, where ``asyncio.run`` fails; the device
objects (transports, controllers) keep their SSH connections on the loop that
opened them. So the synchronous API runs every coroutine on one shared
:class:`~toolkit.aio.BackgroundLoop`::

    pi = Blocking(PiController.from_host(inventory.host("pi")))
    pi.set_cpu_freq(1200)                      # a KnobChange, no await
    results = run_blocking(apply_all(controllers, config))

Async callers use the objects and coroutines directly instead.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Generic, TypeVar

from toolkit.aio import BackgroundLoop

__all__ = ["Blocking", "device_loop", "run_blocking"]

T = TypeVar("T")

_loop: BackgroundLoop | None = None
_loop_lock = threading.Lock()


def device_loop() -> BackgroundLoop:
    """The background loop shared by every synchronous device call (started on first use)."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.loop.is_closed():
            _loop = BackgroundLoop("dynasplit-devices")
        return _loop


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
