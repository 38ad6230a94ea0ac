"""PostgreSQL: positions are allocated in one order and committed in another; readers of ``$all``
never pass a position that may still commit (ADR 0001), and the horizon lag shows who waits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

import cairn
from cairn import NewEvent
from cairn.errors import ConcurrencyError, InvalidEventError
from cairn.store import EventStore, RecordedEvent
from cairn.store.postgres import PostgresEventStore


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[EventStore]:
    async with cairn.open_store(pg_url) as store:
        yield store


async def read_all_when(
    store: EventStore, expected_positions: list[int], after: int = 0
) -> list[RecordedEvent]:
    """read_all until it returns ``expected_positions``. Passing a hole needs every transaction
    of the cluster that is older than the hole's neighbour to end (other databases' too), so a
    concurrent test run elsewhere may delay it briefly; it must not prevent it."""
    events: list[RecordedEvent] = []
    for _ in range(100):
        events = await store.read_all(after=after)
        if [e.position for e in events] == expected_positions:
            break
        await asyncio.sleep(0.05)
    return events


async def open_writer(pg_url: str, stream_id: str) -> psycopg.AsyncConnection[object]:
    """A writer that has allocated its position and inserted its event, but not committed."""
    conn = await psycopg.AsyncConnection.connect(pg_url)
    batch = f'[{{"i": "{uuid.uuid4()}", "t": "Slow", "v": 1, "d": {{"slow": true}}, "m": {{}}}}]'
    await conn.execute("SELECT * FROM cairn_append(%s, 0, %s::jsonb)", (stream_id, batch))
    return conn


async def test_reader_does_not_pass_an_uncommitted_writer(
    pg_url: str, pg_store: EventStore
) -> None:
    slow = await open_writer(pg_url, "slow-1")
    try:
        await pg_store.append("fast-1", [NewEvent("Fast", {})])
        assert await pg_store.read_all() == []
        assert await pg_store.head_position() == 0
    finally:
        await slow.commit()
        await slow.close()
    events = await pg_store.read_all()
    assert [(e.position, e.stream_id) for e in events] == [(1, "slow-1"), (2, "fast-1")]


async def test_reader_passes_the_hole_once_the_writer_rolls_back(
    pg_url: str, pg_store: EventStore
) -> None:
    slow = await open_writer(pg_url, "slow-1")
    try:
        await pg_store.append("fast-1", [NewEvent("Fast", {})])
        assert await pg_store.read_all() == []
    finally:
        await slow.rollback()
        await slow.close()
    events = await read_all_when(pg_store, [2])
    assert [(e.position, e.stream_id) for e in events] == [(2, "fast-1")]


async def test_reader_returns_events_up_to_the_open_writer(
    pg_url: str, pg_store: EventStore
) -> None:
    await pg_store.append("early-1", [NewEvent("Early", {})])
    slow = await open_writer(pg_url, "slow-1")
    try:
        await pg_store.append("fast-1", [NewEvent("Fast", {})])
        assert [e.position for e in await pg_store.read_all()] == [1]
        assert [e.position for e in await pg_store.read_all(after=1)] == []
    finally:
        await slow.commit()
        await slow.close()
    assert [e.position for e in await pg_store.read_all(after=1)] == [2, 3]


async def test_a_hole_filled_between_the_page_read_and_its_proof_is_returned_in_order(
    pg_url: str, pg_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page is read without proofs; at a hole, the rest is read again with them in a new
    snapshot, which sees a writer that committed in between."""
    await pg_store.append("early-1", [NewEvent("Early", {})])
    slow = await open_writer(pg_url, "slow-1")
    await pg_store.append("fast-1", [NewEvent("Fast", {})])
    assert isinstance(pg_store, PostgresEventStore)
    read_with_proofs = pg_store._reader.read_all_with_proofs

    async def commit_first(after: int, limit: int) -> tuple[list[RecordedEvent], bool]:
        await slow.commit()
        return await read_with_proofs(after, limit)

    monkeypatch.setattr(pg_store._reader, "read_all_with_proofs", commit_first)
    try:
        events = await pg_store.read_all()
    finally:
        await slow.close()
    assert [(e.position, e.stream_id) for e in events] == [
        (1, "early-1"),
        (2, "slow-1"),
        (3, "fast-1"),
    ]


async def test_failed_append_leaves_a_hole_that_readers_pass(pg_store: EventStore) -> None:
    taken = NewEvent("A", {})
    await pg_store.append("a-1", [taken])
    # The second id is already stored: the append fails at the insert, after it allocated
    # positions 2 and 3, which stay unused.
    with pytest.raises(InvalidEventError):
        await pg_store.append("a-2", [NewEvent("B", {}), taken])
    await pg_store.append("a-1", [NewEvent("C", {})])
    events = await read_all_when(pg_store, [1, 4])
    assert [(e.position, e.type) for e in events] == [(1, "A"), (4, "C")]


