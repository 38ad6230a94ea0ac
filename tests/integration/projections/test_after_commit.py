"""The after-commit hook an application passes per read model: called with the changed rows
after each live batch commits, never during a rebuild, never for a batch that changed nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from cairn.orders.read_models.inventory import INVENTORY, InventoryModel
from cairn.projections import ChangedRows, ProjectionEngine, RunnerConfig
from cairn.projections.read_model import Key
from cairn.sql.database import Row
from cairn.store.base import EventStore

from .scenario import create_order, inventory_event, register_product

MUG = (INVENTORY.base, ("MUG-1",))


@dataclass
class RecordingHook:
    calls: list[tuple[int, dict[tuple[str, Key], Row | None]]] = field(default_factory=list)

    async def after_commit(self, version: int, changed: ChangedRows) -> None:
        self.calls.append((version, dict(changed)))


@pytest.fixture
def hook() -> RecordingHook:
    return RecordingHook()


@pytest.fixture
async def engine(
    store: EventStore, store_url: str, hook: RecordingHook
) -> AsyncIterator[ProjectionEngine]:
    eng = ProjectionEngine(
        store,
        store_url,
        [InventoryModel()],
        config=RunnerConfig(),
        after_commit={"inventory": hook},
    )
    try:
        yield eng
    finally:
        await eng.close()


async def test_the_hook_gets_the_rows_of_each_live_commit(
    store: EventStore, engine: ProjectionEngine, hook: RecordingHook
) -> None:
    await register_product(store, "MUG-1", "Mug", "2.00", stock=4)
    await engine.run_until_caught_up()
    [(version, changed)] = hook.calls
    assert version == 1
    assert (changed[MUG] or {})["on_hand"] == 4

    await inventory_event(store, "StockReplenished", "MUG-1", quantity=1)
    await engine.run_until_caught_up()
    assert len(hook.calls) == 2
    assert (hook.calls[-1][1][MUG] or {})["on_hand"] == 5


async def test_a_batch_that_changes_nothing_does_not_call_the_hook(
    store: EventStore, engine: ProjectionEngine, hook: RecordingHook
) -> None:
    await create_order(store)  # no inventory event: the projection only moves its checkpoint
    await engine.run_until_caught_up()
    assert hook.calls == []
    assert await engine.position_of("inventory") == await store.head_position()


async def test_a_rebuild_never_calls_the_hook_and_live_commits_go_on_after_the_swap(
    store: EventStore, engine: ProjectionEngine, hook: RecordingHook
) -> None:
    await register_product(store, "MUG-1", "Mug", "2.00", stock=4)
    await engine.run_until_caught_up()
    hook.calls.clear()

    assert await engine.rebuild("inventory") == 2
    assert hook.calls == []

    await inventory_event(store, "StockReplenished", "MUG-1", quantity=1)
    await engine.run_until_caught_up()
    [(version, changed)] = hook.calls
    assert version == 2
    assert MUG in changed


def test_a_hook_for_an_unknown_projection_is_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="unknown projections"):
        ProjectionEngine(
            store, "memory://", [InventoryModel()], after_commit={"x": RecordingHook()}
        )
