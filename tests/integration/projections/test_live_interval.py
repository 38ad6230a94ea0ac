"""A live runner starts at most one batch transaction per ``live_interval``: events that arrive
meanwhile join the next batch, and the first event after a quiet spell is not held back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from cairn.orders.components import OrderProjections, build_projections
from cairn.projections import RunnerConfig
from cairn.projections.hooks import ChangedRows
from cairn.store.base import EventStore, RecordedEvent

from .scenario import register_product


@contextlib.asynccontextmanager
async def live(
    store: EventStore, store_url: str, interval: float
) -> AsyncIterator[OrderProjections]:
    engine = build_projections(store_url, store, config=RunnerConfig(live_interval=interval))
    task = asyncio.create_task(engine.run())
    try:
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.close()


def record_batches(engine: OrderProjections, name: str) -> list[list[int]]:
    """The positions of each batch the runner ``name`` applies from now on."""
    runner = engine.runner(name)
    batches: list[list[int]] = []
    apply = runner.apply

    async def recording(
        events: Sequence[RecordedEvent], version: int, *, live: bool
    ) -> ChangedRows:
        batches.append([e.position for e in events])
        return await apply(events, version, live=live)

    runner.apply = recording  # type: ignore[method-assign]
    return batches


async def test_events_appended_during_the_interval_are_applied_in_one_batch(
    store: EventStore, store_url: str
) -> None:
    async with live(store, store_url, interval=1.0) as engine:
        await register_product(store, "SKU-0", "Thing", "1.00")
        assert await engine.wait_for("inventory", await store.head_position(), timeout=5)
        batches = record_batches(engine, "inventory")

        for n in range(1, 4):  # three appends, each woken for, within the interval
            await register_product(store, f"SKU-{n}", "Thing", "1.00")
        head = await store.head_position()
        assert await engine.wait_for("inventory", head, timeout=5)

    assert batches == [[head - 2, head - 1, head]]


async def test_the_first_event_of_a_quiet_runner_is_applied_without_waiting_the_interval(
    store: EventStore, store_url: str
) -> None:
    async with live(store, store_url, interval=60.0) as engine:
        await engine.wait_for(0, timeout=5)
        position = await register_product(store, "SKU-1", "Thing", "1.00")

        assert await engine.wait_for("inventory", position, timeout=5)
