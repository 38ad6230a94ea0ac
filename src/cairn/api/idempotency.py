"""Durable ``Idempotency-Key`` records: the first response to a key, replayed to its retries.

One table beside the event store (same database; its migrations are :data:`API`):
``(principal, key)`` → hash of the request, status, body and the headers worth replaying. A retry
with the same key and the same request gets the stored response and writes nothing; the same key
with a different request is refused. A record lives ``CAIRN_IDEMPOTENCY_TTL`` seconds (24 h by
default): an older one counts as absent (the key is new again, with new derived ids) and is
deleted by a prune on every :data:`PRUNE_EVERY`-th use of a key (index on ``created_at``).

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
from datetime import UTC, datetime, timedelta
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


@dataclass(frozen=True, slots=True)
class Claim:
    """What a key holds: the stored first response, or (``stored`` None) a pending attempt whose
    ``generation`` (when this use of the key began) salts the ids derived from the key."""

    stored: StoredResponse | None
    generation: str


#: Records older than the TTL are pruned on every this-many-th claim (and an expired record is
#: treated as absent in any case).
PRUNE_EVERY: Final = 256
_PENDING = 0  # the status of a claimed key whose response is not stored yet


class IdempotencyStore(ABC):
    def __init__(self, secret: bytes | None = None, ttl: float = 86_400.0) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: What ids derived from an Idempotency-Key are keyed with (never sent anywhere).
        self.secret = secret if secret is not None else secrets.token_bytes(32)
        #: Seconds a record lives: an older key is new again (``CAIRN_IDEMPOTENCY_TTL``).
        self.ttl = ttl
        self._claims = 0

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

    async def claim(self, principal: str, key: str) -> Claim:
        """The live record of this key, claiming it (a pending record) when it has none or only
        an expired one. Every process claiming one key at once sees one generation."""
        self._claims += 1
        if self._claims % PRUNE_EVERY == 0:
            await self.prune()
        return await self._claim(principal, key, datetime.now(UTC))

    @abstractmethod
    async def _claim(self, principal: str, key: str, now: datetime) -> Claim: ...

    @abstractmethod
    async def put(self, principal: str, key: str, response: StoredResponse) -> None:
        """Store the first response for a claimed key (a later put changes nothing)."""

    @abstractmethod
    async def prune(self) -> int:
        """Delete the records older than the TTL; how many."""

    @abstractmethod
    async def close(self) -> None: ...


class MemoryIdempotencyStore(IdempotencyStore):
    def __init__(self, secret: bytes | None = None, ttl: float = 86_400.0) -> None:
        super().__init__(secret, ttl)
        self._rows: dict[tuple[str, str], tuple[datetime, StoredResponse | None]] = {}

    async def _claim(self, principal: str, key: str, now: datetime) -> Claim:
        row = self._rows.get((principal, key))
        if row is None or row[0] < now - timedelta(seconds=self.ttl):
            row = self._rows[(principal, key)] = (now, None)
        return Claim(row[1], row[0].isoformat())

    async def put(self, principal: str, key: str, response: StoredResponse) -> None:
        row = self._rows.get((principal, key))
        if row is not None and row[1] is None:
            self._rows[(principal, key)] = (row[0], response)

    async def prune(self) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.ttl)
        old = [k for k, (created, _) in self._rows.items() if created < cutoff]
        for k in old:
            del self._rows[k]
        return len(old)

    async def close(self) -> None:
        return None


#: The headers column is JSONB on PostgreSQL (cast the JSON text going in), text on SQLite.
_HEADERS = {Dialect.SQLITE: "?", Dialect.POSTGRES: "?::jsonb"}


class SQLIdempotencyStore(IdempotencyStore):
    """Records in the process's :class:`Database` (which its owner closes)."""

    def __init__(self, db: Database, secret: bytes | None = None, ttl: float = 86_400.0) -> None:
        super().__init__(secret, ttl)
        self._db = db

    @classmethod
    async def open(cls, db: Database, ttl: float = 86_400.0) -> SQLIdempotencyStore:
        """The store over ``db``, its tables migrated if missing, its derivation secret created
        on first use (the first process to insert it wins; every process reads the same)."""
        await db.migrate(API)
        await db.execute(
            "INSERT INTO api_secret (name, value) VALUES ('idempotency', ?) ON CONFLICT DO NOTHING",
            (secrets.token_hex(32),),
        )
        row = await db.fetchone("SELECT value FROM api_secret WHERE name = 'idempotency'")
        assert row is not None
        return cls(db, bytes.fromhex(str(row["value"])), ttl)

    def _time(self, at: datetime) -> object:
        """``at`` as the created_at column holds it (SQLite: text in its default's format)."""
        if self._db.dialect is Dialect.POSTGRES:
            return at
        return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"

    async def _claim(self, principal: str, key: str, now: datetime) -> Claim:
        cutoff = self._time(now - timedelta(seconds=self.ttl))
        # One statement: a new key is claimed; an expired record is replaced by a new claim
        # (a new generation); a live one is left as it is. Racing processes see one winner.
        await self._db.execute(
            "INSERT INTO api_idempotency"
            " (principal, key, request_hash, status, body, headers, created_at)"
            f" VALUES (?, ?, '', {_PENDING}, ?, {_HEADERS[self._db.dialect]}, ?)"
            " ON CONFLICT (principal, key) DO UPDATE SET request_hash = '',"
            " status = excluded.status, body = excluded.body, headers = excluded.headers,"
            " created_at = excluded.created_at WHERE api_idempotency.created_at < ?",
            (principal, key, b"", "{}", self._time(now), cutoff),
        )
        row = await self._db.fetchone(
            "SELECT request_hash, status, body, headers, created_at FROM api_idempotency"
            " WHERE principal = ? AND key = ?",
            (principal, key),
        )
        if row is None:  # pruned between the two statements by another process: claim again
            return await self._claim(principal, key, datetime.now(UTC))
        generation = str(row["created_at"])
        if int(row["status"]) == _PENDING:
            return Claim(None, generation)
        headers = row["headers"]
        return Claim(
            StoredResponse(
                str(row["request_hash"]),
                int(row["status"]),
                bytes(row["body"]),
                dict(json.loads(headers) if isinstance(headers, str) else headers),
            ),
            generation,
        )

    async def put(self, principal: str, key: str, response: StoredResponse) -> None:
        # One statement; only a pending claim takes a response, so the first response stays
        # when two processes race on one key.
        await self._db.execute(
            f"UPDATE api_idempotency SET request_hash = ?, status = ?, body = ?,"
            f" headers = {_HEADERS[self._db.dialect]}"
            f" WHERE principal = ? AND key = ? AND status = {_PENDING}",
            (
                response.request_hash,
                response.status,
                response.body,
                json.dumps(response.headers),
                principal,
                key,
            ),
        )

    async def prune(self) -> int:
        cutoff = self._time(datetime.now(UTC) - timedelta(seconds=self.ttl))
        return await self._db.execute("DELETE FROM api_idempotency WHERE created_at < ?", (cutoff,))

    async def close(self) -> None:
        return None  # the Database is its owner's


async def open_idempotency_store(
    database_url: str, db: Database, ttl: float = 86_400.0
) -> IdempotencyStore:
    """Idempotency records beside the store at ``database_url``, in ``db``; in memory for a
    store that does not outlive the process (``memory://``, SQLite ``:memory:``)."""
    backend = backend_of(database_url)
    if backend is Backend.POSTGRES or (
        backend is Backend.SQLITE and sqlite_path(database_url) != ":memory:"
    ):
        return await SQLIdempotencyStore.open(db, ttl)
    return MemoryIdempotencyStore(ttl=ttl)
