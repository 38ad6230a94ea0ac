"""What a command reads from the store before and after it appends: each read is a round trip
on PostgreSQL, on the hot path of every HTTP command."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from app_fixtures import memory_store, new_order, register_mug

from cairn.application import CommandContext
from cairn.errors import DomainError
from cairn.orders.domain import orders
from cairn.orders.handlers import order_command_bus
from cairn.store import EventStore
from cairn.store.base import RecordedEvent


class _CountingReads:
    """Counts the store's point reads while commands run."""

    def __init__(self, store: EventStore) -> None:
        self.reads = 0
        read_event = store.read_event
        read_stream = store.read_stream

        async def counted_event(event_id: uuid.UUID) -> RecordedEvent | None:
            self.reads += 1
            return await read_event(event_id)

        async def counted_stream(stream_id: str, **kwargs: Any) -> Sequence[RecordedEvent]:
            self.reads += 1
            return await read_stream(stream_id, **kwargs)

        store.read_event = counted_event  # type: ignore[method-assign]
        store.read_stream = counted_stream  # type: ignore[method-assign]


async def test_a_command_on_a_cached_order_answers_its_events_without_reading_the_store() -> None:
    store = await memory_store()
    bus = order_command_bus(store)
    await register_mug(bus)
    created = await bus.dispatch(new_order(None, orders.OrderItem("MUG-1", 1)))
    order_id = created.events[0].stream_id.removeprefix("order-")
    counting = _CountingReads(store)

    placed = await bus.dispatch(orders.PlaceOrder(order_id, "tok_ok"))

    assert counting.reads == 0
    assert [e.type for e in placed.events] == ["OrderPlaced"]
    assert list(placed.events) == list(
        await store.read_stream(f"order-{order_id}", from_version=placed.version)
    )


async def test_creating_an_order_whose_id_the_caller_just_minted_reads_nothing() -> None:
    store = await memory_store()
    bus = order_command_bus(store)
    await register_mug(bus)
    counting = _CountingReads(store)

    created = await bus.dispatch(
        new_order(None, orders.OrderItem("MUG-1", 1)), CommandContext(new_stream=True)
    )

    assert counting.reads == 0
    assert [e.type for e in created.events] == ["OrderCreated", "ItemAdded"]
    assert created.version == 2


async def test_a_minted_id_that_exists_after_all_is_refused_and_the_order_is_unchanged() -> None:
    store = await memory_store()
    bus = order_command_bus(store)
    await register_mug(bus)
    order_id = str(uuid.uuid4())
    first = await bus.dispatch(new_order(order_id, orders.OrderItem("MUG-1", 1)))
    other = order_command_bus(store)  # another process: nothing cached

    with pytest.raises(DomainError) as refused:
        await other.dispatch(
            new_order(order_id, orders.OrderItem("MUG-1", 2)), CommandContext(new_stream=True)
        )

    assert refused.value.code == "order.already_exists"
    assert list(await store.read_stream(f"order-{order_id}")) == list(first.events)
