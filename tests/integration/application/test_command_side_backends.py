"""The command side on the real backends (SQLite file, PostgreSQL): idempotency across a
reopened store, concurrent writers on one aggregate, order-number uniqueness across processes,
snapshots and upcasting. Two stores opened on one URL stand for two processes."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from cairn.application import CommandBus, CommandContext, EveryNEvents
from cairn.errors import ConcurrencyError
from cairn.orders.codec import domain_upcasters
from cairn.orders.domain import inventory, orders
from cairn.orders.domain.money import Money
from cairn.orders.handlers import order_command_bus
from cairn.orders.repositories import OrderRepositories
from cairn.store import EventStore, NewEvent, open_store

ADDRESS = orders.ShippingAddress("1 Main St", "Paris", "75001", "FR")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@asynccontextmanager
async def process(
    url: str, snapshot_every: int | None = None, cache_size: int = 10_000
) -> AsyncIterator[CommandBus]:
    """One 'process': its own store connection(s) and bus."""
    store: EventStore = await open_store(url, upcasters=domain_upcasters())
    policy = EveryNEvents(snapshot_every) if snapshot_every else None
    try:
        repos = OrderRepositories.build(store, snapshots=policy, cache_size=cache_size)
        yield order_command_bus(store, repositories=repos)
    finally:
        await store.close()


def create(order_id: str | None = None) -> orders.CreateOrder:
    return orders.CreateOrder(
        order_id or str(uuid.uuid4()), "c-1", "Ada", "ada@example.com", "EUR", ADDRESS, year=2026
    )


async def test_a_command_id_has_no_further_effect_after_the_store_is_reopened(url: str) -> None:
    command_id = str(uuid.uuid4())
    async with process(url) as bus:
        await bus.dispatch(inventory.RegisterProduct("MUG-1", "Mug", Money.of("1.00", "EUR")))
        first = await bus.dispatch(
            inventory.ReplenishStock("MUG-1", 5), CommandContext(command_id=command_id)
        )
    async with process(url) as bus:
        again = await bus.dispatch(
            inventory.ReplenishStock("MUG-1", 5), CommandContext(command_id=command_id)
        )
        assert again.replayed
        assert (again.version, again.position) == (first.version, first.position)
        assert [e.id for e in again.events] == [e.id for e in first.events]
        loaded = await bus.repositories.inventory.load("inventory-MUG-1")
        assert loaded.state.on_hand == 5


async def test_a_redelivered_create_order_after_a_restart_keeps_its_number(url: str) -> None:
    command = create()
    context = CommandContext(command_id=str(uuid.uuid4()))
    async with process(url) as bus:
        first = await bus.dispatch(command, context)
    async with process(url) as bus:
        again = await bus.dispatch(command, context)
        assert again.events[0].data["order_number"] == first.events[0].data["order_number"]
        assert await bus.store.stream_version("ordernumbers-2026") == 1


async def test_two_concurrent_commands_on_one_aggregate_both_succeed_via_retry(url: str) -> None:
    async with process(url) as a, process(url) as b:
        await a.dispatch(inventory.RegisterProduct("MUG-1", "Mug", Money.of("1.00", "EUR")))
        await asyncio.gather(
            a.dispatch(inventory.ReplenishStock("MUG-1", 3)),
            b.dispatch(inventory.ReplenishStock("MUG-1", 4)),
        )
        loaded = await a.repositories.inventory.load("inventory-MUG-1")
        assert (loaded.version, loaded.state.on_hand) == (3, 7)


async def test_many_concurrent_writers_never_lose_an_update(url: str) -> None:
    async with process(url) as a, process(url) as b:
        await a.dispatch(inventory.RegisterProduct("MUG-1", "Mug", Money.of("1.00", "EUR")))
        quantities = list(range(1, 11))
        results = await asyncio.gather(
            *(
                bus.dispatch(inventory.ReplenishStock("MUG-1", q))
                for q, bus in zip(quantities, [a, b] * 5, strict=True)
            ),
            return_exceptions=True,
        )
        # Each writer either succeeded or got a clear conflict after bounded retries.
        assert all(
            not isinstance(r, BaseException) or isinstance(r, ConcurrencyError) for r in results
        )
        applied = [
            q for q, r in zip(quantities, results, strict=True) if not isinstance(r, BaseException)
        ]
        loaded = await a.repositories.inventory.load("inventory-MUG-1")
        assert loaded.state.on_hand == sum(applied)
        assert loaded.version == 1 + len(applied)
        assert len(applied) >= 1


async def test_concurrent_deliveries_of_one_command_id_write_once(url: str) -> None:
    async with process(url) as a, process(url) as b:
        await a.dispatch(inventory.RegisterProduct("MUG-1", "Mug", Money.of("1.00", "EUR")))
        context = CommandContext(command_id=str(uuid.uuid4()))
        results = await asyncio.gather(
            *(bus.dispatch(inventory.ReplenishStock("MUG-1", 7), context) for bus in (a, b, a, b))
        )
        assert len({(r.version, r.position) for r in results}) == 1
        loaded = await b.repositories.inventory.load("inventory-MUG-1")
        assert (loaded.version, loaded.state.on_hand) == (2, 7)


async def test_order_numbers_are_unique_across_concurrent_processes(url: str) -> None:
    async with process(url) as a, process(url) as b:
        results = await asyncio.gather(*(bus.dispatch(create()) for bus in [a, b] * 6))
        numbers = [r.events[0].data["order_number"] for r in results]
        assert len(set(numbers)) == 12
        # Unique, not gap-free: a process hands out numbers it reserved in blocks.
        assert all(re.fullmatch(r"ORD-2026-\d{6}", n) for n in numbers)


async def test_snapshots_on_the_backend_give_the_same_state_as_the_events(url: str) -> None:
    async with process(url, snapshot_every=3, cache_size=0) as bus:
        await bus.dispatch(inventory.RegisterProduct("MUG-1", "Mug", Money.of("2.50", "EUR"), 1))
        for i in range(8):
            await bus.dispatch(inventory.ReserveStock("MUG-1", f"o{i}", 1))
            await bus.dispatch(inventory.ReplenishStock("MUG-1", 2))
        from_snapshot = await bus.repositories.inventory.load("inventory-MUG-1")
        assert from_snapshot.from_snapshot
        plain = await OrderRepositories.build(bus.store, cache_size=0).inventory.load(
            "inventory-MUG-1"
        )
        assert (from_snapshot.state, from_snapshot.version, from_snapshot.position) == (
            plain.state,
            plain.version,
            plain.position,
        )
        assert await bus.store.delete_snapshots() >= 1
        reloaded = await bus.repositories.inventory.load("inventory-MUG-1")
        assert (reloaded.state, reloaded.version) == (plain.state, plain.version)


async def test_stored_v1_events_read_back_upcast_on_the_backend(url: str) -> None:
    async with process(url) as bus:
        stream = "order-v1"
        await bus.store.append(
            stream,
            [
                NewEvent(
                    "OrderCreated",
                    {
                        "order_id": "v1",
                        "order_number": "ORD-2024-000001",
                        "customer_id": "c",
                        "customer_name": "G",
                        "customer_email": "g@example.com",
                        "currency": "EUR",
                        "shipping_address": {
                            "line1": "1",
                            "city": "L",
                            "postal_code": "1",
                            "country": "FR",
                            "line2": None,
                        },
                    },
                ),
                NewEvent(
                    "ItemAdded",
                    {"order_id": "v1", "sku": "MUG-1", "quantity": 2, "price": 0.1},
                    schema_version=1,
                ),
            ],
            expected_version=0,
        )
        loaded = await bus.repositories.orders.load(stream)
        assert loaded.state.order.total == Money.of("0.20", "EUR")


async def test_a_duplicate_delivery_that_loses_a_three_way_race_gets_the_winners_result(
    url: str,
) -> None:
    from dataclasses import replace
    from typing import Any

    from cairn.application import event_id_for
    from cairn.application.handlers import Services
    from cairn.application.messages import Envelope
    from cairn.orders.handlers import order_routes

    raced = [False]

    async def prepare(command: Any, state: Any, services: Services, envelope: Envelope) -> Any:
        if not raced[0]:  # the other delivery commits first, then a third writer appends
            raced[0] = True
            winner = NewEvent(
                "StockReplenished", {"sku": "MUG-1", "quantity": 5}, id=event_id_for("dup", 0)
            )
            await services.store.append(envelope.stream_id, [winner])
            await services.store.append(
                envelope.stream_id, [NewEvent("StockReplenished", {"sku": "MUG-1", "quantity": 1})]
            )
        return command

    store = await open_store(url, upcasters=domain_upcasters())
    try:
        routes = order_routes()
        routes[inventory.ReplenishStock] = replace(
            routes[inventory.ReplenishStock], prepare=prepare
        )
        bus = CommandBus(store, routes=routes, repositories=OrderRepositories.build(store))
        await bus.dispatch(inventory.RegisterProduct("MUG-1", "Mug", Money.of("1.00", "EUR"), 10))
        result = await bus.dispatch(
            inventory.ReplenishStock("MUG-1", 5), CommandContext(command_id="dup")
        )
        assert result.version == 3
        assert [e.id for e in result.events] == [event_id_for("dup", 0)]
        loaded = await OrderRepositories.build(store, cache_size=0).inventory.load(
            "inventory-MUG-1"
        )
        assert (loaded.version, loaded.state.on_hand) == (4, 16)
    finally:
        await store.close()
