"""Durable ``Idempotency-Key`` records: the first response to a key, replayed to its retries.

One table beside the event store (same database; its migrations are :data:`API`):
``(principal, key)`` → hash of the request, status, body and the headers worth replaying. A retry
with the same key and the same request gets the stored response and writes nothing; the same key
with a different request is refused.

Two concurrent first attempts with one key are serialised in-process by a per-key lock; across
processes the command ids derived from the key (see ``commands.py``) make the command bus ignore
the second delivery, so at most one of them writes events.

Ids derived from a key are an HMAC of (principal, key) under :attr:`IdempotencyStore.secret`:
one random secret per database (table ``api_secret``, shared by every process on it; per process
for a store that does not outlive it). Another principal who learns a key can neither reuse the
first response nor compute the order id the key creates, so cannot pre-create that order.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from cairn.sql.database import Database, Dialect, Schema
from cairn.store.urls import Backend, backend_of, sqlite_path

MAX_KEY_LENGTH = 255

#: The API's tables (``api_idempotency``): ``.sql`` migrations in ``cairn/api/migrations``.
API: Final = Schema("cairn.api", "api.")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_hash: str
    status: int
    body: bytes
    headers: dict[str, str]


class IdempotencyStore(ABC):
    def __init__(self, secret: bytes | None = None) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: What ids derived from an Idempotency-Key are keyed with (never sent anywhere).
        self.secret = secret if secret is not None else secrets.token_bytes(32)

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


#: The headers column is JSONB on PostgreSQL (cast the JSON text going in), text on SQLite.
_HEADERS = {Dialect.SQLITE: "?", Dialect.POSTGRES: "?::jsonb"}


class SQLIdempotencyStore(IdempotencyStore):
    """Records in the process's :class:`Database` (which its owner closes)."""

    def __init__(self, db: Database, secret: bytes | None = None) -> None:
        super().__init__(secret)
        self._db = db

    @classmethod
    async def open(cls, db: Database) -> SQLIdempotencyStore:
        """The store over ``db``, its tables migrated if missing, its derivation secret created
        on first use (the first process to insert it wins; every process reads the same)."""
        await db.migrate(API)
        await db.execute(
            "INSERT INTO api_secret (name, value) VALUES ('idempotency', ?) ON CONFLICT DO NOTHING",
            (secrets.token_hex(32),),
        )
        row = await db.fetchone("SELECT value FROM api_secret WHERE name = 'idempotency'")
        assert row is not None
        return cls(db, bytes.fromhex(str(row["value"])))

    async def get(self, principal: str, key: str) -> StoredResponse | None:
        row = await self._db.fetchone(
            "SELECT request_hash, status, body, headers FROM api_idempotency"
            " WHERE principal = ? AND key = ?",
            (principal, key),
        )
        if row is None:
            return None
        headers = row["headers"]
        return StoredResponse(
            str(row["request_hash"]),
            int(row["status"]),
            bytes(row["body"]),
            dict(json.loads(headers) if isinstance(headers, str) else headers),
        )

    async def put(self, principal: str, key: str, response: StoredResponse) -> None:
        # One statement, its own short transaction; DO NOTHING keeps the first response when two
        # processes race on one key.
        await self._db.execute(
            "INSERT INTO api_idempotency (principal, key, request_hash, status, body, headers)"
            f" VALUES (?, ?, ?, ?, ?, {_HEADERS[self._db.dialect]}) ON CONFLICT DO NOTHING",
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
        return None  # the Database is its owner's


async def open_idempotency_store(database_url: str, db: Database) -> IdempotencyStore:
    """Idempotency records beside the store at ``database_url``, in ``db``; in memory for a
    store that does not outlive the process (``memory://``, SQLite ``:memory:``)."""
    backend = backend_of(database_url)
    if backend is Backend.POSTGRES or (
        backend is Backend.SQLITE and sqlite_path(database_url) != ":memory:"
    ):
        return await SQLIdempotencyStore.open(db)
    return MemoryIdempotencyStore()
