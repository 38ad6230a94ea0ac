"""Time travel for read models: a projection's rows as they were at a past global position,
replayed from the nearest save point (SPEC §17)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn.errors import NotFoundError
from cairn.orders.components import OrderProjections, build_projections
from cairn.orders.read_models.orders import ORDERS
from cairn.projections import RunnerConfig
from cairn.store.base import EventStore

from .scenario import create_order, place, register_product


@pytest.fixture
async def dense(store: EventStore, store_url: str) -> AsyncIterator[OrderProjections]:
    """An engine that makes a save point every 3 events and keeps 2 (small batches)."""
    config = RunnerConfig(
        batch_size=2,
        catch_up_batch_size=2,
        rebuild_batch_size=2,
        save_point_interval=3,
        save_point_retention=2,
        retry_backoff=0.001,
    )
    eng = build_projections(store_url, store, config=config)
    try:
        yield eng
    finally:
        await eng.close()


async def _live_rows(engine: OrderProjections) -> list[dict[str, Any]]:
    version = await engine.queries.version("orders")
    raw = await engine.db.fetchall(f"SELECT * FROM {ORDERS.name(version)} ORDER BY order_id")
    return [ORDERS.from_db(r) for r in raw]


async def test_an_order_reads_as_draft_at_a_position_before_it_was_placed(
    store: EventStore, engine: OrderProjections
) -> None:
    await register_product(store, "MUG-1", "Mug", "12.50", stock=3)
    oid = await create_order(store, items=[("MUG-1", "Mug", 1, "12.50")])
    before = await store.head_position()
    placed = await place(store, oid, "12.50")
    await engine.run_until_caught_up()

    then = await engine.as_of("orders", before)
    now = await engine.as_of("orders", placed)

    assert [(r["order_id"], r["status"]) for r in then.rows["orders_view"]] == [(oid, "draft")]
    assert [(r["order_id"], r["status"]) for r in now.rows["orders_view"]] == [(oid, "placed")]


async def test_rows_at_the_head_are_the_live_rows(
    store: EventStore, dense: OrderProjections
) -> None:
    await register_product(store, "MUG-1", "Mug", "2.00", stock=50)
    for n in range(6):
        oid = await create_order(store, f"c-{n % 2}", number=n, items=[("MUG-1", "Mug", 1, "2.00")])
        if n % 2:
            await place(store, oid, "2.00")
    await dense.run_until_caught_up()

    found = await dense.as_of("orders", await store.head_position())

    assert found.save_point > 0
    assert found.rows["orders_view"] == await _live_rows(dense)


async def test_every_past_position_replays_from_a_save_point_as_from_the_start(
    store: EventStore, store_url: str, dense: OrderProjections
) -> None:
    await register_product(store, "MUG-1", "Mug", "2.00", stock=50)
    for n in range(5):
        oid = await create_order(store, number=n, items=[("MUG-1", "Mug", 2, "2.00")])
        await place(store, oid, "4.00")
    await dense.run_until_caught_up()
    without = build_projections(store_url, store, config=RunnerConfig(save_point_interval=0))
    try:
        for position in range(0, await store.head_position() + 1):
            fast = await dense.as_of("orders", position)
            slow = await read_from_zero(without, position)
            assert fast.rows == slow, position
    finally:
        await without.close()


async def read_from_zero(engine: OrderProjections, position: int) -> dict[str, Any]:
    """The rows at ``position`` replayed from an empty model (no save point used)."""
    from cairn.projections.as_of import ReplayRows, _replay

    model = engine.runner("orders").model
    rows = ReplayRows({t.base: t for t in model.tables}, {})
    await _replay(engine.store, model, rows, 0, position)
    return {t.base: rows.table_rows(t.base) for t in model.tables}


async def test_save_points_are_made_as_the_projection_runs_and_kept_bounded(
    store: EventStore, dense: OrderProjections
) -> None:
    for n in range(10):
        await create_order(store, number=n)  # one event each
    await dense.run_until_caught_up()

    points = await dense.save_points("orders")

    assert len(points) == 2
    assert points[-1].position >= 10 - 3
    assert points[1].position - points[0].position >= 3
    tables = await _copy_tables(dense)
    assert tables == sorted(f"orders_view_v1_at_{p.position}" for p in points)


async def _copy_tables(engine: OrderProjections) -> list[str]:
    if engine.db.dialect.value == "postgres":
        sql = "SELECT tablename AS name FROM pg_tables"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    names = [str(r["name"]) for r in await engine.db.fetchall(sql)]
    return sorted(n for n in names if n.startswith("orders_view_v") and "_at_" in n)


async def test_a_rebuild_makes_save_points_of_its_own_version_and_drops_the_old_ones(
    store: EventStore, dense: OrderProjections
) -> None:
    for n in range(8):
        await create_order(store, number=n)
    await dense.run_until_caught_up()
    await dense.rebuild("orders")
    for n in range(8, 12):
        await create_order(store, number=n)
    await dense.run_until_caught_up()

    points = await dense.save_points("orders")

    assert {p.version for p in points} == {2}
    assert len(points) == 2


async def test_an_unknown_projection_is_not_found(engine: OrderProjections) -> None:
    with pytest.raises(NotFoundError):
        await engine.as_of("nope", 1)
