"""The SQL layer's Database port: one behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import psycopg
import pytest

from cairn.errors import SchemaMissingError, StoreUnavailableError
from cairn.sql.database import Database, Dialect, in_list, insert_rows, update_rows
from cairn.sql.factory import open_database


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    database = open_database(url)
    await database.ensure_schema(
        ["CREATE TABLE IF NOT EXISTS things (id TEXT PRIMARY KEY, n INTEGER NOT NULL)"]
    )
    try:
        yield database
    finally:
        await database.close()


async def test_a_transaction_commits_when_its_block_ends(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO things (id, n) VALUES (?, ?)", ("a", 1))
        assert await tx.fetchone("SELECT n FROM things WHERE id = ?", ("a",)) == {"n": 1}
    assert await db.fetchall("SELECT id, n FROM things") == [{"id": "a", "n": 1}]


async def test_a_transaction_that_raises_is_rolled_back(db: Database) -> None:
    async def insert_then_fail() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO things (id, n) VALUES (?, ?)", ("a", 1))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    assert await db.fetchall("SELECT id FROM things") == []


async def test_a_failing_statement_rolls_back_the_whole_transaction(db: Database) -> None:
    await db.execute("INSERT INTO things (id, n) VALUES (?, ?)", ("a", 1))

    async def update_then_collide() -> None:
        async with db.transaction() as tx:
            await tx.execute("UPDATE things SET n = 2 WHERE id = ?", ("a",))
            await tx.execute("INSERT INTO things (id, n) VALUES (?, ?)", ("a", 3))

    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await update_then_collide()
    assert await db.fetchone("SELECT n FROM things WHERE id = ?", ("a",)) == {"n": 1}


async def test_after_commit_callbacks_run_once_the_transaction_committed(db: Database) -> None:
    seen: list[str] = []
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO things (id, n) VALUES (?, ?)", ("a", 1))
        tx.after_commit(lambda: seen.append("committed"))
        assert seen == []
    assert seen == ["committed"]


async def test_after_commit_callbacks_never_run_for_a_rolled_back_transaction(
    db: Database,
) -> None:
    seen: list[str] = []
    await db.execute("INSERT INTO things (id, n) VALUES (?, ?)", ("a", 1))

    async def collide() -> None:
        async with db.transaction() as tx:
            tx.after_commit(lambda: seen.append("committed"))
            async with tx.pipelined():
                await tx.execute("INSERT INTO things (id, n) VALUES (?, ?)", ("a", 2))

    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await collide()
    assert seen == []


async def test_execute_returns_the_number_of_rows_changed(db: Database) -> None:
    async with db.transaction(durable=False) as tx:
        await tx.executemany(
            "INSERT INTO things (id, n) VALUES (?, ?)", [("a", 1), ("b", 2), ("c", 3)]
        )
        assert await tx.execute("UPDATE things SET n = n + 1 WHERE n >= ?", (2,)) == 2
        assert await tx.execute("DELETE FROM things WHERE id = ?", ("zz",)) == 0
    assert await db.execute("DELETE FROM things WHERE n > ?", (0,)) == 3


async def test_rows_are_dicts_keyed_by_column_name_with_aliases(db: Database) -> None:
    await db.execute("INSERT INTO things (id, n) VALUES (?, ?)", ("a%b", 5))
    row = await db.fetchone("SELECT count(*) AS total, max(n) AS top FROM things")
    assert row == {"total": 1, "top": 5}
    # A literal % is data, never a placeholder.
    assert await db.fetchone("SELECT id FROM things WHERE id LIKE 'a%'") == {"id": "a%b"}
    assert await db.fetchone("SELECT id FROM things WHERE id = ?", ("none",)) is None


async def test_pipelined_writes_commit_with_the_transaction(db: Database) -> None:
    async with db.transaction(durable=False) as tx, tx.pipelined():
        for i in range(20):
            await tx.execute("INSERT INTO things (id, n) VALUES (?, ?)", (f"k{i}", i))
    assert await db.fetchone("SELECT count(*) AS n FROM things") == {"n": 20}


async def test_schema_creation_is_idempotent_and_safe_when_concurrent(db: Database) -> None:
    ddl = ["CREATE TABLE IF NOT EXISTS others (id TEXT PRIMARY KEY)"]
    await asyncio.gather(*(db.ensure_schema(ddl) for _ in range(4)))
    assert await db.fetchall("SELECT id FROM others") == []


async def test_concurrent_sqlite_transactions_do_not_interleave(sqlite_url: str) -> None:
    db = open_database(sqlite_url)
    await db.ensure_schema(["CREATE TABLE counter (n INTEGER NOT NULL)"])
    await db.execute("INSERT INTO counter (n) VALUES (0)")

    async def increment() -> None:
        async with db.transaction() as tx:
            row = await tx.fetchone("SELECT n FROM counter")
            assert row is not None
            await asyncio.sleep(0)  # give another task every chance to interleave
            await tx.execute("UPDATE counter SET n = ?", (row["n"] + 1,))

    try:
        await asyncio.gather(*(increment() for _ in range(25)))
        assert await db.fetchone("SELECT n FROM counter") == {"n": 25}
    finally:
        await db.close()


async def test_skip_locked_lets_two_claimers_take_different_rows(pg_url: str) -> None:
    db = open_database(pg_url, max_connections=2)
    assert db.dialect is Dialect.POSTGRES
    await db.ensure_schema(["CREATE TABLE jobs (id TEXT PRIMARY KEY, due INTEGER NOT NULL)"])
    async with db.transaction() as tx:
        await tx.executemany("INSERT INTO jobs (id, due) VALUES (?, ?)", [("a", 1), ("b", 2)])
    first_claimed = asyncio.Event()
    second_done = asyncio.Event()
    claims: dict[str, str] = {}

    async def claim(who: str, hold: asyncio.Event | None) -> None:
        async with db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT id FROM jobs ORDER BY due LIMIT 1" + tx.skip_locked(), ()
            )
            assert row is not None
            claims[who] = row["id"]
            if hold is not None:
                first_claimed.set()
                await hold.wait()  # keep the row locked while the other claims

    try:
        holder = asyncio.create_task(claim("first", second_done))
        await first_claimed.wait()
        await claim("second", None)
        second_done.set()
        await holder
        assert claims == {"first": "a", "second": "b"}
    finally:
        await db.close()


async def test_for_update_and_skip_locked_are_empty_on_sqlite(sqlite_url: str) -> None:
    db = open_database(sqlite_url)
    assert (db.for_update(), db.skip_locked()) == ("", "")
    assert db.for_update(of="v") == ""


COLUMNS = (("id", "text"), ("n", "int4"))


# IN and VALUES; then several VALUES statements, then arrays (PostgreSQL)
@pytest.mark.parametrize("count", [3, 33, 200])
async def test_insert_rows_and_in_list_keep_order_and_match_whatever_the_count(
    db: Database, count: int
) -> None:
    rows = [(f"r-{i:03d}", count - i) for i in range(count)]
    async with db.transaction() as tx:
        for statement in insert_rows(db.dialect, "things", COLUMNS, rows):
            await tx.execute(*statement)
        again = insert_rows(db.dialect, "things", COLUMNS, rows, suffix=" ON CONFLICT DO NOTHING")
        for statement in again:
            await tx.execute(*statement)
    among, ids = in_list(db.dialect, "id", [r[0] for r in rows[::2]] + ["missing"])
    found = await db.fetchall(f"SELECT id, n FROM things WHERE {among} ORDER BY id", ids)
    assert [(r["id"], r["n"]) for r in found] == rows[::2]


def test_rows_between_50_and_80_parameters_go_in_statements_psycopg_keeps_parsed() -> None:
    rows = [(f"r-{i}", i) for i in range(33)]  # 66 parameters

    statements = insert_rows(Dialect.POSTGRES, "things", COLUMNS, rows)

    assert [len(params) for _, params in statements] == [50, 16]
    assert [value for _, params in statements for value in params] == [
        value for row in rows for value in row
    ]
    assert len(insert_rows(Dialect.SQLITE, "things", COLUMNS, rows)) == 1


async def test_update_rows_changes_each_row_by_its_key(db: Database) -> None:
    rows = [(f"r-{i:03d}", i) for i in range(30)]
    async with db.transaction() as tx:
        for statement in insert_rows(db.dialect, "things", COLUMNS, rows):
            await tx.execute(*statement)
        changed = [(key, n * 10) for key, n in rows[:27]]  # 54 parameters: two statements
        statements = update_rows("things", "id", ["n"], changed)
        for statement in statements:
            await tx.execute(*statement)
    found = await db.fetchall("SELECT id, n FROM things ORDER BY id")
    assert len(statements) == 2
    assert [(r["id"], r["n"]) for r in found] == [
        (key, n * 10 if i < 27 else n) for i, (key, n) in enumerate(rows)
    ]


async def test_a_missing_table_on_a_standby_is_a_schema_not_replayed_yet(db: Database) -> None:
    db.standby = True
    with pytest.raises(SchemaMissingError, match="has not replayed the schema yet"):
        await db.fetchall("SELECT * FROM not_replayed_yet")


async def test_a_missing_table_on_the_primary_stays_the_bug_it_is(db: Database) -> None:
    with pytest.raises((psycopg.errors.UndefinedTable, sqlite3.OperationalError)) as raised:
        await db.fetchall("SELECT * FROM no_such_table")
    assert not isinstance(raised.value, SchemaMissingError | StoreUnavailableError)
