"""Repository: load from events or from the latest snapshot plus later events; snapshots are an
optimisation only; temporal loads by version and by instant."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from app_fixtures import memory_store, new_order, register_mug
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.application import EveryNEvents, SnapshotWhen
from cairn.errors import CairnError, ConcurrencyError
from cairn.orders.domain import inventory, orders
from cairn.orders.domain.money import Money
from cairn.orders.handlers import order_command_bus
from cairn.orders.repositories import OrderRepositories
from cairn.store import EventStore


async def test_a_stream_without_events_loads_as_the_initial_state() -> None:
    store = await memory_store()
    loaded = await OrderRepositories.build(store).orders.load("order-nope")
    assert (loaded.state, loaded.version, loaded.position) == (orders.NoOrder(), 0, 0)


async def test_the_state_cache_keeps_the_most_recently_used_streams() -> None:
    store = await memory_store()
    repos = OrderRepositories.build(store, cache_size=2)
    await register_mug(order_command_bus(store, repositories=repos), stock=10)
    repository = repos.orders
    for stream in ("order-a", "order-b"):
        await repository.load(stream)
    await repository.load("order-a")
    await repository.load("order-c")
    assert [repository.peek(s) is not None for s in ("order-a", "order-b", "order-c")] == [
        True,
        False,
        True,
    ]


async def test_saving_appends_at_the_loaded_version_and_snapshots_per_policy() -> None:
    store = await memory_store()
    repos = OrderRepositories.build(store, snapshots=EveryNEvents(2), cache_size=0)
    bus = order_command_bus(store, repositories=repos)
    await register_mug(bus, stock=10)  # versions 1-2: crosses 2 → snapshot at 2
    snapshot = await store.load_snapshot("inventory-MUG-1")
    assert snapshot is not None
    assert snapshot.version == 2
    await bus.dispatch(inventory.ReplenishStock("MUG-1", 1))  # version 3: no new snapshot
    assert (await store.load_snapshot("inventory-MUG-1")).version == 2  # type: ignore[union-attr]
    loaded = await repos.inventory.load("inventory-MUG-1")
    assert loaded.from_snapshot
    assert loaded.version == 3
    assert loaded.state.on_hand == 11


async def test_a_snapshot_taken_under_another_state_schema_is_ignored() -> None:
    store = await memory_store()
    repos = OrderRepositories.build(store, snapshots=EveryNEvents(1), cache_size=0)
    await register_mug(order_command_bus(store, repositories=repos), stock=10)
    snapshot = await store.load_snapshot("inventory-MUG-1")
    assert snapshot is not None
    bogus = dict(snapshot.state)
    bogus["state"] = {
        "type": "Product",
        "data": {**snapshot.state["state"]["data"], "on_hand": 999},
    }
    await store.save_snapshot(replace(snapshot, state=bogus, schema="inventory:old-shape"))
    loaded = await repos.inventory.load("inventory-MUG-1")
    assert not loaded.from_snapshot
    assert loaded.state.on_hand == 10


async def test_an_undecodable_snapshot_is_ignored() -> None:
    store = await memory_store()
    repos = OrderRepositories.build(store, snapshots=EveryNEvents(1), cache_size=0)
    await register_mug(order_command_bus(store, repositories=repos), stock=10)
    snapshot = await store.load_snapshot("inventory-MUG-1")
    assert snapshot is not None
    await store.save_snapshot(replace(snapshot, state={"state": {"type": "Gone", "data": {}}}))
    loaded = await repos.inventory.load("inventory-MUG-1")
    assert loaded.state.on_hand == 10


async def test_a_strategy_decides_when_to_snapshot() -> None:
    store = await memory_store()
    only_big = SnapshotWhen(lambda _old, _new, state: getattr(state, "on_hand", 0) >= 100)
    bus = order_command_bus(store, repositories=OrderRepositories.build(store, snapshots=only_big))
    await register_mug(bus, stock=10)
    assert await store.load_snapshot("inventory-MUG-1") is None
    await bus.dispatch(inventory.ReplenishStock("MUG-1", 90))
    assert await store.load_snapshot("inventory-MUG-1") is not None


async def test_the_state_at_a_version_is_folded_from_the_events() -> None:
    store = await memory_store()
    bus = order_command_bus(
        store, repositories=OrderRepositories.build(store, snapshots=EveryNEvents(1))
    )
    await register_mug(bus, stock=10)
    for _ in range(3):
        await bus.dispatch(inventory.ReplenishStock("MUG-1", 5))
    past = await bus.repositories.inventory.load_at("inventory-MUG-1", version=3)
    assert (past.version, past.state.on_hand) == (3, 15)


async def test_the_state_as_of_an_instant_ignores_later_events() -> None:
    store = await memory_store()
    bus = order_command_bus(store)
    await register_mug(bus, stock=10)
    await asyncio.sleep(0.005)
    instant = datetime.now(UTC)
    await asyncio.sleep(0.005)
    await bus.dispatch(inventory.ReplenishStock("MUG-1", 5))
    past = await bus.repositories.inventory.load_at("inventory-MUG-1", until=instant)
    now = await bus.repositories.inventory.load("inventory-MUG-1")
    assert (past.state.on_hand, now.state.on_hand) == (10, 15)


# --- snapshots change no result (property) ---------------------------------------------------

ORDER_IDS = [str(uuid.UUID(int=i)) for i in range(1, 4)]

steps = st.one_of(
    st.builds(lambda q: inventory.ReplenishStock("MUG-1", q), st.integers(1, 20)),
    st.builds(
        lambda o, q: inventory.ReserveStock("MUG-1", o, q),
        st.sampled_from(ORDER_IDS),
        st.integers(1, 15),
    ),
    st.builds(lambda o: inventory.ReleaseStock("MUG-1", o), st.sampled_from(ORDER_IDS)),
    st.builds(lambda o: inventory.CommitStock("MUG-1", o), st.sampled_from(ORDER_IDS)),
    st.builds(lambda q: orders.AddItem(ORDER_IDS[0], "MUG-1", q), st.integers(1, 3)),
    st.just(orders.RemoveItem(ORDER_IDS[0], "MUG-1")),
    st.just(orders.PlaceOrder(ORDER_IDS[0], "tok_ok")),
    st.just(orders.CancelOrder(ORDER_IDS[0], "x")),
)


async def run(
    store: EventStore, every: int | None, commands: list[Any], cache_size: int = 0
) -> list[Any]:
    policy = EveryNEvents(every) if every else None
    repos = OrderRepositories.build(store, snapshots=policy, cache_size=cache_size)
    bus = order_command_bus(store, repositories=repos)
    outcomes: list[Any] = []
    await register_mug(bus, stock=5, price="2.50")
    await bus.dispatch(new_order(ORDER_IDS[0]))
    for command in commands:
        try:
            result = await bus.dispatch(command)
            outcomes.append([(e.type, e.data) for e in result.events])
        except CairnError as error:
            outcomes.append(error.code)
    return outcomes


async def states(store: EventStore) -> list[Any]:
    repos = OrderRepositories.build(store, cache_size=0)  # no snapshots, no cache: the reference
    return [
        (await repos.inventory.load("inventory-MUG-1")).state,
        (await repos.orders.load(f"order-{ORDER_IDS[0]}")).state,
    ]


@settings(max_examples=40, deadline=None)
@given(commands=st.lists(steps, max_size=25), every=st.integers(1, 4))
def test_deleting_every_snapshot_changes_no_result(commands: list[Any], every: int) -> None:
    async def scenario() -> None:
        with_snapshots, without, cached = [await memory_store() for _ in range(3)]
        reference = await run(without, None, commands)
        assert await run(with_snapshots, every, commands) == reference
        assert await run(cached, every, commands, cache_size=100) == reference
        assert await states(cached) == await states(without)
        repos = OrderRepositories.build(with_snapshots, snapshots=EveryNEvents(every), cache_size=0)
        from_snapshots = [
            (await repos.inventory.load("inventory-MUG-1")).state,
            (await repos.orders.load(f"order-{ORDER_IDS[0]}")).state,
        ]
        assert from_snapshots == await states(without)
        await with_snapshots.delete_snapshots()
        assert await states(with_snapshots) == from_snapshots

    asyncio.run(scenario())


async def test_snapshot_now_records_the_current_state() -> None:
    store = await memory_store()
    bus = order_command_bus(store)
    await register_mug(bus, stock=3)
    snapshot = await bus.repositories.inventory.snapshot_now("inventory-MUG-1")
    assert snapshot is not None
    assert snapshot.version == 2
    assert await bus.repositories.inventory.snapshot_now("inventory-NOPE") is None


async def test_money_survives_a_snapshot_exactly() -> None:
    store = await memory_store()
    repos = OrderRepositories.build(store, snapshots=EveryNEvents(1), cache_size=0)
    bus = order_command_bus(store, repositories=repos)
    await register_mug(bus, price="0.10")
    loaded = await repos.inventory.load("inventory-MUG-1")
    assert loaded.from_snapshot
    assert loaded.state.unit_price == Money.of("0.10", "EUR")


async def test_a_cached_state_still_sees_events_written_by_another_process() -> None:
    store = await memory_store()
    mine, theirs = (
        order_command_bus(store),
        order_command_bus(store),
    )  # separate repositories and caches
    await register_mug(mine, stock=10)
    assert (await mine.repositories.inventory.load("inventory-MUG-1")).state.on_hand == 10
    await theirs.dispatch(inventory.ReplenishStock("MUG-1", 5))
    loaded = await mine.repositories.inventory.load("inventory-MUG-1")
    assert (loaded.version, loaded.state.on_hand) == (3, 15)


async def test_a_stale_cache_never_loses_another_writers_update() -> None:
    store = await memory_store()
    mine, theirs = order_command_bus(store), order_command_bus(store)
    await register_mug(mine, stock=10)
    stale = await mine.repositories.inventory.load("inventory-MUG-1")
    await theirs.dispatch(inventory.ReplenishStock("MUG-1", 5))
    with pytest.raises(ConcurrencyError):
        await mine.repositories.inventory.save(stale, [inventory.StockReplenished("MUG-1", 1)])
    await mine.dispatch(inventory.ReplenishStock("MUG-1", 1))
    fresh = await OrderRepositories.build(store, cache_size=0).inventory.load("inventory-MUG-1")
    assert fresh.state.on_hand == 16
