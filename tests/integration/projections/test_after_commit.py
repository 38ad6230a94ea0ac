"""The after-commit hook an application passes per read model: called with the changed rows
after each live batch commits, never during a rebuild, never for a batch that changed nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from cairn.orders.read_models.inventory import INVENTORY, InventoryModel
from cairn.projections import ChangedRows, ProjectionEngine, RunnerConfig
from cairn.projections.read_model import Key
from cairn.sql.database import Row
from cairn.store.base import EventStore

from .scenario import create_order, inventory_event, register_product


@dataclass
class RecordingHook:
    calls: list[tuple[int, dict[tuple[str, Key], Row | None]]] = field(default_factory=list)

    async def after_commit(self, version: int, changed: ChangedRows) -> None:
        self.calls.append((version, dict(changed)))


def _engine(store: EventStore, url: str, hook: RecordingHook) -> ProjectionEngine:
    return ProjectionEngine(
        store, url, [InventoryModel()], config=RunnerConfig(), after_commit={"inventory": hook}
    )


async def test_the_hook_gets_the_rows_of_each_live_commit(
    store: EventStore, store_url: str
) -> None:
    hook = RecordingHook()
    engine = _engine(store, store_url, hook)
    try:
        await register_product(store, "MUG-1", "Mug", "2.00", stock=4)
        await engine.run_until_caught_up()
        [(version, changed)] = hook.calls
        assert version == 1
        row = changed[(INVENTORY.base, ("MUG-1",))]
        assert (row or {})["on_hand"] == 4

        await inventory_event(store, "StockReplenished", "MUG-1", quantity=1)
        await engine.run_until_caught_up()
        assert len(hook.calls) == 2
        assert (hook.calls[-1][1][(INVENTORY.base, ("MUG-1",))] or {})["on_hand"] == 5
    finally:
        await engine.close()


async def test_a_batch_that_changes_nothing_does_not_call_the_hook(
    store: EventStore, store_url: str
) -> None:
    hook = RecordingHook()
    engine = _engine(store, store_url, hook)
    try:
        await create_order(store)  # no inventory event: the projection only moves its checkpoint
        await engine.run_until_caught_up()
        assert hook.calls == []
        assert await engine.position_of("inventory") == await store.head_position()
    finally:
        await engine.close()


async def test_a_rebuild_never_calls_the_hook_and_live_commits_go_on_after_the_swap(
    store: EventStore, store_url: str
) -> None:
    hook = RecordingHook()
    engine = _engine(store, store_url, hook)
    try:
        await register_product(store, "MUG-1", "Mug", "2.00", stock=4)
        await engine.run_until_caught_up()
        hook.calls.clear()

        assert await engine.rebuild("inventory") == 2
        assert hook.calls == []

        await inventory_event(store, "StockReplenished", "MUG-1", quantity=1)
        await engine.run_until_caught_up()
        [(version, changed)] = hook.calls
        assert version == 2
        assert (INVENTORY.base, ("MUG-1",)) in changed
    finally:
        await engine.close()
