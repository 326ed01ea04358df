"""The pool's work queue: a task put back goes to another worker; waiting workers stop."""

from __future__ import annotations

import asyncio

import pytest

from toolkit.config import Config
from toolkit.workqueue import Task, WorkQueue, gather_or_cancel

CONFIG = Config("digits-cnn", 1, 600, "none", "none")


def test_a_task_put_back_goes_to_a_worker_that_has_not_failed_it():
    async def go():
        queue = WorkQueue([Task(CONFIG, "fp32", r) for r in range(2)])
        first = await queue.take("a")
        second = await queue.take("b")
        first.tried.append("a")
        waiting = asyncio.ensure_future(queue.take("a"))  # nothing a may take: it waits
        await asyncio.sleep(0)
        assert not waiting.done()
        await queue.release(put_back=first)  # a's failure goes back ...
        await asyncio.sleep(0)
        assert not waiting.done()  # ... but not to a
        taken = await queue.take("b")
        assert taken is first
        await queue.release()
        await queue.release()  # both of b's tasks end: nobody is busy, a stops waiting
        assert await waiting is None
        assert second.repeat == 1

    asyncio.run(go())


def test_a_retired_worker_takes_nothing():
    async def go():
        queue = WorkQueue([Task(CONFIG, "fp32", 0), Task(CONFIG, "fp32", 1)])
        queue.retire("a")
        assert await queue.take("a") is None
        assert (await queue.take("b")).repeat == 0

    asyncio.run(go())


def test_the_first_error_cancels_the_other_workers():
    cancelled = []

    async def slow():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def failing():
        await asyncio.sleep(0.01)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(gather_or_cancel([slow(), failing()]))
    assert cancelled == [True]
