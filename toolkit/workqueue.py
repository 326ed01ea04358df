"""A work queue that several testbeds drain at the same time, on one event loop.

Each testbed of a campaign's pool runs a worker coroutine that takes the next
task from one :class:`WorkQueue`. A task a testbed failed can be put back for
another testbed: a worker never takes a task whose ``tried`` list names it. A
worker whose turn finds nothing it may take waits while other workers are busy
(they may put a task back) and stops once nobody is.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from toolkit.config import Config

__all__ = ["Task", "WorkQueue", "gather_or_cancel"]


@dataclass
class Task:
    """Work for one testbed at a time.

    Attributes:
        config, codec: what to measure.
        repeat: the run's repeat index, or None for "as many runs as the stopping
            rule asks" (adaptive repeats).
        tried: names of the testbeds that failed it.
        reason: why it failed last.
        failed_repeat: the repeat index that failed last.
        failed: whether it was recorded as failed.
    """

    config: Config
    codec: str
    repeat: int | None = None
    tried: list[str] = field(default_factory=list)
    reason: str = ""
    failed_repeat: int = 0
    failed: bool = False


class WorkQueue:
    """Tasks in order; :meth:`take` hands each to one worker, :meth:`release` ends it."""

    def __init__(self, tasks: Iterable[Task]) -> None:
        self.tasks: deque[Task] = deque(tasks)
        self.busy = 0
        self.retired: set[str] = set()
        self._changed = asyncio.Condition()

    async def take(self, worker: str) -> Task | None:
        """The first task ``worker`` has not failed; None once there is none left for it
        (or once it is retired)."""
        async with self._changed:
            while True:
                if worker in self.retired:
                    return None
                for i, task in enumerate(self.tasks):
                    if worker not in task.tried:
                        del self.tasks[i]
                        self.busy += 1
                        return task
                if self.busy == 0:
                    return None
                await self._changed.wait()

    def retire(self, worker: str) -> None:
        """Hand ``worker`` no more tasks.

        A :meth:`take` of it that waits returns None at the next :meth:`release`,
        which is the only thing it waits for.
        """
        self.retired.add(worker)

    async def release(self, put_back: Task | None = None) -> None:
        """End a taken task; ``put_back`` returns it to the front for another worker."""
        async with self._changed:
            self.busy -= 1
            if put_back is not None:
                self.tasks.appendleft(put_back)
            self._changed.notify_all()


async def gather_or_cancel(coros: Iterable[Coroutine[Any, Any, Any]]) -> None:
    """Await all coroutines; the first that raises cancels the others, then re-raises."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
