"""The runner: checkpoints, live follow, read-your-writes, lag, parking and retry."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from cairn.orders.components import OrderProjections, build_projections
from cairn.orders.read_models import InventoryModel, Rows
from cairn.projections import RunnerConfig
from cairn.store.base import EventStore, NewEvent, RecordedEvent

from .scenario import create_order, item_added, register_product


@contextlib.asynccontextmanager
async def running(engine: OrderProjections) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(engine.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_checkpoint_moves_past_events_the_projection_ignores(
    store: EventStore, engine: OrderProjections
) -> None:
    await store.append("audit-1", [NewEvent("SomethingElse", {}) for _ in range(3)])
    await register_product(store, "MUG-1", "Mug", "1.00")
    await engine.run_until_caught_up()

    positions = {s.name: s.position for s in await engine.status()}

    assert positions == {"orders": 4, "inventory": 4, "customers": 4, "analytics": 4}


async def test_catching_up_reads_larger_batches_and_live_reads_small_ones_again(
    store: EventStore, store_url: str
) -> None:
    for n in range(6):
        await register_product(store, f"SKU-{n}", "Thing", "1.00", stock=1)  # 12 events
    config = RunnerConfig(batch_size=2, catch_up_batch_size=5)
    engine = build_projections(store_url, store, config=config)
    runner = engine.runner("inventory")
    asked: list[int] = []
    read = runner.reader.read

    async def recording_read(after: int, limit: int) -> list[RecordedEvent]:
        asked.append(limit)
        return await read(after, limit)

    runner.reader.read = recording_read  # type: ignore[method-assign]
    try:
        await engine.run_until_caught_up("inventory")
        await register_product(store, "SKU-6", "Thing", "1.00")
        await engine.run_until_caught_up("inventory")
        on_hand = await engine.queries.get_inventory("SKU-5")
    finally:
        await engine.close()

    # 2 (full) → 5, 5 (full: all 12 events) → 5 (empty: live); then 2 (short) and 2 (empty).
    assert asked == [2, 5, 5, 5, 2, 2]
    assert (on_hand or {}).get("on_hand") == 1


async def test_the_process_gc_thresholds_are_raised_only_while_catching_up(
    store: EventStore, store_url: str
) -> None:
    await store.append("audit-1", [NewEvent("SomethingElse", {}) for _ in range(5)])
    engine = build_projections(store_url, store, config=RunnerConfig(batch_size=2))
    runner = engine.runner("inventory")
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    step = runner.step

    async def recording_step() -> int:
        count = await step()
        seen.append(gc.get_threshold())
        return count

    runner.step = recording_step  # type: ignore[method-assign]
    try:
        await engine.run_until_caught_up("inventory")
    finally:
        await engine.close()

    assert seen[0][0] > before[0]  # a full batch: catching up
    assert seen[-1] == before  # the short last batch: live again
    assert gc.get_threshold() == before


async def test_live_runner_makes_a_new_order_visible_and_wait_for_reports_it(
    store: EventStore, engine: OrderProjections
) -> None:
    async with running(engine):
        await engine.wait_for(0, timeout=5)
        oid = await create_order(store)
        head = await store.head_position()
        assert await engine.wait_for("orders", head, timeout=5)
        assert await engine.wait_for(head, timeout=5)
        order = await engine.queries.get_order(oid)
    assert order is not None
    assert order["status"] == "draft"


async def test_wait_for_a_position_not_reached_returns_false_after_the_timeout(
    store: EventStore, engine: OrderProjections
) -> None:
    await create_order(store)
    assert not await engine.wait_for("orders", 1, timeout=0.05)


async def test_status_reports_lag_in_events_and_seconds_then_none_once_caught_up(
    store: EventStore, engine: OrderProjections
) -> None:
    for n in range(3):
        await create_order(store, number=n)
    await asyncio.sleep(0.05)

    before = {s.name: s for s in await engine.status()}
    await engine.run_until_caught_up()
    after = {s.name: s for s in await engine.status()}

    assert before["orders"].lag_events == 3
    assert before["orders"].lag_seconds >= 0.05
    assert before["orders"].state == "stopped"
    assert (after["orders"].lag_events, after["orders"].lag_seconds) == (0, 0.0)
    assert after["orders"].position == 3


async def test_status_while_running_says_running_with_this_process_as_owner(
    store: EventStore, engine: OrderProjections
) -> None:
    await create_order(store)
    async with running(engine):
        assert await engine.wait_for(1, timeout=5)
        status = {s.name: s for s in await engine.status()}
    assert status["orders"].state == "running"
    assert status["orders"].owner == engine.owner


class _PoisonInventory(InventoryModel):
    """Fails on every event of SKU ``POISON``; fails the first ``flaky`` times on ``FLAKY``."""

    def __init__(self, flaky: int = 0) -> None:
        self.flaky = flaky
        self.calls = 0

    async def apply(self, rows: Rows, event: RecordedEvent) -> None:
        sku = event.data.get("sku")
        if sku == "POISON":
            raise ValueError("poison pill")
        if sku == "FLAKY" and self.flaky > 0:
            self.flaky -= 1
            raise ConnectionError("flaky")
        await super().apply(rows, event)


async def _engine_with(store: EventStore, url: str, model: InventoryModel) -> OrderProjections:
    return build_projections(
        url, store, models=[model], config=RunnerConfig(retry_backoff=0.001, handler_attempts=3)
    )


async def test_a_failing_handler_is_retried_and_succeeds_without_parking(
    store: EventStore, store_url: str
) -> None:
    engine = await _engine_with(store, store_url, _PoisonInventory(flaky=2))
    try:
        await register_product(store, "FLAKY", "Flaky", "1.00", stock=5)
        await engine.run_until_caught_up()
        assert await engine.parked("inventory") == []
        assert (await engine.queries.get_inventory("FLAKY") or {})["on_hand"] == 5
        status = (await engine.status())[0]
        assert status.errors == 2
    finally:
        await engine.close()


async def test_a_poison_event_is_parked_with_its_error_and_the_projection_goes_on(
    store: EventStore, store_url: str
) -> None:
    engine = await _engine_with(store, store_url, _PoisonInventory())
    try:
        await register_product(store, "MUG-1", "Mug", "1.00")
        bad = await register_product(store, "POISON", "Bad", "1.00")
        await register_product(store, "TEA-1", "Tea", "1.00", stock=4)
        await engine.run_until_caught_up()

        parked = await engine.parked("inventory")
        status = (await engine.status())[0]

        assert [(p.position, p.event_type, p.stream_id) for p in parked] == [
            (bad, "ProductRegistered", "inventory-POISON")
        ]
        assert "poison pill" in parked[0].error
        assert parked[0].attempts == 3
        assert (await engine.queries.get_inventory("TEA-1") or {})["on_hand"] == 4
        assert await engine.queries.get_inventory("POISON") is None
        assert (status.parked, status.position, status.lag_events) == (1, 4, 0)
        assert status.last_error is not None
        assert "poison pill" in status.last_error
    finally:
        await engine.close()


async def test_retrying_a_parked_event_applies_it_once_its_cause_is_fixed(
    store: EventStore, store_url: str
) -> None:
    engine = build_projections(store_url, store, config=RunnerConfig(retry_backoff=0.001))
    try:
        # An item for an order the projection has never seen: parked.
        orphan = "5f1c0000-0000-4000-8000-000000000001"
        await store.append(f"order-{orphan}", [item_added(orphan, "MUG-1", "Mug", 2, "3.00")])
        await engine.run_until_caught_up()
        assert len(await engine.parked("orders")) == 1
        still = await engine.retry_parked("orders")
        assert still == {"retried": 0, "failed": 1}
        assert (await engine.parked("orders"))[0].attempts == 4

        await create_order(store, order_id=orphan)  # now the order exists in the view
        await engine.run_until_caught_up()
        result = await engine.retry_parked("orders", position=1)

        assert result == {"retried": 1, "failed": 0}
        assert await engine.parked("orders") == []
        order = await engine.queries.get_order(orphan)
        assert order is not None
        assert [(i["sku"], i["quantity"]) for i in order["items"]] == [("MUG-1", 2)]
    finally:
        await engine.close()
