"""The SQL key stores of crypto-shredding (see :mod:`cairn.store.personal`).

Each runs on its event store's own connections, so keys live in the same database as the
events they open: restoring a backup brings both back together, and a forget is one DELETE.
The ``subject_keys`` table comes from each backend's migrations.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiosqlite
import psycopg
from cachetools import LRUCache

from cairn.sql.array_literal import array_literal
from cairn.store.personal import KeyStore, SubjectKey, new_key

#: One statement: insert a key unless the subject has one, and return the subject's key.
_PG_KEY_FOR_WRITING = """
WITH created AS (
    INSERT INTO subject_keys (key_id, subject, key) VALUES (%(id)s, %(subject)s, %(key)s)
    ON CONFLICT (subject) DO NOTHING
    RETURNING key_id, key
)
SELECT key_id, key FROM created
UNION ALL
SELECT key_id, key FROM subject_keys WHERE subject = %(subject)s
LIMIT 1
"""


#: Subjects whose key for writing a PostgreSQL key store keeps in memory (the most recent).
WRITING_KEYS_CACHED = 10_000


class PostgresKeyStore(KeyStore):
    """Keeps the keys it hands out for writing: the PostgreSQL append checks them
    (``cairn_append_sealed``, :mod:`cairn.store.personal`), so a key another process deleted
    is never written with."""

    def __init__(
        self,
        connection: Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]],
    ) -> None:
        self._connection = connection
        self._writing: LRUCache[str, SubjectKey] = LRUCache(WRITING_KEYS_CACHED)

    async def key_for_writing(self, subject: str) -> SubjectKey:
        key = self._writing.get(subject)
        if key is None:
            key = self._writing[subject] = await self._key_for_writing(subject)
        return key

    def drop_cached(self, key_ids: Collection[uuid.UUID]) -> None:
        for subject in [s for s, key in self._writing.items() if key.key_id in key_ids]:
            del self._writing[subject]

    async def _key_for_writing(self, subject: str) -> SubjectKey:
        params = {"subject": subject}
        while True:
            async with self._connection() as conn:
                cur = await conn.execute(
                    _PG_KEY_FOR_WRITING, {**params, "id": uuid.uuid4(), "key": new_key()}
                )
                row = await cur.fetchone()
            # No row: another writer created the key after this statement's snapshot was
            # taken (the insert saw its row, the select could not); the next statement will.
            if row is not None:
                return SubjectKey(row[0], bytes(row[1]))

    async def keys(self, key_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        if not key_ids:
            return {}
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT key_id, key FROM subject_keys WHERE key_id = ANY(%s)",
                (array_literal(key_ids),),
            )
            return {row[0]: bytes(row[1]) for row in await cur.fetchall()}

    async def forget(self, subject: str) -> bool:
        self._writing.pop(subject, None)
        async with self._connection() as conn:
            cur = await conn.execute("DELETE FROM subject_keys WHERE subject = %s", (subject,))
            return cur.rowcount > 0


class SQLiteKeyStore(KeyStore):
    def __init__(
        self,
        transaction: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]],
        fetch: Callable[[str, Iterable[Any]], Awaitable[list[Any]]],
    ) -> None:
        self._transaction = transaction
        self._fetch = fetch

    async def key_for_writing(self, subject: str) -> SubjectKey:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO subject_keys (key_id, subject, key) VALUES (?, ?, ?)",
                (str(uuid.uuid4()), subject, new_key()),
            )
            rows = list(
                await conn.execute_fetchall(
                    "SELECT key_id, key FROM subject_keys WHERE subject = ?", (subject,)
                )
            )
        return SubjectKey(uuid.UUID(rows[0][0]), bytes(rows[0][1]))

    async def keys(self, key_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        if not key_ids:
            return {}
        marks = ",".join("?" * len(key_ids))
        rows = await self._fetch(
            f"SELECT key_id, key FROM subject_keys WHERE key_id IN ({marks})",
            [str(k) for k in key_ids],
        )
        return {uuid.UUID(row[0]): bytes(row[1]) for row in rows}

    async def forget(self, subject: str) -> bool:
        async with self._transaction() as conn:
            cur = await conn.execute("DELETE FROM subject_keys WHERE subject = ?", (subject,))
            return cur.rowcount > 0
