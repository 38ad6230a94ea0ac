"""SQLite: THE connect function of every cairn SQLite file, and the :class:`Database` over it.

Every connection to a cairn file (the event store's, the SQL layer's) is configured here:
``busy_timeout`` (wait for the write lock instead of failing), WAL (readers never block the
writer; the switch is retried, see :func:`_switch_to_wal`) and ``synchronous=NORMAL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable

import aiosqlite

from cairn.errors import StoreUnavailableError
from cairn.sql.database import Database, Dialect, Params, Row, Schema, Tx
from cairn.sql.outage import unavailable_translated
from cairn.sql.registry import apply_sqlite

__all__ = ["SQLiteDatabase", "connect"]


def _check_directory(path: str) -> None:
    # sqlite would create the file but not its directory; say which directory is missing.
    if path != ":memory:":
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise StoreUnavailableError(
                f"cannot open SQLite database {path}: directory {parent} does not exist"
            )


async def connect(path: str) -> aiosqlite.Connection:
    """A connection configured the way every user of a cairn SQLite file must configure it.

    ``isolation_level=None``: callers issue ``BEGIN IMMEDIATE`` themselves, so a write
    transaction takes the write lock up front (waiting up to busy_timeout) instead of failing
    with SQLITE_BUSY on a lock upgrade while another connection writes the same file.
    """
    _check_directory(path)
    try:
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=5.0)
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"cannot open SQLite database {path}: {exc}") from None
    try:
        await conn.execute("PRAGMA busy_timeout=5000")
        await _switch_to_wal(conn)
        # NORMAL is durable against process crashes in WAL mode (a power loss may drop the last
        # commits, never corrupt the file).
        await conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error as exc:
        await conn.close()
        raise StoreUnavailableError(f"cannot open SQLite database {path}: {exc}") from None
    return conn


async def _switch_to_wal(conn: aiosqlite.Connection, patience: float = 5.0) -> None:
    """``journal_mode=WAL``, waiting for other connections of a fresh file to let go.

    Switching needs the file to itself, and SQLite does not wait for that (it answers "database
    is locked" at once rather than risk a deadlock), so several processes opening a new file
    together would fail. Once the file is in WAL mode the pragma is a no-op."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() > deadline:
                raise
        await asyncio.sleep(0.01)


class _SQLiteTx(Tx):
    dialect = Dialect.SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._conn.execute(sql, tuple(params)) as cur:
            return cur.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(sql, [tuple(r) for r in rows])

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._conn.execute(sql, tuple(params)) as cur:
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


class _Connection:
    """One lazily opened aiosqlite connection and the lock that gives it to one task at a time:
    statements of two tasks must never interleave on one connection (each would see, commit or
    roll back the other's half-done transaction)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = asyncio.Lock()
        self._conn: aiosqlite.Connection | None = None

    async def get(self) -> aiosqlite.Connection:
        """The connection (the caller holds ``lock``)."""
        if self._conn is None:
            self._conn = await connect(self.path)
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class SQLiteDatabase(Database):
    """A cairn SQLite file: one writer connection whose transactions take turns in this process
    (other processes wait on SQLite's write lock, up to busy_timeout), and for a file one
    separate reader connection, so plain reads (queries) never wait for a write transaction:
    in WAL mode they see the last commit. ``:memory:`` (a ``memory://`` store's private side
    tables) is one connection for both, as a second one would be a second, empty database.
    Nothing connects until first use."""

    dialect = Dialect.SQLITE

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer = _Connection(path)
        self._reader = self._writer if path == ":memory:" else _Connection(path)

    def _translated(self) -> contextlib.AbstractContextManager[None]:
        """``database is locked`` (another process held the write lock past busy_timeout) as
        :class:`~cairn.errors.StoreUnavailableError`: a 503 to retry, not a 500."""
        return unavailable_translated(f"SQLite database {self.path}", standby=self.standby)

    @contextlib.asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Tx]:
        with self._translated():
            async with self._transaction() as tx:
                yield tx

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._writer.lock:
            conn = await self._writer.get()
            # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write transaction
            # never fails half-way with SQLITE_BUSY when another connection writes.
            await conn.execute("BEGIN IMMEDIATE")
            tx = _SQLiteTx(conn)
            try:
                yield tx
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.execute("ROLLBACK"))
                raise
            await conn.execute("COMMIT")
            tx.committed()

    def schema_transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        # BEGIN IMMEDIATE holds the file's write lock: concurrent creators take turns already.
        return self.transaction()

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        with self._translated():
            async with self._reader.lock:
                return await _SQLiteTx(await self._reader.get()).fetchall(sql, params)

    async def migrate(self, *schemas: Schema) -> list[str]:
        async with self._writer.lock:
            conn = await self._writer.get()
            return await apply_sqlite(conn, [s.for_dialect(self.dialect) for s in schemas])

    async def close(self) -> None:
        await self._writer.close()
        if self._reader is not self._writer:
            await self._reader.close()
