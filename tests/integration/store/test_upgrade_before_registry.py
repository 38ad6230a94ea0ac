"""A database made before migrations were ``.sql`` files with checksums (commit abcce6b) keeps
working once a newer cairn opens it, on both backends that keep a schema.

``fixtures/*_schema_abcce6b.sql`` are that schema and its ``schema_migrations`` rows, dumped from
a fresh ``cairn migrate`` at abcce6b (``pg_dump --schema-only`` plus the rows; ``sqlite3 .dump``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

import cairn
from cairn import NewEvent
from cairn.errors import SchemaMissingError
from cairn.sql.registry import MigrationSet
from cairn.store import postgres_schema, sqlite
from cairn.store.migrate import migrate
from cairn.store.urls import sqlite_path

FIXTURES = Path(__file__).parent / "fixtures"


class Database:
    """One backend's database made by abcce6b, and a look at its ``schema_migrations``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.migrations: MigrationSet = (
            sqlite.MIGRATIONS if self.sqlite else postgres_schema.MIGRATIONS
        )

    def load_schema_of_abcce6b(self) -> None:
        if self.sqlite:
            with sqlite3.connect(sqlite_path(self.url)) as conn:
                conn.executescript((FIXTURES / "sqlite_schema_abcce6b.sql").read_text())
            conn.close()
            return
        with psycopg.connect(self.url, autocommit=True) as pg:
            pg.execute((FIXTURES / "postgres_schema_abcce6b.sql").read_bytes())

    def migration_rows(self) -> list[tuple[Any, ...]]:
        query = "SELECT * FROM schema_migrations ORDER BY name"
        if self.sqlite:
            with sqlite3.connect(sqlite_path(self.url)) as conn:
                rows = conn.execute(query).fetchall()
            conn.close()
            return rows
        with psycopg.connect(self.url) as pg:
            return pg.execute(query).fetchall()


@pytest.fixture(params=["sqlite_url", "pg_url"])
def made_by_abcce6b(request: pytest.FixtureRequest) -> Database:
    database = Database(str(request.getfixturevalue(request.param)))
    database.load_schema_of_abcce6b()
    return database


def later_migrations(db: Database) -> list[str]:
    """The migrations released after abcce6b (none on SQLite so far)."""
    made = {row[0] for row in db.migration_rows()}
    return [m.name for m in db.migrations.migrations() if m.name not in made]


async def test_keeps_its_rows_and_gets_checksums_and_the_later_migrations(
    made_by_abcce6b: Database,
) -> None:
    db = made_by_abcce6b
    before = db.migration_rows()
    names = [m.name for m in db.migrations.migrations()]
    assert [row[0] for row in before] == names[: len(before)]
    async with cairn.open_store(db.url) as store:
        result = await store.append("cart-1", [NewEvent("A", {"n": 1})], expected_version=0)
        assert (result.version, result.position) == (1, 1)
        await store.append("cart-1", [NewEvent("B", {})], expected_version=1)
        assert [e.type for e in await store.read_all()] == ["A", "B"]
        assert [e.data for e in await store.read_stream("cart-1")] == [{"n": 1}, {}]
    after = db.migration_rows()
    # Nothing reapplied: the same names, applied when they were; each now with its checksum.
    assert [row[:2] for row in after[: len(before)]] == before
    assert [row[0] for row in after] == names
    assert {row[0]: row[2] for row in after} == {
        m.name: m.checksum for m in db.migrations.migrations()
    }
    assert await migrate(db.url) == []
    async with cairn.open_store(db.url) as store:
        assert await store.stream_version("cart-1") == 2
    assert db.migration_rows() == after


async def test_opens_unchanged_without_migrating_once_the_later_migrations_are_in(
    made_by_abcce6b: Database,
) -> None:
    db = made_by_abcce6b
    later = later_migrations(db)
    if later:  # refused, and left as it was, until `cairn migrate` applies them
        rows = db.migration_rows()
        with pytest.raises(SchemaMissingError):
            async with cairn.open_store(db.url, migrate=False):
                pass
        assert db.migration_rows() == rows
        assert await migrate(db.url) == later
    before = db.migration_rows()
    async with cairn.open_store(db.url, migrate=False) as store:
        await store.append("cart-1", [NewEvent("A", {})], expected_version=0)
        assert [e.type for e in await store.read_all()] == ["A"]
    assert db.migration_rows() == before
