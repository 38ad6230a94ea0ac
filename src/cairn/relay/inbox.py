"""The consumer side: an inbox of processed message ids, so a redelivery has no second effect.

A broker delivers at least once (the relay re-publishes an unconfirmed tail; a consumer that
dies before acking gets the message again). The inbox makes the *effect* happen once: the
message id is recorded in the same database transaction as the effect, so either both commit
or neither does::

    async with await Inbox.open(database_url, consumer="order-counter") as inbox:
        applied = await inbox.process(message_id, effect)   # effect(tx) runs at most once
        await message.ack()                                  # ack after the commit, always

``effect`` receives an :class:`InboxTransaction` and writes through ``tx.execute(sql, params)``
with ``?`` placeholders on both SQLite and PostgreSQL. Table: ``inbox_messages(consumer,
message_id, processed_at)``, created on open if missing; ``prune`` forgets old ids.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from cairn.errors import UnsupportedStoreURL
from cairn.store.urls import Backend, backend_of, postgres_conninfo, sqlite_path

_DDL = """
CREATE TABLE IF NOT EXISTS inbox_messages (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, message_id)
)
"""


class InboxTransaction(ABC):
    """The transaction an effect runs in (the same one that records the message id)."""

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement; ``?`` placeholders on every backend."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""


Effect = Callable[[InboxTransaction], Awaitable[None]]


class Inbox(ABC):
    """Processed-message ids of one named consumer, in the consumer's database."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    @classmethod
    async def open(cls, database_url: str, consumer: str) -> Inbox:
        """The inbox of ``consumer`` in the SQLite or PostgreSQL database at ``database_url``."""
        backend = backend_of(database_url)
        inbox: Inbox
        if backend is Backend.POSTGRES:
            inbox = _PostgresInbox(consumer, postgres_conninfo(database_url))
        elif backend is Backend.SQLITE and sqlite_path(database_url) != ":memory:":
            inbox = _SQLiteInbox(consumer, sqlite_path(database_url))
        else:
            raise UnsupportedStoreURL(
                f"the inbox needs a database that outlives the process, not {database_url!r}"
            )
        await inbox._connect()
        return inbox

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def process(self, message_id: str, effect: Effect) -> bool:
        """Run ``effect`` and record ``message_id`` atomically, unless it was processed before.

        Returns True if the effect ran now, False for a redelivery (nothing happened). If the
        effect raises, nothing is recorded and the error propagates (do not ack the message).
        """

    @abstractmethod
    async def seen(self, message_id: str) -> bool:
        """Whether ``message_id`` was processed."""

    async def prune(self, older_than: timedelta) -> int:
        """Forget the ids processed more than ``older_than`` ago; returns how many.

        Safe once the broker can no longer redeliver them (past its redelivery / duplicate
        window and the relay's unconfirmed tail); without it the table only grows.
        """
        cutoff = (datetime.now(UTC) - older_than).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        async with self.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT COUNT(*) FROM inbox_messages WHERE consumer = ? AND processed_at < ?",
                (self.consumer, cutoff),
            )
            await tx.execute(
                "DELETE FROM inbox_messages WHERE consumer = ? AND processed_at < ?",
                (self.consumer, cutoff),
            )
        return int(rows[0][0])

    @abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[InboxTransaction]:
        """A plain transaction on the inbox's connection, recording nothing (schema set-up,
        reads of the consumer's own tables)."""

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# --- SQLite ----------------------------------------------------------------------------------


class _SQLiteTransaction(InboxTransaction):
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._conn.execute(sql, tuple(params))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._conn.execute(sql, tuple(params)) as cur:
            return [tuple(row) for row in await cur.fetchall()]


class _SQLiteInbox(Inbox):
    def __init__(self, consumer: str, path: str) -> None:
        super().__init__(consumer)
        self._path = path
        self._conn: Any = None

    async def _connect(self) -> None:
        import aiosqlite

        # Autocommit mode so that BEGIN IMMEDIATE below is ours: the write lock is taken up
        # front (waiting up to busy_timeout), never upgraded mid-transaction into SQLITE_BUSY.
        self._conn = await aiosqlite.connect(self._path, isolation_level=None)
        await self._conn.execute("PRAGMA busy_timeout=5000")
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute(_DDL)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[InboxTransaction]:
        conn = self._conn
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SQLiteTransaction(conn)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")

    async def process(self, message_id: str, effect: Effect) -> bool:
        async with self.transaction() as tx:
            cur = await self._conn.execute(
                "INSERT INTO inbox_messages (consumer, message_id, processed_at) "
                "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) "
                "ON CONFLICT (consumer, message_id) DO NOTHING",
                (self.consumer, message_id),
            )
            if cur.rowcount == 0:
                return False  # a redelivery: commit the empty transaction, no effect
            await effect(tx)
            return True

    async def seen(self, message_id: str) -> bool:
        async with self._conn.execute(
            "SELECT 1 FROM inbox_messages WHERE consumer = ? AND message_id = ?",
            (self.consumer, message_id),
        ) as cur:
            return await cur.fetchone() is not None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_sql(sql: str) -> str:
    """``?`` placeholders → psycopg's ``%s`` (literal ``%`` doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresTransaction(InboxTransaction):
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._conn.execute(_pg_sql(sql), tuple(params))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = await self._conn.execute(_pg_sql(sql), tuple(params))
        return [tuple(row) for row in await cur.fetchall()]


class _PostgresInbox(Inbox):
    def __init__(self, consumer: str, conninfo: str) -> None:
        super().__init__(consumer)
        self._conninfo = conninfo
        self._conn: Any = None

    async def _connect(self) -> None:
        import psycopg

        self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        async with self._conn.transaction():
            # Serialise concurrent first-time CREATE TABLE IF NOT EXISTS (catalogue race).
            await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('cairn.inbox.ddl'))")
            await self._conn.execute(_DDL)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[InboxTransaction]:
        async with self._conn.transaction():
            yield _PostgresTransaction(self._conn)

    async def process(self, message_id: str, effect: Effect) -> bool:
        conn = self._conn
        async with conn.transaction():
            # A concurrent delivery of the same id blocks on the primary key until the first
            # transaction ends, then inserts nothing: the effect cannot run twice.
            cur = await conn.execute(
                "INSERT INTO inbox_messages (consumer, message_id, processed_at) "
                "VALUES (%s, %s, "
                "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) "
                "ON CONFLICT (consumer, message_id) DO NOTHING",
                (self.consumer, message_id),
            )
            if cur.rowcount == 0:
                return False
            await effect(_PostgresTransaction(conn))
            return True

    async def seen(self, message_id: str) -> bool:
        cur = await self._conn.execute(
            "SELECT 1 FROM inbox_messages WHERE consumer = %s AND message_id = %s",
            (self.consumer, message_id),
        )
        return await cur.fetchone() is not None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()
