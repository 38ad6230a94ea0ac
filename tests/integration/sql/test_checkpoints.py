"""The one checkpoint table and component migrations through the Database, on both dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cairn.sql.checkpoints import CHECKPOINTS, load_checkpoint, save_checkpoint
from cairn.sql.database import Database
from cairn.sql.factory import open_database


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    database = open_database(url)
    try:
        yield database
    finally:
        await database.close()


async def test_a_component_schema_is_applied_once(db: Database) -> None:
    assert await db.migrate(CHECKPOINTS) == ["checkpoints.0001_checkpoints"]
    assert await db.migrate(CHECKPOINTS) == []


async def test_a_consumer_that_never_saved_starts_at_zero(db: Database) -> None:
    await db.migrate(CHECKPOINTS)
    assert await load_checkpoint(db, "projection:orders:v1") == 0


async def test_a_saved_checkpoint_reads_back_and_moves_forward(db: Database) -> None:
    await db.migrate(CHECKPOINTS)
    async with db.transaction() as tx:
        await save_checkpoint(tx, "relay:nats:cairn.events", 7)
    async with db.transaction() as tx:
        await save_checkpoint(tx, "relay:nats:cairn.events", 9)
        assert await load_checkpoint(tx, "relay:nats:cairn.events") == 9
    assert await load_checkpoint(db, "relay:nats:cairn.events") == 9


async def test_a_checkpoint_rolls_back_with_the_work_it_covers(db: Database) -> None:
    await db.migrate(CHECKPOINTS)

    async def save_then_fail() -> None:
        async with db.transaction() as tx:
            await save_checkpoint(tx, "saga:fulfilment:0", 5)
            raise RuntimeError("the batch failed")

    with pytest.raises(RuntimeError):
        await save_then_fail()
    assert await load_checkpoint(db, "saga:fulfilment:0") == 0
