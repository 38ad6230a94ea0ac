"""Rebuild: replay into fresh tables while queries keep answering, then swap."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import Any

import pytest

from cairn.errors import ApplicationError
from cairn.orders.components import OrderProjections, build_projections
from cairn.projections import RunnerConfig
from cairn.store.base import EventStore, RecordedEvent

from .read_model_dump import dump
from .scenario import create_order, place, register_product


async def test_rebuild_swaps_to_new_tables_with_the_same_content(
    store: EventStore, engine: OrderProjections
) -> None:
    await register_product(store, "MUG-1", "Mug", "12.50", stock=3)
    for n in range(5):
        oid = await create_order(
            store, f"c-{n % 2}", number=n, items=[("MUG-1", "Mug", 1, "12.50")]
        )
        await place(store, oid, "12.50")
    await engine.run_until_caught_up()
    before = await dump(engine)
    calls: list[tuple[int, int]] = []

    versions = {
        name: await engine.rebuild(name, progress=lambda d, t: calls.append((d, t)))
        for name in engine.names
    }

    assert versions == {"orders": 2, "inventory": 2, "customers": 2, "analytics": 2}
    assert await dump(engine) == before
    head = await store.head_position()
    assert calls[-1] == (head, head)
    status = {s.name: s for s in await engine.status()}
    assert status["orders"].version == 2
    assert status["orders"].state == "stopped"
    assert status["orders"].lag_events == 0


async def test_a_second_rebuild_drops_the_oldest_tables_and_keeps_answering(
    store: EventStore, engine: OrderProjections
) -> None:
    oid = await create_order(store)
    await engine.run_until_caught_up()
    await engine.rebuild("orders")
    await engine.rebuild("orders")
    assert await engine.queries.version("orders") == 3
    assert (await engine.queries.get_order(oid) or {})["order_id"] == oid
    assert await engine.db.fetchall(
        "SELECT version FROM projection_status WHERE name = 'orders' ORDER BY version"
    ) in ([{"version": 2}, {"version": 3}],)


async def test_queries_never_fail_or_come_back_empty_during_a_rebuild_under_live_load(
    store: EventStore, engine: OrderProjections
) -> None:
    await register_product(store, "MUG-1", "Mug", "2.00", stock=100)
    known = await create_order(store, "c-1", number=1, items=[("MUG-1", "Mug", 1, "2.00")])
    for n in range(150):
        await create_order(store, f"c-{n % 7}", number=n + 2, items=[("MUG-1", "Mug", 1, "2.00")])
    await engine.run_until_caught_up()
    engine.config.rebuild_batch_size = 20  # many small swaps-in-waiting: more interleaving
    live = asyncio.create_task(engine.run())
    stop = asyncio.Event()
    failures: list[str] = []
    answers = 0

    async def query_forever() -> None:
        nonlocal answers
        while not stop.is_set():
            try:
                order = await engine.queries.get_order(known)
                page = await engine.queries.list_orders(limit=5)
                inv = await engine.queries.get_inventory("MUG-1")
                if order is None or not page.orders or inv is None:
                    failures.append("empty answer")
                answers += 1
            except Exception as exc:
                failures.append(repr(exc))
            await asyncio.sleep(0)

    async def write_forever() -> None:
        n = 1000
        while not stop.is_set():
            await create_order(store, "c-live", number=n)
            n += 1
            await asyncio.sleep(0.005)

    readers = [asyncio.create_task(query_forever()) for _ in range(2)]
    writer = asyncio.create_task(write_forever())
    try:
        await engine.rebuild("orders")
        await engine.rebuild("inventory")
    finally:
        stop.set()
        await asyncio.gather(*readers, writer)
        head = await store.head_position()
        caught_up = await engine.wait_for(head, timeout=10)
        live.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live

    assert failures == []
    assert answers > 10
    assert caught_up
    assert await engine.queries.version("orders") == 2
    page = await engine.queries.list_orders(customer_id="c-live", limit=500)
    live_orders = await store.read_all(after=0, limit=100_000)
    assert len(page.orders) == sum(
        1 for e in live_orders if e.type == "OrderCreated" and e.data["customer_id"] == "c-live"
    )


async def test_a_rebuild_swaps_even_when_the_live_runner_gets_ahead_before_every_swap(
    store: EventStore, engine: OrderProjections, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before each swap an order is written and the live runner applies it, if it can: what a
    slow host under steady writes does by chance, every time (the rebuild chased it forever)."""
    await register_product(store, "MUG-1", "Mug", "2.00", stock=100)
    for n in range(30):
        await create_order(store, f"c-{n % 7}", number=n, items=[("MUG-1", "Mug", 1, "2.00")])
    await engine.run_until_caught_up()
    live = asyncio.create_task(engine.run())
    rebuild_module = importlib.import_module("cairn.projections.rebuild")
    swap = rebuild_module._try_swap
    numbers = iter(range(1000, 2000))

    async def swap_after_a_live_batch(*args: Any) -> bool:
        await create_order(store, "c-live", number=next(numbers))
        await engine.wait_for(await store.head_position(), timeout=0.5)
        return bool(await swap(*args))

    monkeypatch.setattr(rebuild_module, "_try_swap", swap_after_a_live_batch)
    try:
        version = await asyncio.wait_for(engine.rebuild("orders"), timeout=20)
        caught_up = await engine.wait_for(await store.head_position(), timeout=10)
    finally:
        live.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live

    assert version == 2
    assert caught_up
    page = await engine.queries.list_orders(customer_id="c-live", limit=500)
    written = [e for e in await store.read_all(after=0, limit=10_000) if e.type == "OrderCreated"]
    assert len(page.orders) == sum(1 for e in written if e.data["customer_id"] == "c-live") > 3


async def _rebuild_reaches(
    engine: OrderProjections, name: str, *, done: int, timeout: float = 10.0
) -> Any:
    """The projection's status once its rebuild has folded ``done`` events (polled: a fixed
    sleep is a guess that a loaded machine breaks)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = {s.name: s for s in await engine.status()}[name]
        if status.state == "rebuilding" and status.rebuild_done >= done:
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"rebuild of {name} never reached {done}: {status}")
        await asyncio.sleep(0.01)


async def test_a_second_rebuild_of_the_same_projection_is_refused_while_one_runs(
    store: EventStore, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = build_projections(store_url, store, config=RunnerConfig(rebuild_batch_size=1))
    gate = asyncio.Event()
    read_all = store.read_all

    async def gated(after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        if after > 0:  # the rebuild, past its first event, waits here (outside any transaction)
            await gate.wait()
        return await read_all(after=after, limit=limit)

    try:
        for n in range(3):
            await create_order(store, number=n)
        monkeypatch.setattr(store, "read_all", gated)
        first = asyncio.create_task(engine.rebuild("orders"))
        status = await _rebuild_reaches(engine, "orders", done=1)
        with pytest.raises(ApplicationError) as refused:
            await engine.rebuild("orders")
        gate.set()
        assert await first == 2
    finally:
        gate.set()
        await engine.close()
    assert refused.value.code == "projection.rebuild_running"
    assert (status.state, status.rebuild_done, status.rebuild_total) == ("rebuilding", 1, 3)
