"""SPEC §1, ``subscribe``: catch up from ``after``, then follow live appends."""

from __future__ import annotations

import asyncio

from cairn import NewEvent
from cairn.store import EventStore, RecordedEvent


async def collect(store: EventStore, after: int, count: int) -> list[RecordedEvent]:
    seen: list[RecordedEvent] = []
    async for event in store.subscribe(after=after):
        seen.append(event)
        if len(seen) == count:
            break
    return seen


async def test_subscribe_catches_up_then_follows_live(store: EventStore) -> None:
    await store.append("a-1", [NewEvent("X", {"n": 1}), NewEvent("X", {"n": 2})])
    task = asyncio.create_task(collect(store, 0, 4))
    await asyncio.sleep(0.05)
    assert not task.done()
    await store.append("a-2", [NewEvent("X", {"n": 3})])
    await store.append("a-1", [NewEvent("X", {"n": 4})])
    seen = await asyncio.wait_for(task, 5)
    assert [e.data["n"] for e in seen] == [1, 2, 3, 4]
    assert [e.position for e in seen] == [1, 2, 3, 4]


async def test_subscribe_after_is_exclusive(store: EventStore) -> None:
    await store.append("a-1", [NewEvent("X", {"n": n}) for n in range(5)])
    seen = await asyncio.wait_for(collect(store, 3, 2), 5)
    assert [e.position for e in seen] == [4, 5]


async def test_live_event_arrives_quickly(store: EventStore) -> None:
    task = asyncio.create_task(collect(store, 0, 1))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await store.append("a-1", [NewEvent("X", {})])
    await asyncio.wait_for(task, 5)
    assert loop.time() - start < 0.5


async def test_follow_yields_batches_in_order_never_empty(store: EventStore) -> None:
    await store.append("a-1", [NewEvent("X", {"n": n}) for n in range(1, 6)])
    batches: list[list[RecordedEvent]] = []

    async def follow() -> None:
        async for batch in store.follow(0, batch_size=2, idle=0.05):
            batches.append(batch)
            if batch[-1].position == 6:
                return

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.2)  # idle past several waits: an idle wait yields nothing
    await store.append("a-2", [NewEvent("X", {"n": 6})])
    await asyncio.wait_for(task, 5)
    assert all(batches)
    assert all(len(b) <= 2 for b in batches)
    assert [e.position for b in batches for e in b] == [1, 2, 3, 4, 5, 6]
