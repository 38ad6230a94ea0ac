"""Order numbers: unique per year, one append per order at a trickle, blocks under load."""

from __future__ import annotations

import asyncio
import itertools
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.orders.order_numbers import MAX_BLOCK, OrderNumbers, counter_stream, order_numbers_of
from cairn.store.base import ANY, NewEvent
from cairn.store.memory import MemoryEventStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def ask(numbers: OrderNumbers, order_id: str = "o", year: int = 2026) -> int:
    return await numbers.next(year, order_id, uuid.uuid4(), {"command_id": order_id})


async def test_at_a_trickle_each_number_is_one_event_naming_its_order() -> None:
    store, clock = MemoryEventStore(), Clock()
    numbers = OrderNumbers(store, clock)
    got = []
    for i in range(3):
        got.append(await ask(numbers, f"o-{i}"))
        clock.now += 1.0
    assert got == [1, 2, 3]
    events = await store.read_stream(counter_stream(2026))
    assert [e.data["order_id"] for e in events] == ["o-0", "o-1", "o-2"]


async def test_under_load_one_append_reserves_numbers_the_next_orders_take() -> None:
    store, clock = MemoryEventStore(), Clock()
    numbers = OrderNumbers(store, clock)
    assert [await ask(numbers, f"o-{i}") for i in range(2)] == [1, 2]
    assert await store.stream_version(counter_stream(2026)) == 3  # 1, then a block of 2
    assert await ask(numbers) == 3
    assert await store.stream_version(counter_stream(2026)) == 3  # no append for a spare one


async def test_a_block_never_exceeds_the_cap() -> None:
    store = MemoryEventStore()
    numbers = OrderNumbers(store, Clock())  # a clock that stands still: every ask is recent
    versions = [0]
    for _ in range(3 * MAX_BLOCK):
        await ask(numbers)
        versions.append(await store.stream_version(counter_stream(2026)))
    blocks = [b - a for a, b in itertools.pairwise(versions) if b != a]
    assert max(blocks) == MAX_BLOCK


async def test_concurrent_orders_get_distinct_consecutive_numbers() -> None:
    store = MemoryEventStore()
    numbers = OrderNumbers(store, Clock())
    got = await asyncio.gather(*(ask(numbers, f"o-{i}") for i in range(50)))
    assert sorted(got) == list(range(1, 51))


async def test_years_count_apart() -> None:
    numbers = OrderNumbers(MemoryEventStore(), Clock())
    assert [await ask(numbers, year=2026), await ask(numbers, year=2027)] == [1, 1]


async def test_a_redelivered_lone_allocation_gets_its_number_back() -> None:
    store, clock = MemoryEventStore(), Clock()
    event_id = uuid.uuid4()
    first = await OrderNumbers(store, clock).next(2026, "o-1", event_id, {})
    again = await OrderNumbers(store, clock).next(2026, "o-1", event_id, {})
    assert first == again == 1


async def test_an_older_process_appending_one_event_per_order_shares_the_stream() -> None:
    store = MemoryEventStore()
    numbers = OrderNumbers(store, Clock())
    await ask(numbers)
    await ask(numbers)  # reserves 2 and 3
    old = await store.append(
        counter_stream(2026), [NewEvent("OrderNumberAllocated", {"order_id": "x"})], ANY
    )
    assert old.version == 4
    assert await ask(numbers) == 3
    assert await ask(numbers) not in {1, 2, 3, 4}


def test_each_store_has_one_allocator() -> None:
    store = MemoryEventStore()
    assert order_numbers_of(store) is order_numbers_of(store)
    assert order_numbers_of(MemoryEventStore()) is not order_numbers_of(store)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.floats(0, 0.5), st.integers(1, 6)),
        min_size=1,
        max_size=40,
    )
)
def test_processes_sharing_a_store_never_hand_out_a_number_twice(
    script: list[tuple[int, float, int]],
) -> None:
    """Three "processes" (allocators) over one store, each asked in bursts at varied paces."""

    async def run() -> list[int]:
        store, clock = MemoryEventStore(), Clock()
        processes = [OrderNumbers(store, clock) for _ in range(3)]
        got: list[int] = []
        for process, pause, burst in script:
            clock.now += pause
            got += await asyncio.gather(*(ask(processes[process]) for _ in range(burst)))
        return got

    got = asyncio.run(run())
    assert len(set(got)) == len(got)
