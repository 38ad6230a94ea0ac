"""Relay → Redis Streams (SPEC §6), against the running server."""

from __future__ import annotations

from typing import Any

from relay_helpers import append_orders, make_relay, redis_entries, running

import cairn
from cairn.store import NewEvent, Upcasters


async def test_events_are_xadded_to_the_topic_in_order_with_id_and_event_fields(
    redis_url: str, redis_topic: str
) -> None:
    async with cairn.open_store("memory://") as store:
        last = await append_orders(store, 30)
        async with running(make_relay(store, "memory://", redis_url, redis_topic)) as relay:
            await relay.wait_until(last)
        events = await store.read_all(limit=1000)

    entries = await redis_entries(redis_url, redis_topic)
    assert [event_id for event_id, _ in entries] == [str(e.id) for e in events]
    assert [ce["position"] for _, ce in entries] == list(range(1, last + 1))
    assert [ce["type"] for _, ce in entries] == [e.type for e in events]
    assert [ce["subject"] for _, ce in entries] == [e.stream_id for e in events]


async def test_a_second_relay_run_resumes_from_its_checkpoint_without_republishing(
    redis_url: str, redis_topic: str, sqlite_url: str
) -> None:
    # The checkpoint lives in the store's own SQLite file, beside the events.
    async with cairn.open_store(sqlite_url) as store:
        first = await append_orders(store, 5)
        async with running(make_relay(store, sqlite_url, redis_url, redis_topic)) as relay:
            await relay.wait_until(first)
        last = await append_orders(store, 5, prefix="order2")
        async with running(make_relay(store, sqlite_url, redis_url, redis_topic)) as relay:
            await relay.wait_until(last)

    entries = await redis_entries(redis_url, redis_topic)
    assert [ce["position"] for _, ce in entries] == list(range(1, last + 1))


async def test_published_data_is_upcast_to_the_current_schema(
    redis_url: str, redis_topic: str
) -> None:
    upcasters = Upcasters()

    @upcasters.register("ItemAdded", 1)
    def price_as_string(data: dict[str, Any]) -> dict[str, Any]:
        rest = {k: v for k, v in data.items() if k != "price"}
        return {**rest, "unit_price": str(data["price"])}

    async with cairn.open_store("memory://", upcasters=upcasters) as store:
        old = NewEvent("ItemAdded", {"sku": "MUG-1", "price": 12.5}, schema_version=1)
        result = await store.append("order-1", [old])
        async with running(make_relay(store, "memory://", redis_url, redis_topic)) as relay:
            await relay.wait_until(result.position)

    [(_, ce)] = await redis_entries(redis_url, redis_topic)
    assert ce["data"] == {"sku": "MUG-1", "unit_price": "12.5"}
