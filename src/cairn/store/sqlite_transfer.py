"""Export and import on SQLite (:mod:`cairn.store.transfer`).

The import runs in one ``BEGIN IMMEDIATE`` transaction on the store's writer: the emptiness
check and every insert hold the database's write lock, so no append can slip in between, and a
failure anywhere leaves the file as it was. Events keep their positions: an explicit ``position``
in an ``AUTOINCREMENT`` table moves ``sqlite_sequence`` past it, so the next append continues
after the imported head. There is no gap problem on SQLite (ADR 0002), so holes between imported
positions need nothing more. Each stream's row gets its version (the highest of its events)
and its lifecycle settings.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from cairn.store.base import RecordedEvent
from cairn.store.encoding import encode_json, to_micros
from cairn.store.transfer import (
    StoreState,
    StoreTransfer,
    StreamSettings,
    SubjectKeyRecord,
)

_USED = (
    "SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM streams) "
    "OR EXISTS (SELECT 1 FROM subject_keys)"
)
_INSERT_EVENT = (
    "INSERT INTO events (id, stream_id, type, data, metadata, version, position, recorded_at, "
    "schema_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _created_at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class SQLiteTransfer(StoreTransfer):
    def __init__(
        self,
        path: str,
        transaction: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]],
        fetch: Callable[[str, Iterable[Any]], Awaitable[list[Any]]],
    ) -> None:
        self.where = f"SQLite database {path}"
        self._transaction = transaction
        self._fetch = fetch

    async def is_empty(self) -> bool:
        return not (await self._fetch(_USED, ()))[0][0]

    async def count_events(self, up_to: int) -> int:
        rows = await self._fetch("SELECT count(*) FROM events WHERE position <= ?", (up_to,))
        return int(rows[0][0])

    async def subject_keys(self) -> list[SubjectKeyRecord]:
        rows = await self._fetch(
            "SELECT key_id, subject, key, created_at FROM subject_keys ORDER BY created_at, key_id",
            (),
        )
        return [
            SubjectKeyRecord(uuid.UUID(r[0]), r[1], bytes(r[2]), _created_at(r[3].rstrip("Z")))
            for r in rows
        ]

    async def stream_settings(self) -> list[StreamSettings]:
        rows = await self._fetch(
            "SELECT stream_id, deleted, truncate_before, max_age_seconds FROM streams "
            "WHERE deleted OR truncate_before > 0 OR max_age_seconds IS NOT NULL "
            "ORDER BY stream_id",
            (),
        )
        return [StreamSettings(r[0], bool(r[1]), int(r[2]), r[3]) for r in rows]

    async def restore(
        self, state: StoreState, batches: AsyncIterable[Sequence[RecordedEvent]]
    ) -> int:
        async with self._transaction() as conn:
            ((used,),) = await conn.execute_fetchall(_USED)
            if used:
                raise self.refusal()
            await conn.executemany(
                "INSERT INTO subject_keys (key_id, subject, key, created_at) VALUES (?, ?, ?, ?)",
                [
                    (
                        str(k.key_id),
                        k.subject,
                        k.key,
                        k.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    )
                    for k in state.subject_keys
                ],
            )
            head = 0
            async for batch in batches:
                await conn.executemany(
                    _INSERT_EVENT,
                    [
                        (
                            str(e.id),
                            e.stream_id,
                            e.type,
                            encode_json(e.data, "data"),
                            encode_json(e.metadata, "metadata"),
                            e.version,
                            e.position,
                            to_micros(e.recorded_at),
                            e.schema_version,
                        )
                        for e in batch
                    ],
                )
                if batch:
                    head = batch[-1].position
            await conn.execute(
                "INSERT INTO streams (stream_id, version) "
                "SELECT stream_id, max(version) FROM events GROUP BY stream_id"
            )
            await conn.executemany(
                "INSERT INTO streams (stream_id, version, deleted, truncate_before, "
                "max_age_seconds) VALUES (?, 0, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET "
                "deleted = excluded.deleted, truncate_before = excluded.truncate_before, "
                "max_age_seconds = excluded.max_age_seconds",
                [
                    (s.stream_id, int(s.deleted), s.truncate_before, s.max_age_seconds)
                    for s in state.streams
                ],
            )
        return head
