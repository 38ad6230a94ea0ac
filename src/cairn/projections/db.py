"""The read-model database: one small async port over aiosqlite and psycopg.

SQL is written once with ``?`` placeholders; the PostgreSQL adapter rewrites them to ``%s``
(so read-model SQL never contains a literal ``?`` or ``%``). Rows come back as dicts.

The read models live in the store's database (so a batch and its checkpoint commit together).
For a ``memory://`` store there is no database to share: a private in-memory SQLite holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from cairn.pgpool import HotConnections
from cairn.store.urls import Backend, backend_of, postgres_conninfo, sqlite_path

Row = dict[str, Any]
Params = Sequence[Any]


class Dialect(enum.Enum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


class Tx(ABC):
    """One open write transaction."""

    dialect: Dialect

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> None: ...

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    def pipelined(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Writes inside this block may be sent without waiting for each result (PostgreSQL
        pipeline mode: one round trip for the lot). No reads inside it."""
        return contextlib.nullcontext()


class Database(ABC):
    """A read-model database: short write transactions and plain reads."""

    dialect: Dialect

    @abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """A read outside any write transaction (sees committed data only)."""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    async def close(self) -> None:
        """Release connections. Idempotent."""

    def for_update(self, of: str | None = None) -> str:
        """Row lock suffix: SQLite's ``BEGIN IMMEDIATE`` already serialises writers."""
        if self.dialect is not Dialect.POSTGRES:
            return ""
        return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"


# --- SQLite ------------------------------------------------------------------------------------


class _SQLiteTx(Tx):
    dialect = Dialect.SQLITE

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self._conn.execute(sql, tuple(params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(sql, [tuple(r) for r in rows])

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._conn.execute(sql, tuple(params)) as cur:
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


class SQLiteDatabase(Database):
    """One aiosqlite connection, guarded by a lock so that one task's transaction never
    interleaves with another task's statements on the same connection (they would see or commit
    each other's half-done work)."""

    dialect = Dialect.SQLITE

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> Any:
        if self._conn is None:
            import aiosqlite

            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a write transaction
            # takes the write lock up front (waiting up to busy_timeout) instead of failing with
            # SQLITE_BUSY on a lock upgrade while the store or a saga writes the same file.
            conn = await aiosqlite.connect(self._path, isolation_level=None)
            try:
                await conn.execute("PRAGMA busy_timeout=5000")
                if self._path != ":memory:":
                    await conn.execute("PRAGMA journal_mode=WAL")
                    await conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            conn = await self._connection()
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(conn)
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._lock:
            conn = await self._connection()
            return await _SQLiteTx(conn).fetchall(sql, params)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


# --- PostgreSQL --------------------------------------------------------------------------------


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class _PostgresTx(Tx):
    dialect = Dialect.POSTGRES

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self._conn.execute(_pg(sql), tuple(params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = [tuple(r) for r in rows]
        if batch:
            async with self._conn.cursor() as cur:
                await cur.executemany(_pg(sql), batch)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._conn.cursor() as cur:
            await cur.execute(_pg(sql), tuple(params))
            rows: list[Row] = await cur.fetchall()
            return rows

    def pipelined(self) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()  # the whole transaction is pipelined already


class PostgresDatabase(Database):
    """A small psycopg pool; each transaction borrows one connection."""

    dialect = Dialect.POSTGRES

    def __init__(self, conninfo: str, max_size: int = 8) -> None:
        self._conninfo = conninfo
        self._max_size = max_size
        self._pool: Any = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    from psycopg.rows import dict_row
                    from psycopg_pool import AsyncConnectionPool

                    async def configure(conn: Any) -> None:
                        # Asynchronous commit: a server crash may forget the last few hundred
                        # milliseconds of read-model transactions, but each carries its
                        # checkpoint atomically, so the runner re-applies exactly what was
                        # forgotten from the log (the durable source of truth). It saves a WAL
                        # flush per batch: most of a live batch's latency. These connections
                        # only ever write read models and checkpoints.
                        await conn.execute("SET synchronous_commit = off")

                    pool = AsyncConnectionPool(
                        self._conninfo,
                        min_size=1,
                        max_size=self._max_size,
                        open=False,
                        configure=configure,
                        kwargs={
                            "autocommit": True,
                            "row_factory": dict_row,
                            "application_name": "cairn-projections",
                        },
                    )
                    await pool.open(wait=True, timeout=10)
                    # The most recently used connection first (cairn.pgpool): a live
                    # projection's short transactions answer sooner on a hot server process.
                    self._pool = HotConnections(pool, purpose="for the read models")
        return self._pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """The whole transaction in pipeline mode, BEGIN and COMMIT written by hand: BEGIN goes
        with the first read and COMMIT with the last writes, so a batch costs its reads plus
        one round trip (psycopg's own transaction block adds two: a sync before COMMIT, and
        BEGIN alone). A read still waits for its result."""
        connections = await self._get_pool()
        async with connections.connection() as conn:
            try:
                async with conn.pipeline():
                    await conn.execute("BEGIN")
                    yield _PostgresTx(conn)
                    await conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        connections = await self._get_pool()
        async with connections.connection() as conn:
            return await _PostgresTx(conn).fetchall(sql, params)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


def open_database(url: str) -> Database:
    """The read-model database for a store at ``url`` (nothing connects until first use)."""
    backend = backend_of(url)
    if backend is Backend.POSTGRES:
        return PostgresDatabase(postgres_conninfo(url))
    if backend is Backend.SQLITE:
        return SQLiteDatabase(sqlite_path(url))
    return SQLiteDatabase(":memory:")