async def test_a_second_creator_of_a_stream_waits_and_loses_to_the_first(
    pg_url: str, pg_store: EventStore
) -> None:
    first = await open_writer(pg_url, "order-1")
    second = asyncio.create_task(pg_store.append("order-1", [NewEvent("B", {})], 0))
    await asyncio.sleep(0.2)
    assert not second.done()
    await first.commit()
    await first.close()
    with pytest.raises(ConcurrencyError):
        await second
    # The loser had allocated position 2 before it found the stream: a hole readers pass.
    await pg_store.append("other-1", [NewEvent("C", {})], 0)
    events = await read_all_when(pg_store, [1, 3])
    assert [(e.position, e.type) for e in events] == [(1, "Slow"), (3, "C")]


async def test_a_second_creator_of_a_stream_wins_once_the_first_rolls_back(
    pg_url: str, pg_store: EventStore
) -> None:
    first = await open_writer(pg_url, "order-1")
    second = asyncio.create_task(pg_store.append("order-1", [NewEvent("B", {})], 0))
    await asyncio.sleep(0.2)
    await first.rollback()
    await first.close()
    assert (await second).version == 1
    assert [e.type for e in await pg_store.read_stream("order-1")] == ["B"]


async def test_horizon_lag_is_visible_while_a_writer_is_held_open(
    pg_url: str, pg_store: EventStore
) -> None:
    slow = await open_writer(pg_url, "slow-1")
    try:
        await pg_store.append("fast-1", [NewEvent("Fast", {}), NewEvent("Fast", {})])
        await asyncio.sleep(0.05)
        status = await pg_store.horizon()
        assert (status.head, status.lag_events) == (0, 2)
        assert status.oldest_writer_seconds >= 0.05
    finally:
        await slow.commit()
        await slow.close()
    await read_all_when(pg_store, [1, 2, 3])
    status = await pg_store.horizon()
    assert (status.head, status.lag_events) == (3, 0)


async def test_live_subscriber_waits_for_the_open_writer(pg_url: str, pg_store: EventStore) -> None:
    seen: list[str] = []

    async def follow() -> None:
        async for event in pg_store.subscribe():
            seen.append(event.stream_id)
            if len(seen) == 2:
                return

    task = asyncio.create_task(follow())
    slow = await open_writer(pg_url, "slow-1")
    try:
        await pg_store.append("fast-1", [NewEvent("Fast", {})])
        await asyncio.sleep(0.3)
        assert seen == []
    finally:
        await slow.commit()
        await slow.close()
    await asyncio.wait_for(task, 5)
    assert seen == ["slow-1", "fast-1"]


async def test_eight_writers_and_a_live_subscriber_see_every_event_once_in_order(
    pg_url: str,
) -> None:
    writers_done = asyncio.Event()
    seen: list[RecordedEvent] = []
    async with cairn.open_store(pg_url) as reader, cairn.open_store(pg_url) as writer_store:

        async def follow() -> None:
            async for event in reader.subscribe():
                seen.append(event)
                if writers_done.is_set() and event.position == await reader.head_position():
                    return

        async def writer(n: int) -> list[int]:
            written: list[int] = []
            taken = NewEvent("First", {})
            await writer_store.append(f"w{n}-first", [taken])
            for i in range(40):
                if i % 13 == 5:  # a failing append leaves a rolled-back hole
                    with pytest.raises(InvalidEventError):
                        await writer_store.append(f"w{n}-x", [NewEvent("Bad", {}), taken])
                result = await writer_store.append(
                    f"w{n}-{i % 4}", [NewEvent("E", {"w": n, "i": i, "k": k}) for k in range(3)]
                )
                written.append(result.position)
            return written

        follower = asyncio.create_task(follow())
        results = await asyncio.gather(*(writer(n) for n in range(8)))
        writers_done.set()
        await writer_store.append("last-1", [NewEvent("Last", {})])
        await asyncio.wait_for(follower, 30)

    positions = [e.position for e in seen]
    assert positions == sorted(set(positions))
    stored = {(e.data["w"], e.data["i"], e.data["k"]) for e in seen if e.type == "E"}
    assert len(stored) == 8 * 40 * 3
    assert all(p in positions for written in results for p in written)


async def test_a_retry_racing_its_in_flight_original_returns_the_original(
    pg_url: str, pg_store: EventStore
) -> None:
    event = NewEvent("Placed", {"n": 1})
    original = await psycopg.AsyncConnection.connect(pg_url)
    batch = f'[{{"i": "{event.event_id}", "t": "Placed", "v": 1, "d": {{"n": 1}}, "m": {{}}}}]'
    await original.execute("SELECT * FROM cairn_append('order-1', 0, %s::jsonb)", (batch,))
    retry = asyncio.create_task(pg_store.append("order-1", [event], 0))
    await asyncio.sleep(0.2)
    assert not retry.done()
    await original.commit()
    await original.close()
    result = await retry
    assert (result.version, result.position) == (1, 1)
    assert [e.id for e in result.events] == [event.event_id]
    assert [e.id for e in await pg_store.read_stream("order-1")] == [event.event_id]
