"""SQLite's ``database is locked`` (another process held the write lock past busy_timeout) is a
:class:`StoreUnavailableError` (503 with Retry-After at the API), not a driver error (SPEC §12)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cairn.errors import StoreUnavailableError
from cairn.sql.sqlite import SQLiteDatabase


async def test_a_write_lock_held_past_busy_timeout_is_store_unavailable(tmp_path: Path) -> None:
    path = str(tmp_path / "busy.db")
    db = SQLiteDatabase(path)
    await db.ensure_schema(["CREATE TABLE IF NOT EXISTS things (id TEXT PRIMARY KEY)"])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock
    try:
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO things (id) VALUES ('a')")
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO things (id) VALUES ('a')")
    assert await db.fetchall("SELECT id FROM things") == [{"id": "a"}]
    await db.close()
