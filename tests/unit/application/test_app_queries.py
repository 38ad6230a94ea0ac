"""The query bus (optional cache) and the temporal aggregate queries; the composition root."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from app_fixtures import new_order, register_mug

from cairn.application import QueryBus, QueryCache
from cairn.errors import ApplicationError, NotFoundError
from cairn.orders.bootstrap import bootstrap
from cairn.orders.domain import orders
from cairn.orders.queries import GetOrder, GetProduct, GetStreamHistory
from cairn.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_cached_query_is_answered_from_the_cache_until_its_ttl_expires() -> None:
    calls: list[str] = []

    async def handler(query: GetProduct) -> str:
        calls.append(query.sku)
        return f"answer {len(calls)}"

    clock = Clock()
    bus = QueryBus(cache=QueryCache(clock=clock))
    bus.register(GetProduct, handler, cache_ttl=5)
    assert await bus.ask(GetProduct("MUG-1")) == "answer 1"
    assert await bus.ask(GetProduct("MUG-1")) == "answer 1"
    clock.now = 6
    assert await bus.ask(GetProduct("MUG-1")) == "answer 2"
    assert calls == ["MUG-1", "MUG-1"]


async def test_an_uncached_query_always_reaches_its_handler() -> None:
    calls: list[object] = []

    async def handler(query: object) -> int:
        calls.append(query)
        return len(calls)

    bus = QueryBus({GetProduct: handler}, cache=QueryCache())
    assert [await bus.ask(GetProduct("A")), await bus.ask(GetProduct("A"))] == [1, 2]


async def test_the_cache_is_bounded() -> None:
    cache = QueryCache(max_entries=2)
    for key in "abc":
        cache.put(key, key, ttl=60)
    assert cache.get("a") == (False, None)
    assert cache.get("c") == (True, "c")


async def test_each_entry_keeps_the_ttl_it_was_put_with() -> None:
    clock = Clock()
    cache = QueryCache(clock=clock)
    cache.put("short", 1, ttl=1)
    cache.put("long", 2, ttl=10)
    clock.now = 5
    assert (cache.get("short"), cache.get("long")) == ((False, None), (True, 2))
    assert (cache.hits, cache.misses) == (1, 1)


async def test_the_least_recently_used_entry_goes_first() -> None:
    cache = QueryCache(max_entries=2)
    cache.put("a", "a", ttl=60)
    cache.put("b", "b", ttl=60)
    assert cache.get("a") == (True, "a")
    cache.put("c", "c", ttl=60)
    assert [cache.get(k)[0] for k in "abc"] == [True, False, True]


async def test_invalidate_drops_the_entries_a_predicate_names_or_all() -> None:
    cache = QueryCache()
    for key in ("a1", "a2", "b1"):
        cache.put(key, key, ttl=60)
    cache.invalidate(lambda key: key.startswith("a"))
    assert [cache.get(k)[0] for k in ("a1", "a2", "b1")] == [False, False, True]
    cache.invalidate()
    assert cache.get("b1") == (False, None)


async def test_an_unknown_query_is_refused() -> None:
    with pytest.raises(ApplicationError) as refused:
        await QueryBus().ask(GetProduct("A"))
    assert refused.value.code == "query.unknown"


async def test_bootstrap_wires_buses_that_answer_temporal_order_queries() -> None:
    container = await bootstrap(Settings(database_url="memory://"))
    try:
        bus = container.command_bus
        await register_mug(bus)
        created = await bus.dispatch(new_order(None, orders.OrderItem("MUG-1", 1)))
        order_id = created.events[0].data["order_id"]
        await asyncio.sleep(0.005)
        between = datetime.now(UTC)
        await asyncio.sleep(0.005)
        await bus.dispatch(orders.AddItem(order_id, "MUG-1", 2))
        await bus.dispatch(orders.PlaceOrder(order_id, "tok_ok"))

        now = await container.query_bus.ask(GetOrder(order_id))
        then = await container.query_bus.ask(GetOrder(order_id, as_of=between))
        at_v3 = await container.query_bus.ask(GetOrder(order_id, version=3))
        assert (now.state.status, now.version) == ("placed", 4)
        assert (then.state.status, then.version, then.state.order.lines[0].quantity) == (
            "draft",
            2,
            1,
        )
        assert (at_v3.state.status, at_v3.state.order.lines[0].quantity) == ("draft", 3)
        assert now.created_at is not None
        assert now.updated_at is not None
        assert now.created_at <= now.updated_at
        history = await container.query_bus.ask(GetStreamHistory(f"order-{order_id}"))
        assert [e.type for e in history] == [
            "OrderCreated",
            "ItemAdded",
            "ItemAdded",
            "OrderPlaced",
        ]
        with pytest.raises(NotFoundError):
            await container.query_bus.ask(GetOrder("no-such-order"))
    finally:
        await container.close()


async def test_bootstrap_closes_only_a_store_it_opened() -> None:
    from cairn.store import open_store

    store = await open_store("memory://")
    container = await bootstrap(Settings(database_url="memory://"), store=store)
    assert container.store is store
    assert not container.owns_store


async def test_bootstrap_wires_the_authorisation_hook_and_metric_hooks() -> None:
    calls: list[tuple[str, str]] = []
    container = await bootstrap(
        Settings(database_url="memory://"),
        authorize=lambda command, context: "admin" in context.roles,
    )
    container.command_metrics.add(lambda kind, outcome, _s: calls.append((kind, outcome)))
    try:
        with pytest.raises(ApplicationError) as refused:
            await register_mug(container.command_bus)
        assert refused.value.code == "auth.forbidden"
        assert calls == [("RegisterProduct", "invalid")]
    finally:
        await container.close()


async def test_bootstrap_snapshots_every_n_events_from_settings() -> None:
    container = await bootstrap(Settings(database_url="memory://", snapshot_every=2))
    try:
        await register_mug(container.command_bus, stock=5)
        snapshot = await container.store.load_snapshot("inventory-MUG-1")
        assert snapshot is not None
        assert snapshot.version == 2
    finally:
        await container.close()
