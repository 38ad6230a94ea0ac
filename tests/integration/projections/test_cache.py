"""The optional Redis cache of order views: kept current by the projection, never required."""

from __future__ import annotations

import redis.asyncio as aioredis

from cairn.orders.components import build_projections
from cairn.projections import RunnerConfig
from cairn.store.base import EventStore

from .scenario import create_order, order_event, place


async def test_cached_order_view_follows_the_projection(
    store: EventStore, store_url: str, redis_url: str
) -> None:
    engine = build_projections(store_url, store, config=RunnerConfig(), redis_url=redis_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        oid = await create_order(store, items=[("MUG-1", "Mug", 1, "2.00")])
        await engine.run_until_caught_up()
        assert (await engine.queries.get_order(oid) or {})["status"] == "draft"
        assert await client.exists(f"cairn:order:v1:{oid}")

        await place(store, oid, "2.00")
        await engine.run_until_caught_up()

        assert (await engine.queries.get_order(oid) or {})["status"] == "placed"
    finally:
        await client.delete(f"cairn:order:v1:{oid}")
        await client.aclose()
        await engine.close()


async def test_a_rebuild_writes_nothing_to_the_cache(
    store: EventStore, store_url: str, redis_url: str
) -> None:
    engine = build_projections(store_url, store, redis_url=redis_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        oid = await create_order(store)
        await engine.rebuild("orders")
        assert not await client.exists(f"cairn:order:v2:{oid}")
        assert (await engine.queries.get_order(oid) or {})["order_id"] == oid
    finally:
        await client.delete(f"cairn:order:v1:{oid}", f"cairn:order:v2:{oid}")
        await client.aclose()
        await engine.close()


async def test_every_answer_is_correct_with_redis_down(store: EventStore, store_url: str) -> None:
    engine = build_projections(store_url, store, redis_url="redis://127.0.0.1:1/0")
    try:
        oid = await create_order(store)
        await engine.run_until_caught_up()
        assert (await engine.queries.get_order(oid) or {})["status"] == "draft"
        await order_event(store, oid, "OrderCancelled", reason="r", previous_status="draft")
        await engine.run_until_caught_up()
        assert (await engine.queries.get_order(oid) or {})["status"] == "cancelled"
    finally:
        await engine.close()
