"""A worker's tasks do background work (cairn.background), and so does every task they start;
the API's tasks do not."""

from __future__ import annotations

import asyncio

from cairn.background import is_background
from cairn.workers import Workers


class Recording:
    """Records whether its run, and a task its run starts, do background work."""

    def __init__(self) -> None:
        self.seen: list[bool] = []
        self.done = asyncio.Event()

    async def run(self) -> None:
        self.seen.append(is_background())
        self.seen.append(await asyncio.create_task(_is_background()))
        self.done.set()
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


async def _is_background() -> bool:
    return is_background()


async def test_a_workers_tasks_and_the_tasks_they_start_do_background_work() -> None:
    component = Recording()
    running = Workers([("sagas", component)])
    await running.start()
    try:
        await asyncio.wait_for(component.done.wait(), timeout=5)
    finally:
        await running.stop()
    assert component.seen == [True, True]


async def test_starting_workers_leaves_the_caller_in_the_foreground() -> None:
    running = Workers([("sagas", Recording())])
    await running.start()
    try:
        assert not is_background()
        assert not await asyncio.create_task(_is_background())
    finally:
        await running.stop()
