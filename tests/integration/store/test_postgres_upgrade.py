"""PostgreSQL: databases made by older cairns keep working once a newer cairn opens them.

* One written before migration 0008 (events with a stored horizon, streams with a version
  column).
* One made before migrations were ``.sql`` files with checksums: ``fixtures/
  postgres_schema_abcce6b.sql`` is that schema, dumped from a fresh ``cairn migrate`` at abcce6b.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

import cairn
from cairn import NewEvent
from cairn.sql.migrations import Migration, MigrationSet, apply_postgres
from cairn.store import EventStore, RecordedEvent
from cairn.store.migrate import migrate
from cairn.store.postgres_connect import connect
from cairn.store.postgres_schema import MIGRATIONS
from cairn.store.urls import postgres_conninfo

BEFORE_REGISTRY = Path(__file__).parent / "fixtures" / "postgres_schema_abcce6b.sql"


@dataclass(frozen=True)
class Before0008(MigrationSet):
    """The store's migrations as they stood before 0008."""

    def migrations(self) -> tuple[Migration, ...]:
        return tuple(m for m in super().migrations() if m.name < "0008")


def batch(*types: str, ids: list[str] | None = None) -> str:
    ids = ids or [str(uuid.uuid4()) for _ in types]
    return json.dumps(
        [{"i": i, "t": t, "v": 1, "d": {}, "m": {}} for i, t in zip(ids, types, strict=True)]
    )


async def read_all_when(store: EventStore, positions: list[int]) -> list[RecordedEvent]:
    """Passing a hole waits for older transactions of the cluster (other tests' included)."""
    events: list[RecordedEvent] = []
    for _ in range(100):
        events = await store.read_all()
        if [e.position for e in events] == positions:
            break
        await asyncio.sleep(0.05)
    return events


async def write_with_0007(pg_url: str) -> None:
    """Positions 1, 2 (stream old-1), a hole at 3, 4 (a failed append), 5 (stream old-2)."""
    conn = await connect(postgres_conninfo(pg_url))
    try:
        await apply_postgres(conn, [Before0008(MIGRATIONS.package, MIGRATIONS.folder)])
        taken = str(uuid.uuid4())
        await conn.execute("SELECT cairn_append('old-1', 0, %s::jsonb)", (batch("A", ids=[taken]),))
        await conn.execute("SELECT cairn_append('old-1', 1, %s::jsonb)", (batch("B"),))
        clash = batch("X", "Y", ids=[str(uuid.uuid4()), taken])
        with pytest.raises(psycopg.errors.UniqueViolation):
            await conn.execute("SELECT cairn_append('x-1', -1, %s::jsonb)", (clash,))
        await conn.execute("SELECT cairn_append('old-2', 0, %s::jsonb)", (batch("C"),))
    finally:
        await conn.close()


async def test_events_written_before_0008_read_in_order_past_their_hole(pg_url: str) -> None:
    await write_with_0007(pg_url)
    async with cairn.open_store(pg_url) as store:
        events = await read_all_when(store, [1, 2, 5])
        assert [(e.position, e.stream_id, e.version, e.type) for e in events] == [
            (1, "old-1", 1, "A"),
            (2, "old-1", 2, "B"),
            (5, "old-2", 1, "C"),
        ]


async def test_streams_written_before_0008_go_on_at_their_version(pg_url: str) -> None:
    await write_with_0007(pg_url)
    async with cairn.open_store(pg_url) as store:
        assert await store.stream_version("old-1") == 2
        assert (await store.stream_info("old-1")).version == 2
        result = await store.append("old-1", [NewEvent("D", {})], expected_version=2)
        assert (result.version, result.position) == (3, 6)
        events = await read_all_when(store, [1, 2, 5, 6])
        assert [e.type for e in events] == ["A", "B", "C", "D"]


def load_schema_made_before_the_registry(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(BEFORE_REGISTRY.read_bytes())


def migration_rows(pg_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT * FROM schema_migrations ORDER BY name").fetchall()


def has_checksum_column(pg_url: str) -> bool:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'schema_migrations' AND column_name = 'checksum'"
        ).fetchone()
    return row is not None and row[0] == 1


async def test_a_database_made_before_the_registry_is_up_to_date_and_gets_its_checksums(
    pg_url: str,
) -> None:
    load_schema_made_before_the_registry(pg_url)
    before = migration_rows(pg_url)
    assert [row[0] for row in before] == [m.name for m in MIGRATIONS.migrations()]
    async with cairn.open_store(pg_url) as store:
        result = await store.append("cart-1", [NewEvent("A", {"n": 1})], expected_version=0)
        assert (result.version, result.position) == (1, 1)
        await store.append("cart-1", [NewEvent("B", {})], expected_version=1)
        assert [e.type for e in await store.read_all()] == ["A", "B"]
        assert [e.data for e in await store.read_stream("cart-1")] == [{"n": 1}, {}]
    after = migration_rows(pg_url)
    # Nothing reapplied: the same names, applied when they were; each now with its checksum.
    assert [row[:2] for row in after] == before
    assert {row[0]: row[2] for row in after} == {
        m.name: m.checksum for m in MIGRATIONS.migrations()
    }
    assert await migrate(pg_url) == []
    async with cairn.open_store(pg_url) as store:
        assert await store.stream_version("cart-1") == 2
    assert migration_rows(pg_url) == after


async def test_a_database_made_before_the_registry_opens_unchanged_without_migrating(
    pg_url: str,
) -> None:
    load_schema_made_before_the_registry(pg_url)
    async with cairn.open_store(pg_url, migrate=False) as store:
        await store.append("cart-1", [NewEvent("A", {})], expected_version=0)
        assert [e.type for e in await store.read_all()] == ["A"]
    assert not has_checksum_column(pg_url)
