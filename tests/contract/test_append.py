"""SPEC §1, writing: versions, positions, optimistic concurrency, atomicity, idempotent retry.

Every test runs against memory, SQLite and PostgreSQL through the ``store`` fixture.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cairn import ANY, STREAM_EXISTS, ConcurrencyError, NewEvent
from cairn.errors import InvalidEventError, StreamDeletedError
from cairn.store import EventStore


def ev(n: int = 0, type_: str = "Happened") -> NewEvent:
    return NewEvent(type_, {"n": n})


async def test_first_event_of_a_stream_has_version_1(store: EventStore) -> None:
    result = await store.append("order-1", [ev()], expected_version=0)
    assert result.version == 1
    assert [e.version for e in await store.read_stream("order-1")] == [1]


async def test_versions_count_up_by_one_per_event(store: EventStore) -> None:
    await store.append("order-1", [ev(1), ev(2)], expected_version=0)
    result = await store.append("order-1", [ev(3)], expected_version=2)
    assert result.version == 3
    assert [e.version for e in await store.read_stream("order-1")] == [1, 2, 3]


async def test_positions_start_at_1_and_increase_across_streams(store: EventStore) -> None:
    first = await store.append("a-1", [ev(1)], expected_version=0)
    second = await store.append("b-1", [ev(2), ev(3)], expected_version=0)
    assert first.position == 1
    assert second.position == 3
    assert [e.position for e in await store.read_all()] == [1, 2, 3]


async def test_append_result_position_is_that_of_the_last_event(store: EventStore) -> None:
    result = await store.append("a-1", [ev(1), ev(2), ev(3)], expected_version=0)
    events = await store.read_stream("a-1")
    assert result.position == events[-1].position


async def test_append_result_carries_the_events_as_a_read_returns_them(
    store: EventStore,
) -> None:
    await store.append("a-1", [ev(0)], expected_version=0)
    await store.append("b-1", [ev(1)], expected_version=0)
    payload = {"text": "naïve ✓", "nested": {"list": [1, 2.5, None, True]}, "b": 1, "a": 2}
    result = await store.append(
        "a-1",
        [NewEvent("Happened", payload, {"causation": "x"}), ev(2, "Other")],
        expected_version=1,
    )
    assert list(result.events) == await store.read_stream("a-1", from_version=2)


async def test_retried_append_carries_the_originally_stored_events(store: EventStore) -> None:
    event_id = uuid.uuid4()
    first = await store.append("order-1", [NewEvent("Placed", {"n": 1}, id=event_id)])
    retry = await store.append("order-1", [NewEvent("Placed", {"n": 2}, id=event_id)])
    assert retry.events == first.events
    assert [e.data for e in retry.events] == [{"n": 1}]


async def test_nonexistent_stream_is_at_version_0(store: EventStore) -> None:
    assert await store.stream_version("nothing-here") == 0
    assert (await store.append("nothing-here", [ev()], expected_version=0)).version == 1


async def test_wrong_expected_version_raises_with_expected_and_actual(store: EventStore) -> None:
    await store.append("order-1", [ev(1), ev(2)], expected_version=0)
    with pytest.raises(ConcurrencyError) as caught:
        await store.append("order-1", [ev(3)], expected_version=1)
    assert caught.value.expected == 1
    assert caught.value.actual == 2
    assert caught.value.code == "store.concurrency"


async def test_failed_expected_version_check_writes_nothing(store: EventStore) -> None:
    await store.append("order-1", [ev(1)], expected_version=0)
    with pytest.raises(ConcurrencyError):
        await store.append("order-1", [ev(2), ev(3)], expected_version=0)
    assert len(await store.read_stream("order-1")) == 1
    assert len(await store.read_all()) == 1
    assert await store.stream_version("order-1") == 1


async def test_any_skips_the_version_check(store: EventStore) -> None:
    await store.append("order-1", [ev(1)], expected_version=ANY)
    result = await store.append("order-1", [ev(2)], expected_version=ANY)
    assert result.version == 2


async def test_stream_exists_accepts_an_existing_stream(store: EventStore) -> None:
    await store.append("order-1", [ev(1)], expected_version=0)
    result = await store.append("order-1", [ev(2)], expected_version=STREAM_EXISTS)
    assert result.version == 2


async def test_stream_exists_on_a_new_stream_raises_concurrency_error(store: EventStore) -> None:
    with pytest.raises(ConcurrencyError) as caught:
        await store.append("order-1", [ev()], expected_version=STREAM_EXISTS)
    assert caught.value.actual == 0
    assert await store.read_all() == []


async def test_expected_version_0_on_an_existing_stream_raises(store: EventStore) -> None:
    await store.append("order-1", [ev()], expected_version=0)
    with pytest.raises(ConcurrencyError):
        await store.append("order-1", [ev()], expected_version=0)


async def test_exactly_one_of_n_concurrent_appenders_wins(store: EventStore) -> None:
    await store.append("order-1", [ev(0)], expected_version=0)

    async def attempt(n: int) -> bool:
        try:
            await store.append("order-1", [ev(n), ev(n)], expected_version=1)
        except ConcurrencyError:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(n) for n in range(8)))
    assert outcomes.count(True) == 1
    assert [e.version for e in await store.read_stream("order-1")] == [1, 2, 3]


async def test_exactly_one_of_n_concurrent_creators_of_a_stream_wins(store: EventStore) -> None:
    async def attempt(n: int) -> int:
        try:
            await store.append("order-1", [ev(n), ev(n)], expected_version=0)
        except ConcurrencyError as exc:
            return exc.actual
        return 0

    outcomes = await asyncio.gather(*(attempt(n) for n in range(8)))
    assert sorted(outcomes) == [0] + [2] * 7  # one winner; the others see its 2 events
    assert [e.version for e in await store.read_stream("order-1")] == [1, 2]


async def test_concurrent_appenders_with_any_all_land_at_dense_versions(
    store: EventStore,
) -> None:
    await store.append("order-1", [ev(0)], expected_version=0)
    results = await asyncio.gather(
        *(store.append("order-1", [ev(n), ev(n)], expected_version=ANY) for n in range(8))
    )
    assert sorted(r.version for r in results) == [3, 5, 7, 9, 11, 13, 15, 17]
    assert [e.version for e in await store.read_stream("order-1")] == list(range(1, 18))


async def test_a_bad_event_in_a_batch_writes_nothing(store: EventStore) -> None:
    batch = [ev(1), NewEvent("Bad", {"when": object()}), ev(3)]
    with pytest.raises(InvalidEventError):
        await store.append("order-1", batch, expected_version=0)
    assert await store.read_stream("order-1") == []
    assert await store.read_all() == []
    assert await store.stream_version("order-1") == 0


async def test_retried_append_returns_the_original_result_without_duplicates(
    store: EventStore,
) -> None:
    batch = [ev(1), ev(2)]
    first = await store.append("order-1", batch, expected_version=0)
    retry = await store.append("order-1", batch, expected_version=0)
    assert retry == first
    assert len(await store.read_all()) == 2


async def test_retry_is_recognised_after_later_appends(store: EventStore) -> None:
    batch = [ev(1)]
    first = await store.append("order-1", batch, expected_version=0)
    await store.append("order-1", [ev(2)], expected_version=1)
    assert await store.append("order-1", batch, expected_version=0) == first
    assert len(await store.read_stream("order-1")) == 2


async def test_event_id_stored_in_another_stream_is_refused(store: EventStore) -> None:
    event = ev(1)
    await store.append("order-1", [event], expected_version=0)
    with pytest.raises(InvalidEventError):
        await store.append("order-2", [event], expected_version=0)
    assert await store.read_stream("order-2") == []


async def test_partial_retry_with_other_ids_is_refused(store: EventStore) -> None:
    first = ev(1)
    await store.append("order-1", [first], expected_version=0)
    with pytest.raises(InvalidEventError):
        await store.append("order-1", [first, ev(2)], expected_version=0)
    assert len(await store.read_all()) == 1


async def test_caller_supplied_event_id_is_kept(store: EventStore) -> None:
    event_id = uuid.uuid4()
    await store.append("order-1", [NewEvent("X", {}, id=event_id)])
    (stored,) = await store.read_stream("order-1")
    assert stored.id == event_id


async def test_append_to_a_soft_deleted_stream_is_refused(store: EventStore) -> None:
    await store.append("cart-1", [ev()], expected_version=0)
    await store.delete_stream("cart-1")
    with pytest.raises(StreamDeletedError):
        await store.append("cart-1", [ev()], expected_version=ANY)
