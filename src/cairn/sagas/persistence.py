"""Where saga state lives: tables in the store's own database.

One small port (:class:`SagaDB`) with a SQLite and a PostgreSQL module-level implementation. SQL
is written once with ``?`` placeholders; two markers adapt it to each dialect:
``{for_update}`` (row lock on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers) and ``{skip_locked}`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers never
claim the same timer or step).

``memory://`` stores keep saga state in a private in-memory SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiosqlite
import psycopg
from psycopg_pool import AsyncConnectionPool

from cairn.errors import StoreUnavailableError
from cairn.pgpool import HotConnections
from cairn.store.urls import Backend, backend_of, postgres_conninfo, sqlite_path

Row = tuple[Any, ...]

_TABLES = """
CREATE TABLE IF NOT EXISTS saga_instances (
    saga_id TEXT PRIMARY KEY,
    saga_type TEXT NOT NULL,
    saga_key TEXT NOT NULL,
    partition_no INTEGER NOT NULL,
    status TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    correlation_id TEXT,
    version INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_instances_status ON saga_instances (status, updated_at);
CREATE TABLE IF NOT EXISTS saga_actions (
    action_id TEXT PRIMARY KEY,
    saga_id TEXT NOT NULL,
    saga_key TEXT NOT NULL,
    correlation_id TEXT,
    partition_no INTEGER NOT NULL,
    step TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    compensation INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    causation_id TEXT,
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_actions_due ON saga_actions (status, due_at);
CREATE INDEX IF NOT EXISTS saga_actions_saga ON saga_actions (saga_id);
CREATE TABLE IF NOT EXISTS saga_timers (
    timer_id TEXT PRIMARY KEY,
    saga_id TEXT NOT NULL,
    partition_no INTEGER NOT NULL,
    kind TEXT NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_timers_due ON saga_timers (due_at);
CREATE TABLE IF NOT EXISTS saga_checkpoints (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
"""

_LOG_SQLITE = """
CREATE TABLE IF NOT EXISTS saga_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    saga_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    message_type TEXT,
    message_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_log_saga ON saga_log (saga_id, id);
"""

_LOG_POSTGRES = _LOG_SQLITE.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")


class Tx(ABC):
    """One open transaction."""

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


class SagaDB(ABC):
    backend: Backend

    @abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A write transaction: committed on normal exit, rolled back on an exception."""

    @abstractmethod
    async def close(self) -> None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.transaction() as tx:
            return await tx.fetchall(sql, params)


def _sqlite_sql(sql: str) -> str:
    return sql.replace("{for_update}", "").replace("{skip_locked}", "")


def _postgres_sql(sql: str) -> str:
    return (
        sql.replace("{for_update}", " FOR UPDATE")
        .replace("{skip_locked}", " FOR UPDATE SKIP LOCKED")
        .replace("?", "%s")
    )


class _SQLiteTx(Tx):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self._conn.execute(_sqlite_sql(sql), tuple(params))
        count = cur.rowcount
        await cur.close()
        return count

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._conn.execute(_sqlite_sql(sql), tuple(params)) as cur:
            return [tuple(r) for r in await cur.fetchall()]


class SQLiteSagaDB(SagaDB):
    backend = Backend.SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        # One connection per runner: transactions of its tasks take turns here; other processes
        # wait on SQLite's write lock (busy_timeout) instead.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> SQLiteSagaDB:
        conn = await aiosqlite.connect(path, isolation_level=None)
        if path != ":memory:":
            await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute("PRAGMA synchronous=NORMAL")
        db = cls(conn)
        async with db._lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                await conn.executescript(_TABLES + _LOG_SQLITE)
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise
            # executescript commits the open transaction itself.
            if conn.in_transaction:
                await conn.execute("COMMIT")
        return db

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write transaction
            # never fails half-way with SQLITE_BUSY when another connection writes.
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(self._conn)
            except BaseException:
                await asyncio.shield(self._conn.execute("ROLLBACK"))
                raise
            await self._conn.execute("COMMIT")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._conn.close()


class _PostgresTx(Tx):
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self._conn.execute(_postgres_sql(sql), tuple(params))
        return cur.rowcount

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = await self._conn.execute(_postgres_sql(sql), tuple(params))
        return [tuple(r) for r in await cur.fetchall()]


class PostgresSagaDB(SagaDB):
    backend = Backend.POSTGRES

    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]) -> None:
        # The most recently used connection first (cairn.pgpool): a saga step is a run of short
        # transactions, each faster on a server process that is still hot.
        self._connections = HotConnections(pool, purpose="for saga state")

    @classmethod
    async def open(cls, conninfo: str, max_size: int = 10) -> PostgresSagaDB:
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=30,
            kwargs={"application_name": "cairn-sagas"},
        )
        try:
            await pool.open(wait=True, timeout=30)
        except Exception as exc:
            await pool.close()
            raise StoreUnavailableError(f"cannot reach PostgreSQL for saga state: {exc}") from exc
        db = cls(pool)
        async with pool.connection() as conn, conn.transaction():
            # Two workers starting at once must not both run CREATE TABLE IF NOT EXISTS (it can
            # fail on the catalogue's unique index); a transaction-scoped advisory lock
            # serialises the DDL.
            await conn.execute("SELECT pg_advisory_xact_lock(872163510051)")
            for statement in (_TABLES + _LOG_POSTGRES).split(";"):
                if statement.strip():
                    await conn.execute(statement)
        return db

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._connections.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    async def close(self) -> None:
        await self._connections.close()


async def open_saga_db(database_url: str) -> SagaDB:
    """Saga tables in the database at ``database_url`` (created if missing)."""
    backend = backend_of(database_url)
    if backend is Backend.POSTGRES:
        return await PostgresSagaDB.open(postgres_conninfo(database_url))
    if backend is Backend.SQLITE:
        return await SQLiteSagaDB.open(sqlite_path(database_url))
    return await SQLiteSagaDB.open(":memory:")
