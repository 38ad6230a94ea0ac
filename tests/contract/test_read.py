"""SPEC §1, reading: ``read_stream`` ranges and ``until``, ``read_all`` paging, round trips."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cairn import NewEvent
from cairn.store import EventStore


def ev(n: int = 0) -> NewEvent:
    return NewEvent("Happened", {"n": n})


async def test_read_stream_of_a_missing_stream_is_empty(store: EventStore) -> None:
    assert await store.read_stream("order-404") == []


async def test_read_stream_returns_events_oldest_first(store: EventStore) -> None:
    await store.append("order-1", [ev(1), ev(2)], expected_version=0)
    await store.append("order-2", [ev(9)], expected_version=0)
    await store.append("order-1", [ev(3)], expected_version=2)
    events = await store.read_stream("order-1")
    assert [e.data["n"] for e in events] == [1, 2, 3]
    assert {e.stream_id for e in events} == {"order-1"}


async def test_read_stream_version_range_is_inclusive(store: EventStore) -> None:
    await store.append("order-1", [ev(n) for n in range(1, 8)], expected_version=0)
    events = await store.read_stream("order-1", from_version=2, to_version=5)
    assert [e.version for e in events] == [2, 3, 4, 5]


async def test_read_stream_from_version_alone(store: EventStore) -> None:
    await store.append("order-1", [ev(n) for n in range(1, 5)], expected_version=0)
    assert [e.version for e in await store.read_stream("order-1", from_version=3)] == [3, 4]


async def test_read_stream_until_returns_the_stream_as_it_was(store: EventStore) -> None:
    await store.append("order-1", [ev(1)], expected_version=0)
    (first,) = await store.read_stream("order-1")
    await asyncio.sleep(0.005)
    await store.append("order-1", [ev(2)], expected_version=1)
    events = await store.read_stream("order-1", until=first.recorded_at)
    assert [e.version for e in events] == [1]
    later = await store.read_stream("order-1", until=datetime.now(UTC) + timedelta(seconds=1))
    assert [e.version for e in later] == [1, 2]


async def test_recorded_at_is_timezone_aware_utc_with_sub_second_resolution(
    store: EventStore,
) -> None:
    before = datetime.now(UTC)
    await store.append("order-1", [ev()], expected_version=0)
    (event,) = await store.read_stream("order-1")
    assert event.recorded_at.utcoffset() == timedelta(0)
    assert before - timedelta(milliseconds=1) <= event.recorded_at <= datetime.now(UTC)


async def test_read_all_after_is_exclusive(store: EventStore) -> None:
    await store.append("a-1", [ev(1), ev(2), ev(3)], expected_version=0)
    assert [e.position for e in await store.read_all(after=0)] == [1, 2, 3]
    assert [e.position for e in await store.read_all(after=2)] == [3]
    assert await store.read_all(after=3) == []


async def test_read_all_honours_limit(store: EventStore) -> None:
    await store.append("a-1", [ev(n) for n in range(10)], expected_version=0)
    batch = await store.read_all(after=0, limit=4)
    assert [e.position for e in batch] == [1, 2, 3, 4]


async def test_read_all_does_not_cap_a_large_limit(store: EventStore) -> None:
    for chunk in range(3):
        await store.append(f"a-{chunk}", [ev(n) for n in range(1000)], expected_version=0)
    assert len(await store.read_all(after=0, limit=5000)) == 3000


async def test_read_all_pages_cover_the_log_once(store: EventStore) -> None:
    for n in range(7):
        await store.append(f"s-{n % 3}", [ev(n)])
    seen: list[int] = []
    after = 0
    while batch := await store.read_all(after=after, limit=3):
        seen += [e.position for e in batch]
        after = batch[-1].position
    assert seen == list(range(1, 8))


async def test_a_live_read_returns_what_a_read_of_all_returns(store: EventStore) -> None:
    await store.append("a-1", [ev(1), ev(2)], expected_version=0)
    await store.append("a-2", [ev(3)], expected_version=0)
    for after, limit in ((0, 10), (1, 1), (3, 10)):
        live = await store.read_all_live(after=after, limit=limit)
        everything = await store.read_all(after=after, limit=limit)
        assert live == everything[: len(live)]
        assert live or not everything


PAYLOADS: list[dict[str, Any]] = [
    {"text": "héllo wörld ✓ 日本語 🚀", "empty": "", "escape": '\\u0000 is text, \\ " \n'},
    {"nested": {"list": [1, 2.5, True, False, None, {"deep": ["x", {"y": []}]}]}},
    {"big": 2**53, "neg": -7, "float": 0.1, "exp": 1e-300},
    {},
]


@pytest.mark.parametrize("data", PAYLOADS)
async def test_data_round_trips_unchanged(store: EventStore, data: dict[str, Any]) -> None:
    await store.append("doc-1", [NewEvent("Saved", data)], expected_version=0)
    (event,) = await store.read_stream("doc-1")
    assert event.data == data
    (same,) = await store.read_all()
    assert same.data == data


async def test_metadata_keys_are_kept(store: EventStore) -> None:
    metadata = {"correlation_id": "c-1", "causation_id": "e-0", "user": "ada", "x": {"y": [1]}}
    await store.append("order-1", [NewEvent("X", {}, metadata=metadata)])
    (event,) = await store.read_stream("order-1")
    assert event.metadata == metadata


async def test_recorded_event_carries_every_field(store: EventStore) -> None:
    event_id = uuid.uuid4()
    await store.append("order-1", [NewEvent("OrderCreated", {"a": 1}, {"m": 2}, id=event_id)])
    (event,) = await store.read_all()
    assert (event.id, event.stream_id, event.type, event.data, event.metadata) == (
        event_id,
        "order-1",
        "OrderCreated",
        {"a": 1},
        {"m": 2},
    )
    assert (event.version, event.position, event.schema_version) == (1, 1, 1)


async def test_read_event_finds_an_event_by_id(store: EventStore) -> None:
    event = ev(5)
    await store.append("order-1", [ev(4), event])
    found = await store.read_event(event.event_id)
    assert found is not None
    assert (found.version, found.data) == (2, {"n": 5})
    assert await store.read_event(uuid.uuid4()) is None


async def test_head_position_is_the_last_position(store: EventStore) -> None:
    assert await store.head_position() == 0
    await store.append("a-1", [ev(), ev()])
    assert await store.head_position() == 2


async def test_stored_schema_version_is_upcast_on_read(store: EventStore) -> None:
    store.upcasters.add("Renamed", 1, lambda d: {"full_name": d["name"]})
    await store.append("cust-1", [NewEvent("Renamed", {"name": "Ada"}, schema_version=1)])
    (event,) = await store.read_stream("cust-1")
    assert (event.data, event.schema_version) == ({"full_name": "Ada"}, 2)
    (same,) = await store.read_all()
    assert same.data == {"full_name": "Ada"}
