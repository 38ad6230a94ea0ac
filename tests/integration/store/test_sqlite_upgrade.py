"""SQLite: a file made before migrations were ``.sql`` files with checksums keeps working once a
newer cairn opens it. ``fixtures/sqlite_schema_abcce6b.sql`` is that schema, dumped from a fresh
``cairn migrate`` at abcce6b."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import cairn
from cairn import NewEvent
from cairn.store.migrate import migrate
from cairn.store.sqlite import MIGRATIONS
from cairn.store.urls import sqlite_path

BEFORE_REGISTRY = Path(__file__).parent / "fixtures" / "sqlite_schema_abcce6b.sql"


def load_schema_made_before_the_registry(sqlite_url: str) -> None:
    with sqlite3.connect(sqlite_path(sqlite_url)) as conn:
        conn.executescript(BEFORE_REGISTRY.read_text())
    conn.close()


def migration_rows(sqlite_url: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(sqlite_path(sqlite_url)) as conn:
        rows = conn.execute("SELECT * FROM schema_migrations ORDER BY name").fetchall()
    conn.close()
    return rows


async def test_a_file_made_before_the_registry_is_up_to_date_and_gets_its_checksums(
    sqlite_url: str,
) -> None:
    load_schema_made_before_the_registry(sqlite_url)
    before = migration_rows(sqlite_url)
    assert [row[0] for row in before] == [m.name for m in MIGRATIONS.migrations()]
    async with cairn.open_store(sqlite_url) as store:
        result = await store.append("cart-1", [NewEvent("A", {"n": 1})], expected_version=0)
        assert (result.version, result.position) == (1, 1)
        await store.append("cart-1", [NewEvent("B", {})], expected_version=1)
        assert [e.type for e in await store.read_all()] == ["A", "B"]
        assert [e.data for e in await store.read_stream("cart-1")] == [{"n": 1}, {}]
    after = migration_rows(sqlite_url)
    # Nothing reapplied: the same names, applied when they were; each now with its checksum.
    assert [row[:2] for row in after] == before
    assert {row[0]: row[2] for row in after} == {
        m.name: m.checksum for m in MIGRATIONS.migrations()
    }
    assert await migrate(sqlite_url) == []
    async with cairn.open_store(sqlite_url) as store:
        assert await store.stream_version("cart-1") == 2
    assert migration_rows(sqlite_url) == after


async def test_a_file_made_before_the_registry_opens_unchanged_without_migrating(
    sqlite_url: str,
) -> None:
    load_schema_made_before_the_registry(sqlite_url)
    before = migration_rows(sqlite_url)
    async with cairn.open_store(sqlite_url, migrate=False) as store:
        await store.append("cart-1", [NewEvent("A", {})], expected_version=0)
        assert [e.type for e in await store.read_all()] == ["A"]
    assert migration_rows(sqlite_url) == before
