"""Durable ``Idempotency-Key`` records: the first response to a key, replayed to its retries.

One table beside the event store (same database): ``(principal, key)`` → hash of the request,
status, body and the headers worth replaying. A retry with the same key and the same request gets
the stored response and writes nothing; the same key with a different request is refused.

Two concurrent first attempts with one key are serialised in-process by a per-key lock; across
processes the command ids derived from the key (see ``routes/_commands.py``) make the command
bus ignore the second delivery, so at most one of them writes events.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from cairn.pgpool import HotConnections
from cairn.store.urls import Backend, backend_of, postgres_conninfo, sqlite_path

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_hash: str
    status: int
    body: bytes
    headers: dict[str, str]


class IdempotencyStore(ABC):
    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @asynccontextmanager
    async def locked(self, principal: str, key: str) -> AsyncIterator[None]:
        """Serialise requests with one key inside this process."""
        lock = self._locks.setdefault((principal, key), asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._locks.get((principal, key)) is lock:
                self._locks.pop((principal, key), None)

    @abstractmethod
    async def get(self, principal: str, key: str) -> StoredResponse | None:
        """The response stored for this key, if any."""

    @abstractmethod
    async def put(self, principal: str, key: str, response: StoredResponse) -> None:
        """Store the first response for a key (a later put for the same key changes nothing)."""

    @abstractmethod
    async def close(self) -> None: ...


class MemoryIdempotencyStore(IdempotencyStore):
    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[tuple[str, str], StoredResponse] = {}

    async def get(self, principal: str, key: str) -> StoredResponse | None:
        return self._rows.get((principal, key))

    async def put(self, principal: str, key: str, response: StoredResponse) -> None:
        self._rows.setdefault((principal, key), response)

    async def close(self) -> None:
        return None


_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS api_idempotency (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (principal, key)
)
"""


class SQLiteIdempotencyStore(IdempotencyStore):
    def __init__(self, conn: Any) -> None:
        super().__init__()
        self._conn = conn
        self._write = asyncio.Lock()

    @classmethod
    async def open(cls, url: str) -> SQLiteIdempotencyStore:
        import aiosqlite

        conn = await aiosqlite.connect(sqlite_path(url), isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute(_SQLITE_DDL)
        return cls(conn)

    async def get(self, principal: str, key: str) -> StoredResponse | None:
        cur = await self._conn.execute(
            "SELECT request_hash, status, body, headers FROM api_idempotency"
            " WHERE principal = ? AND key = ?",
            (principal, key),
        )
        row = await cur.fetchone()
        await cur.close()
        if row is None:
            return None
        return StoredResponse(str(row[0]), int(row[1]), bytes(row[2]), json.loads(row[3]))

    async def put(self, principal: str, key: str, response: StoredResponse) -> None:
        async with self._write:
            # A single autocommit INSERT is its own short write transaction; OR IGNORE keeps
            # the first response when two processes race on one key.
            await self._conn.execute(
                "INSERT OR IGNORE INTO api_idempotency"
                " (principal, key, request_hash, status, body, headers) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    principal,
                    key,
                    response.request_hash,
                    response.status,
                    response.body,
                    json.dumps(response.headers),
                ),
            )

    async def close(self) -> None:
        await self._conn.close()


_PG_DDL = """
CREATE TABLE IF NOT EXISTS api_idempotency (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BYTEA NOT NULL,
    headers JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
)
"""


class PostgresIdempotencyStore(IdempotencyStore):
    def __init__(self, pool: Any) -> None:
        super().__init__()
        self._pool = HotConnections(pool, purpose="for idempotency keys")

    @classmethod
    async def open(cls, url: str) -> PostgresIdempotencyStore:
        from psycopg_pool import AsyncConnectionPool

        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            postgres_conninfo(url),
            min_size=1,
            max_size=4,
            open=False,
            kwargs={"autocommit": True},
            timeout=10,
        )
        await pool.open(wait=True, timeout=10)
        async with pool.connection() as conn:
            await conn.execute(_PG_DDL)
        return cls(pool)

    async def get(self, principal: str, key: str) -> StoredResponse | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT request_hash, status, body, headers FROM api_idempotency"
                " WHERE principal = %s AND key = %s",
                (principal, key),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return StoredResponse(str(row[0]), int(row[1]), bytes(row[2]), dict(row[3]))

    async def put(self, principal: str, key: str, response: StoredResponse) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO api_idempotency (principal, key, request_hash, status, body, headers)"
                " VALUES (%s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT DO NOTHING",
                (
                    principal,
                    key,
                    response.request_hash,
                    response.status,
                    response.body,
                    json.dumps(response.headers),
                ),
            )

    async def close(self) -> None:
        await self._pool.close()


async def open_idempotency_store(url: str) -> IdempotencyStore:
    backend = backend_of(url)
    if backend is Backend.SQLITE and sqlite_path(url) != ":memory:":
        return await SQLiteIdempotencyStore.open(url)
    if backend is Backend.POSTGRES:
        return await PostgresIdempotencyStore.open(url)
    return MemoryIdempotencyStore()
