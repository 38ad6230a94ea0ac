"""A handled command answers the events it wrote as the store recorded them, with no read-back
(the append's result carries them): one round trip fewer per command on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from app_fixtures import memory_store, new_order, register_mug

from cairn.application import CommandBus
from cairn.domain import orders
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
    bus = CommandBus(store)
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
