"""Fan-out: the same operation on many hosts at once, a result or an error per host.

Operations run concurrently (:func:`asyncio.gather` with ``return_exceptions``),
so the wall time of a fan-out is about that of the slowest host, and one host's
failure never hides another host's result: every host gets a :class:`HostResult`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tqdm.auto import tqdm

from toolkit.config import Config
from toolkit.devices.controllers.base import EdgeController, KnobChange
from toolkit.devices.transport.commands import CommandResult
from toolkit.devices.transport.ssh import SshTransport

__all__ = ["HostResult", "apply_all", "failed", "fanout", "run_all"]

T = TypeVar("T")
X = TypeVar("X")


@dataclass(frozen=True)
class HostResult(Generic[T]):
    """The outcome of one host's part of a fan-out.

    Attributes:
        host: host name.
        value: the operation's result (None when it failed).
        error: the exception it raised (None when it succeeded).
        duration_ms: the host's own wall time.
    """

    host: str
    value: T | None
    error: BaseException | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        """True when the operation succeeded on this host."""
        return self.error is None

    def unwrap(self) -> T:
        """The value, or re-raise this host's error."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


async def fanout(
    targets: Mapping[str, X],
    operation: Callable[[X], Awaitable[T]],
    *,
    progress: bool = True,
    desc: str = "hosts",
) -> dict[str, HostResult[T]]:
    """Run ``operation(target)`` for every ``{host: target}`` concurrently.

    Args:
        targets: host name → what the operation takes (a controller, a transport...).
        operation: an async function of one target.
        progress: show a progress bar counting finished hosts.
        desc: the progress bar's label.

    Returns:
        host name → :class:`HostResult`, in the order of ``targets``. Exceptions
        (including timeouts and lost connections) are captured per host; only
        cancellation propagates.
    """
    bar = tqdm(total=len(targets), desc=desc, unit="host", disable=not progress, leave=False)

    async def one(name: str, target: X) -> HostResult[T]:
        start = time.perf_counter()
        try:
            value, error = await operation(target), None
        except Exception as exc:  # recorded for this host, never hiding the others
            value, error = None, exc
        bar.update()
        return HostResult(name, value, error, (time.perf_counter() - start) * 1000.0)

    try:
        results = await asyncio.gather(
            *(one(n, t) for n, t in targets.items()), return_exceptions=True)
    finally:
        bar.close()
    out: dict[str, HostResult[T]] = {}
    for name, res in zip(targets, results, strict=True):
        if isinstance(res, BaseException):
            if isinstance(res, asyncio.CancelledError):
                raise res
            res = HostResult(name, None, res, float("nan"))
        out[name] = res
    return out


async def apply_all(
    controllers: Mapping[str, EdgeController], config: Config, *, progress: bool = True
) -> dict[str, HostResult[list[KnobChange]]]:
    """Apply a configuration's edge knobs on every edge controller at once."""
    return await fanout(controllers, lambda c: c.apply(config), progress=progress,
                        desc="apply config")


async def run_all(
    transports: Mapping[str, SshTransport] | Sequence[SshTransport],
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    check: bool = True,
    progress: bool = True,
) -> dict[str, HostResult[CommandResult]]:
    """Run one command (argv list) on many hosts at once."""
    if not isinstance(transports, Mapping):
        transports = {t.name: t for t in transports}
    return await fanout(transports, lambda t: t.run(argv, timeout=timeout, check=check),
                        progress=progress, desc=argv[0] if argv else "run")


def failed(results: Mapping[str, HostResult]) -> dict[str, BaseException]:
    """The hosts whose operation failed, with their errors."""
    return {name: r.error for name, r in results.items() if r.error is not None}
