"""PostgreSQL live wake-up: a subscriber in another process (here: another store) hears of an
append through LISTEN/NOTIFY sent after commit, well before its safety-net re-read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import cairn
from cairn import NewEvent, RecordedEvent
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


async def _follow_into(store: PostgresEventStore, seen: list[int]) -> None:
    async for batch in store.follow(0, idle=60):
        seen.extend(e.position for e in batch)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_follower_of_its_own_process_appends_reads_no_events_back(pg_url: str) -> None:
    async with cairn.open_store(pg_url) as store:
        assert isinstance(store, PostgresEventStore)
        seen: list[int] = []
        task = asyncio.create_task(_follow_into(store, seen))
        await asyncio.sleep(0.2)  # caught up with the (empty) log, waiting
        reads = 0
        read = store._reader.read_all_proven

        async def counted(after: int, limit: int) -> tuple[list[RecordedEvent], bool]:
            nonlocal reads
            reads += 1
            return await read(after, limit)

        store._reader.read_all_proven = counted  # type: ignore[method-assign]
        for n in range(1, 6):
            await store.append(f"a-{n}", [NewEvent("A", {"n": n})])
            await _until(lambda n=n: seen[-1:] == [n])
        task.cancel()
        assert seen == [1, 2, 3, 4, 5]
        assert reads == 0


async def test_a_follower_still_sees_another_process_append_between_its_own(
    pg_url: str,
) -> None:
    # The events this process appended come from memory; the one another process appended in
    # between must still be read, in order, well before the follower's idle re-read (60 s).
    async with cairn.open_store(pg_url) as mine, cairn.open_store(pg_url) as theirs:
        assert isinstance(mine, PostgresEventStore)
        seen: list[int] = []
        task = asyncio.create_task(_follow_into(mine, seen))
        await asyncio.sleep(0.2)
        await mine.append("a-1", [NewEvent("A", {})])
        await theirs.append("b-1", [NewEvent("B", {})])
        await mine.append("a-2", [NewEvent("A", {})])
        await _until(lambda: len(seen) >= 3)
        task.cancel()
        assert seen == [1, 2, 3]


async def test_a_process_does_not_wake_itself_through_its_own_notification(
    pg_url: str,
) -> None:
    async with cairn.open_store(pg_url) as store, cairn.open_store(pg_url) as other:
        assert isinstance(store, PostgresEventStore)
        assert isinstance(other, PostgresEventStore)
        await store.wait_for_append(0, timeout=0.01)  # both listen
        await other.wait_for_append(0, timeout=0.01)
        await store.append("a-1", [NewEvent("A", {})])
        await _until(lambda: other._wakeup.foreign == 1)
        await asyncio.sleep(0.3)  # our own NOTIFY has long come back by now
        assert store._wakeup.foreign == 0
