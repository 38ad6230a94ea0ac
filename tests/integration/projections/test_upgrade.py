"""A database whose projections ran before their position moved to the one checkpoint table
resumes where it was once the engine's migrations have run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import cairn
from cairn.orders.components import build_projections
from cairn.orders.read_models.inventory import InventoryModel
from cairn.projections.schema import PROJECTIONS
from cairn.sql.checkpoints import CHECKPOINTS, load_checkpoint
from cairn.sql.factory import open_database
from cairn.store.base import EventStore

from .scenario import register_product

#: The engine's tables as cairn created them from code before they were .sql migrations. A copy
#: of migration 0001 on purpose: it pins what old databases hold, whatever the file becomes.
_OLD_DDL = (
    """CREATE TABLE IF NOT EXISTS projection_checkpoints (
        name TEXT NOT NULL,
        version BIGINT NOT NULL,
        position BIGINT NOT NULL,
        state TEXT NOT NULL,
        owner TEXT,
        errors BIGINT NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (name, version))""",
    """CREATE TABLE IF NOT EXISTS read_model_versions (
        projection TEXT PRIMARY KEY,
        active_version BIGINT NOT NULL,
        rebuilding_version BIGINT,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS projection_parked (
        id TEXT PRIMARY KEY,
        projection TEXT NOT NULL,
        version BIGINT NOT NULL,
        position BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        parked_at TEXT NOT NULL)""",
)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
async def store(url: str) -> AsyncIterator[EventStore]:
    async with cairn.open_store(url) as s:
        yield s


async def _old_engine_was_at(url: str, position: int) -> None:
    """What the previous version left: its tables, the inventory projection at ``position``."""
    db = open_database(url)
    try:
        sqlite = url.startswith("sqlite")
        await db.ensure_schema(s.replace("BIGINT", "INTEGER") if sqlite else s for s in _OLD_DDL)
        for sql in InventoryModel().ddl(1, db.dialect):
            await db.execute(sql)
        await db.execute(
            "INSERT INTO read_model_versions (projection, active_version, updated_at) "
            "VALUES ('inventory', 1, '2024-01-01T00:00:00+00:00')"
        )
        await db.execute(
            "INSERT INTO projection_checkpoints "
            "(name, version, position, state, owner, errors, last_error, updated_at) "
            "VALUES ('inventory', 1, ?, 'running', 'old-host:1', 2, 'boom', "
            "'2024-01-01T00:00:00+00:00')",
            (position,),
        )
    finally:
        await db.close()


async def test_a_projection_resumes_at_the_position_the_old_table_held(
    store: EventStore, url: str
) -> None:
    before = await register_product(store, "OLD-1", "Applied before the upgrade", "1.00", 3)
    await _old_engine_was_at(url, before)
    await register_product(store, "NEW-1", "Appended after", "2.00", 5)

    engine = build_projections(url, store, models=[InventoryModel()])
    try:
        await engine.migrate()
        assert await load_checkpoint(engine.db, "projection:inventory:v1") == before
        [status] = await engine.status()
        assert (status.position, status.errors, status.last_error) == (before, 2, "boom")
        await engine.run_until_caught_up()

        # Resumed at P: what came before it is not applied again (the old tables held it,
        # here they are empty to tell), what came after is.
        assert await engine.queries.get_inventory("OLD-1") is None
        assert (await engine.queries.get_inventory("NEW-1") or {})["on_hand"] == 5
        assert await engine.position_of("inventory") == await store.head_position()
        rows = await engine.db.fetchall("SELECT * FROM projection_status")
        assert "position" not in rows[0]
    finally:
        await engine.close()


async def test_migrating_an_upgraded_database_again_changes_nothing(
    store: EventStore, url: str
) -> None:
    before = await register_product(store, "OLD-1", "Applied before the upgrade", "1.00")
    await _old_engine_was_at(url, before)
    engine = build_projections(url, store, models=[InventoryModel()])
    try:
        await engine.migrate()
        assert await engine.db.migrate(CHECKPOINTS, PROJECTIONS) == []
        assert await engine.position_of("inventory") == before
    finally:
        await engine.close()
