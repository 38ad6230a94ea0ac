"""Shutting down: stopping the workers is bounded, even when a worker survives its cancel."""

from __future__ import annotations

import asyncio
import contextlib
import time

from cairn.api.runtime import stop_workers


class _Workers:
    """Stands in for ``cairn.workers.Workers``: ``stop()`` cancels a task and waits for it."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _survives_one_cancel() -> None:
    """Like a loop whose ``asyncio.wait_for`` lost the cancel (Python 3.11, gh-86296)."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)
    await asyncio.sleep(3600)


async def test_stop_workers_gives_up_on_a_worker_that_survives_its_cancel() -> None:
    task = asyncio.create_task(_survives_one_cancel())
    await asyncio.sleep(0)
    started = time.monotonic()

    stopped = await stop_workers(_Workers(task), timeout=0.2)

    assert stopped is False
    assert time.monotonic() - started < 2
    task.cancel()  # the second cancel, as the closing event loop gives it, ends it
    await asyncio.gather(task, return_exceptions=True)
    assert task.done()


async def test_stop_workers_reports_a_clean_stop() -> None:
    task = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)

    assert await stop_workers(_Workers(task), timeout=5) is True
    assert task.cancelled()
