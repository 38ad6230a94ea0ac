"""The relay's own checkpoint ("published up to position P"), in the store's database.

Table ``relay_checkpoints(name, position, updated_at)``, created on open if missing. One row per
relay destination (``<broker kind>:<topic>``), so pointing cairn at a new broker republishes the
whole log there instead of silently starting at the old broker's position.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Any

from cairn.store.urls import Backend, backend_of, postgres_conninfo, sqlite_path

_DDL = """
CREATE TABLE IF NOT EXISTS relay_checkpoints (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at TEXT NOT NULL
)
"""


class CheckpointStore(ABC):
    """Where a relay remembers how far the broker has confirmed."""

    @abstractmethod
    async def load(self, name: str) -> int:
        """The saved position (0 when the relay never published)."""

    @abstractmethod
    async def save(self, name: str, position: int) -> None:
        """Durably record that everything up to ``position`` is confirmed by the broker."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection. Idempotent."""


class MemoryCheckpoints(CheckpointStore):
    """For ``memory://`` stores: the log itself lives only in this process."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}

    async def load(self, name: str) -> int:
        return self._positions.get(name, 0)

    async def save(self, name: str, position: int) -> None:
        self._positions[name] = position

    async def close(self) -> None:
        return None


class SQLiteCheckpoints(CheckpointStore):
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: Any = None

    async def _connection(self) -> Any:
        if self._conn is None:
            import aiosqlite

            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves so a write transaction
            # takes the write lock up front (waiting up to busy_timeout) instead of failing with
            # SQLITE_BUSY on lock upgrade while another connection of the store writes.
            conn = await aiosqlite.connect(self._path, isolation_level=None)
            try:
                await conn.execute("PRAGMA busy_timeout=5000")
                await conn.execute("PRAGMA journal_mode=WAL")
                await conn.execute(_DDL)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def load(self, name: str) -> int:
        conn = await self._connection()
        async with conn.execute(
            "SELECT position FROM relay_checkpoints WHERE name = ?", (name,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def save(self, name: str, position: int) -> None:
        conn = await self._connection()
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(
                "INSERT INTO relay_checkpoints (name, position, updated_at) "
                "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                "updated_at = excluded.updated_at",
                (name, position),
            )
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class PostgresCheckpoints(CheckpointStore):
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: Any = None

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg

            conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, application_name="cairn-relay", connect_timeout=5
            )
            try:
                async with conn.transaction():
                    # Two workers starting together would both run CREATE TABLE IF NOT EXISTS
                    # and one could fail on the catalogue's unique index; the transaction-scoped
                    # advisory lock makes the check-and-create one at a time.
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cairn.relay.ddl'))")
                    await conn.execute(_DDL)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def load(self, name: str) -> int:
        conn = await self._connection()
        cur = await conn.execute("SELECT position FROM relay_checkpoints WHERE name = %s", (name,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def save(self, name: str, position: int) -> None:
        conn = await self._connection()
        try:
            await conn.execute(
                "INSERT INTO relay_checkpoints (name, position, updated_at) "
                "VALUES (%s, %s, to_char(now() AT TIME ZONE 'UTC', "
                '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')) '
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                "updated_at = excluded.updated_at",
                (name, position),
            )
        except Exception:
            await self.close()  # reconnect next time
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(Exception):
                await conn.close()


def checkpoints_for(database_url: str) -> CheckpointStore:
    """The checkpoint store living in the database at ``database_url``."""
    backend = backend_of(database_url)
    if backend is Backend.POSTGRES:
        return PostgresCheckpoints(postgres_conninfo(database_url))
    if backend is Backend.SQLITE and sqlite_path(database_url) != ":memory:":
        return SQLiteCheckpoints(sqlite_path(database_url))
    return MemoryCheckpoints()
