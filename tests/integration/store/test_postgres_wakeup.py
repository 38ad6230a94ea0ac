"""PostgreSQL live wake-up: a subscriber in another process (here: another store) hears of an
append through LISTEN/NOTIFY sent after commit, well before its safety-net re-read."""

from __future__ import annotations

import asyncio

import cairn
from cairn import NewEvent
from cairn.store.postgres import PostgresEventStore


async def test_subscriber_of_another_store_is_woken_well_before_its_safety_net(
    pg_url: str,
) -> None:
    async with cairn.open_store(pg_url) as reader, cairn.open_store(pg_url) as writer:
        assert isinstance(reader, PostgresEventStore)
        safety_net = reader.poll_interval * 20
        arrived = asyncio.Event()

        async def follow() -> None:
            async for _ in reader.subscribe():
                arrived.set()
                return

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.2)  # the subscriber is idle, waiting on its LISTEN connection
        loop = asyncio.get_running_loop()
        start = loop.time()
        await writer.append("a-1", [NewEvent("A", {})])
        await asyncio.wait_for(arrived.wait(), 5)
        assert loop.time() - start < safety_net / 2
        await task
