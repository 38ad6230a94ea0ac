"""SPEC §1: ``open_store`` creates the schema if it is missing, idempotently, even when several
processes start at once on an empty database; and it refuses a database whose applied migrations
no longer match their files."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
import pytest

import cairn
from cairn import NewEvent
from cairn.errors import MigrationChecksumError
from cairn.store import EventStore
from cairn.store.migrate import migrate
from cairn.store.urls import sqlite_path


async def test_concurrent_opens_of_an_empty_database_all_succeed(db_url: str) -> None:
    stores: list[EventStore] = list(
        await asyncio.gather(*(cairn.open_store(db_url) for _ in range(4)))
    )
    try:
        results = await asyncio.gather(
            *(s.append(f"a-{n}", [NewEvent("A", {})]) for n, s in enumerate(stores))
        )
        assert sorted(r.position for r in results) == [1, 2, 3, 4]
    finally:
        for store in stores:
            await store.close()
    assert await migrate(db_url) == []


async def test_reopening_keeps_the_events(db_url: str) -> None:
    async with cairn.open_store(db_url) as store:
        await store.append("a-1", [NewEvent("A", {"n": 1})])
    async with cairn.open_store(db_url) as store:
        (event,) = await store.read_all()
        assert (event.position, event.data) == (1, {"n": 1})


def record_checksum(db_url: str, name: str, checksum: str) -> None:
    """What an edited migration file looks like to the registry: a recorded checksum that is
    not the file's."""
    update = "UPDATE schema_migrations SET checksum = {0} WHERE name = {0}"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(db_url)) as conn:
            conn.execute(update.format("?"), (checksum, name))
        conn.close()
        return
    with psycopg.connect(db_url, autocommit=True) as pg:
        pg.execute(update.format("%s"), (checksum, name))


@pytest.mark.parametrize("migrate_on_open", [True, False])
async def test_an_applied_migration_whose_file_changed_is_refused(
    db_url: str, migrate_on_open: bool
) -> None:
    await migrate(db_url)
    record_checksum(db_url, "0002_snapshots", "0" * 64)
    with pytest.raises(MigrationChecksumError, match="0002_snapshots") as refused:
        await cairn.open_store(db_url, migrate=migrate_on_open)
    assert refused.value.code == "store.migration_checksum"
    assert refused.value.details["migration"] == "0002_snapshots"
    with pytest.raises(MigrationChecksumError):
        await migrate(db_url)
