"""PostgreSQL writes a batch's rows in one statement: the stored rows must be what row-by-row
upserts would have stored."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from cairn.projections.read_model import Rows, Table
from cairn.sql.database import Dialect
from cairn.sql.postgres import PostgresDatabase
from cairn.store.urls import postgres_conninfo

T = Table(
    base="things",
    key=("id",),
    columns=(
        ("id", "TEXT NOT NULL"),
        ("n", "BIGINT NOT NULL"),
        ("label", "TEXT"),
        ("tags", "TEXT"),
    ),
    json_columns=frozenset({"tags"}),
)


async def _save(db: PostgresDatabase, *changes: tuple[str, dict[str, Any] | None]) -> None:
    async with db.transaction() as tx:
        rows = Rows(tx, {T.base: T}, 1)
        for key, row in changes:
            rows.put(T.base, (key,), row)
        await rows.save()


async def test_one_statement_upsert_stores_what_row_by_row_upserts_store(pg_url: str) -> None:
    db = PostgresDatabase(postgres_conninfo(pg_url))
    try:
        async with db.transaction() as tx:
            for sql in T.ddl(1, Dialect.POSTGRES):
                await tx.execute(sql)
            await tx.execute("CREATE TABLE expected (LIKE things_v1 INCLUDING ALL)")
            await tx.executemany(
                T.upsert_sql(1).replace("things_v1", "expected"),
                [
                    T.to_params({"id": "a", "n": 2, "label": 'é "q" \\', "tags": ["x", {"k": 1}]}),
                    T.to_params({"id": "b", "n": 3, "label": None, "tags": None}),
                ],
            )
        await _save(db, ("a", {"id": "a", "n": 1, "label": "old", "tags": []}))
        await _save(
            db,
            ("a", {"id": "a", "n": 2, "label": 'é "q" \\', "tags": ["x", {"k": 1}]}),
            ("b", {"id": "b", "n": 3, "label": None, "tags": None}),
        )

        stored = await db.fetchall("SELECT * FROM things_v1 ORDER BY id")
        expected = await db.fetchall("SELECT * FROM expected ORDER BY id")
        assert stored == expected
        assert stored[0]["tags"] == '["x",{"k":1}]'
    finally:
        await db.close()


async def _insert(db: PostgresDatabase, *ids: str, fail: bool = False) -> None:
    async with db.transaction() as tx:
        for one in ids:
            await tx.execute("INSERT INTO t VALUES (?)", (one,))
        if fail:
            raise RuntimeError("a handler failed")


async def test_a_failed_statement_rolls_the_whole_transaction_back_and_the_next_one_commits(
    pg_url: str,
) -> None:
    db = PostgresDatabase(postgres_conninfo(pg_url), max_size=1)  # the same connection again
    try:
        async with db.transaction() as tx:
            await tx.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            await _insert(db, "a", "a")
        with pytest.raises(RuntimeError):
            await _insert(db, "b", fail=True)
        await _insert(db, "c")

        assert await db.fetchall("SELECT id FROM t ORDER BY id") == [{"id": "c"}]
    finally:
        await db.close()
