"""``sqlite:///path.db``: the embedded default, one file, no server.

Ordering: every append runs in a ``BEGIN IMMEDIATE`` transaction, which takes SQLite's single
write lock before reading the stream's version. Writers (in this process or any other) are
therefore serialised, positions are allocated and committed in the same order, and ``$all`` can
never show a hole that fills later: the gap problem of PostgreSQL cannot arise here.

Connections: one writer connection (guarded by an asyncio lock, so one transaction at a time per
store) and one reader connection. In WAL mode the reader sees committed data only and never
blocks the writer. Every connection waits up to ``busy_timeout`` for the write lock, because the
same file is shared with read models, saga state and relay checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Self

import aiosqlite

from cairn.errors import (
    ConcurrencyError,
    InvalidEventError,
    SchemaMissingError,
    StreamDeletedError,
)
from cairn.gc_tuning import paused_gc
from cairn.sql.registry import MigrationSet, apply_sqlite, pending_sqlite
from cairn.sql.sqlite import connect
from cairn.store.appended import recorded_as_sent
from cairn.store.base import (
    STREAM_EXISTS,
    AppendResult,
    EventStore,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamState,
    recorded_event,
)
from cairn.store.encoding import EPOCH, decode_payloads, encode_json, from_micros, to_micros
from cairn.store.personal import KeyStore
from cairn.store.sqlite_transfer import SQLiteTransfer
from cairn.store.subject_keys import SQLiteKeyStore
from cairn.store.transfer import StoreTransfer
from cairn.store.upcasting import Upcasters
from cairn.store.urls import sqlite_path
from cairn.waiting import wait_set

#: The schema, ``migrations/sqlite/NNNN_name.sql``: append only, never edit an applied file.
MIGRATIONS: Final = MigrationSet("cairn.store", "migrations/sqlite")

#: ``data`` and ``metadata`` come back as one JSON array text: one decoder call per row.
_COLUMNS: Final = (
    "id, stream_id, type, '[' || data || ',' || metadata || ']', version, position, "
    "recorded_at, schema_version"
)
_INSERT_COLUMNS: Final = (
    "id, stream_id, type, data, metadata, version, position, recorded_at, schema_version"
)
_loads = json.loads


def _decode(rows: Sequence[Sequence[Any]]) -> list[RecordedEvent]:
    """Rows → events; one ``json.loads`` for the payloads of the whole batch."""
    if not rows:
        return []
    with paused_gc():
        payloads = _loads("[" + ",".join([r[3] for r in rows]) + "]")
        return [
            recorded_event(
                uuid.UUID(r[0]),
                r[1],
                r[2],
                p[0],
                p[1],
                r[4],
                r[5],
                EPOCH + timedelta(microseconds=r[6]),
                r[7],
            )
            for r, p in zip(rows, payloads, strict=True)
        ]


#: Tries at truncating the write-ahead log after a forget (each waits up to busy_timeout).
_CHECKPOINT_ATTEMPTS: Final = 3


class SQLiteEventStore(EventStore):
    poll_interval = 0.02

    def __init__(
        self,
        path: str,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        *,
        upcasters: Upcasters | None = None,
        protected_categories: Collection[str] = (),
    ) -> None:
        super().__init__(upcasters=upcasters, protected_categories=protected_categories)
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        # A private in-memory database has one connection only: reads then queue behind a write
        # transaction instead of seeing its uncommitted rows.
        self._shared = writer is reader
        self._appended = asyncio.Event()
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        upcasters: Upcasters | None = None,
        migrate: bool = True,
        protected_categories: Collection[str] = (),
    ) -> Self:
        path = sqlite_path(url)
        writer = await connect(path)
        try:
            # Deleted rows (a forgotten subject's key, snapshots in clear) are overwritten with
            # zeros, not left readable in free pages (SPEC §12). Writes go through this one.
            await writer.execute("PRAGMA secure_delete=ON")
            if migrate:
                await apply_sqlite(writer, [MIGRATIONS])
            elif await pending_sqlite(writer, [MIGRATIONS]):
                raise SchemaMissingError(
                    f"SQLite database {path} has no (or an outdated) cairn schema; "
                    "run `cairn migrate` or open with migrate=True"
                )
            reader = writer if path == ":memory:" else await connect(path)
        except BaseException:
            await writer.close()
            raise
        return cls(
            path, writer, reader, upcasters=upcasters, protected_categories=protected_categories
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._writer.close()
        if not self._shared:
            await self._reader.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            conn = self._writer
            # IMMEDIATE: take the database's write lock before reading anything, so the version
            # check and the insert cannot interleave with another writer (lost update) and
            # positions commit in the order they are allocated (no holes visible to readers).
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        if self._shared:
            async with self._write_lock:
                return list(await self._reader.execute_fetchall(sql, tuple(params)))
        return list(await self._reader.execute_fetchall(sql, tuple(params)))

    # -- writing ------------------------------------------------------------------------------

    async def _append(
        self, stream_id: str, events: list[NewEvent], expected: ExpectedVersion
    ) -> AppendResult:
        # Encode before the transaction: a bad payload anywhere in the batch writes nothing.
        encoded = [
            (encode_json(e.data, "data"), encode_json(e.metadata or {}, "metadata")) for e in events
        ]
        versions = [self.schema_version_for(e) for e in events]
        now = to_micros(datetime.now(UTC))
        async with self._transaction() as conn:
            # One round trip to the database thread for everything the checks need.
            ((first_stream, first_version, actual, deleted, base),) = await conn.execute_fetchall(
                "SELECT (SELECT stream_id FROM events WHERE id = ?1), "
                "(SELECT version FROM events WHERE id = ?1), "
                "(SELECT version FROM streams WHERE stream_id = ?2), "
                "(SELECT deleted FROM streams WHERE stream_id = ?2), "
                "(SELECT seq FROM sqlite_sequence WHERE name = 'events')",
                (str(events[0].event_id), stream_id),
            )
            if first_stream is not None:
                return await self._recognise_retry(
                    conn, stream_id, events, first_stream, first_version
                )
            actual = actual or 0
            base = base or 0
            if deleted:
                raise StreamDeletedError(f"stream {stream_id!r} is deleted")
            if expected is STREAM_EXISTS:
                if actual == 0:
                    raise ConcurrencyError(stream_id, expected, actual)
            elif not isinstance(expected, StreamState) and expected != actual:
                raise ConcurrencyError(stream_id, expected, actual)
            try:
                await conn.executemany(
                    f"INSERT INTO events ({_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            str(event.event_id),
                            stream_id,
                            event.type,
                            data,
                            metadata,
                            actual + i + 1,
                            base + i + 1,
                            now,
                            schema_version,
                        )
                        for i, (event, (data, metadata), schema_version) in enumerate(
                            zip(events, encoded, versions, strict=True)
                        )
                    ],
                )
            except sqlite3.IntegrityError as exc:
                raise InvalidEventError(
                    f"an event id of this batch is already stored elsewhere: {exc}"
                ) from None
            version = actual + len(events)
            await conn.execute(
                "INSERT INTO streams (stream_id, version) VALUES (?, ?) "
                "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
                (stream_id, version),
            )
        self._appended.set()
        self._appended = asyncio.Event()
        return AppendResult(
            version,
            base + len(events),
            decode=lambda: recorded_as_sent(
                stream_id,
                events,
                decode_payloads(encoded),
                first_version=actual + 1,
                positions=range(base + 1, base + len(events) + 1),
                recorded_at=from_micros(now),  # the stored microseconds, as a read gives them
                schema_versions=versions,
            ),
        )

    async def _recognise_retry(
        self,
        conn: aiosqlite.Connection,
        stream_id: str,
        events: list[NewEvent],
        first_stream: str,
        first: int,
    ) -> AppendResult:
        """The first id is stored: this is a retry of the same batch, or a mistake."""
        if first_stream != stream_id:
            raise InvalidEventError(
                f"event id {events[0].event_id} is already stored in another stream"
            )
        stored = _decode(
            list(
                await conn.execute_fetchall(
                    f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? "
                    "AND version >= ? AND version < ? ORDER BY version",
                    (stream_id, first, first + len(events)),
                )
            )
        )
        if [r.id for r in stored] != [e.event_id for e in events]:
            raise InvalidEventError(
                f"event ids of this batch are already stored at other places in {stream_id!r}; "
                "a retry must resend the same batch"
            )
        return AppendResult(stored[-1].version, stored[-1].position, tuple(stored))

    # -- reading ------------------------------------------------------------------------------

    async def _read_stream(
        self, stream_id: str, from_version: int, to_version: int | None, until: datetime | None
    ) -> list[RecordedEvent]:
        info = await self.stream_info(stream_id)
        if info.deleted:
            return []
        sql = f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND version >= ?"
        params: list[Any] = [stream_id, max(from_version, info.truncate_before)]
        if to_version is not None:
            sql += " AND version <= ?"
            params.append(to_version)
        if until is not None:
            sql += " AND recorded_at <= ?"
            params.append(to_micros(until))
        if info.max_age_seconds is not None:
            sql += " AND recorded_at >= ?"
            cutoff = datetime.now(UTC) - timedelta(seconds=info.max_age_seconds)
            params.append(to_micros(cutoff))
        sql += " ORDER BY version"
        return _decode(await self._fetch(sql, params))

    async def _read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (after, limit),
        )
        return _decode(rows)

    async def wait_for_append(self, after: int, timeout: float) -> None:
        if await self.head_position() > after:
            return
        # In-process appends wake us at once; appends by other processes on the same file are
        # noticed by the caller's next read, at most ``poll_interval`` later.
        await wait_set(self._appended, min(timeout, self.poll_interval))

    async def _read_event(self, event_id: uuid.UUID | str) -> RecordedEvent | None:
        key = event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(event_id)
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM events WHERE id = ?", (str(key),))
        return _decode(rows)[0] if rows else None

    async def _streams_with_field_value(
        self, types_by_field: Mapping[str, Sequence[str]], value: str
    ) -> list[str]:
        if not types_by_field:
            return []
        clauses, params = [], []
        for field, types in types_by_field.items():
            clauses.append(
                f"(type IN ({','.join('?' * len(types))}) AND json_extract(data, ?) = ?)"
            )
            params += [*types, "$." + json.dumps(field), value]
        rows = await self._fetch(
            f"SELECT stream_id FROM events WHERE {' OR '.join(clauses)} "
            "GROUP BY stream_id ORDER BY min(position)",
            params,
        )
        return [row[0] for row in rows]

    async def forget_subject(self, subject: str) -> bool:
        """Also checkpoint and truncate the write-ahead log, which still holds the pages written
        with the key: ``secure_delete`` zeroes the database file's copy only."""
        deleted = await super().forget_subject(subject)
        if deleted and not self._shared:
            # Busy (a reader still on an older snapshot, past busy_timeout): try again shortly.
            for attempt in range(_CHECKPOINT_ATTEMPTS):
                async with self._write_lock:
                    rows = await self._writer.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
                if not any(row[0] for row in rows):
                    break
                await asyncio.sleep(0.1 * (attempt + 1))
        return deleted

    def key_store(self) -> KeyStore:
        return SQLiteKeyStore(self._transaction, self._fetch)

    def transfer(self) -> StoreTransfer:
        return SQLiteTransfer(self.path, self._transaction, self._fetch)

    async def head_position(self) -> int:
        rows = await self._fetch("SELECT COALESCE(MAX(position), 0) FROM events")
        return int(rows[0][0])

    async def stream_version(self, stream_id: str) -> int:
        rows = await self._fetch("SELECT version FROM streams WHERE stream_id = ?", (stream_id,))
        return int(rows[0][0]) if rows else 0

    # -- snapshots ----------------------------------------------------------------------------

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        state = encode_json(snapshot.state, "snapshot state")
        async with self._transaction() as conn:
            # The latest version wins: an older snapshot saved late never replaces a newer one.
            await conn.execute(
                "INSERT INTO snapshots (stream_id, version, state, schema, recorded_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET "
                "version = excluded.version, state = excluded.state, schema = excluded.schema, "
                "recorded_at = excluded.recorded_at WHERE excluded.version >= snapshots.version",
                (
                    snapshot.stream_id,
                    snapshot.version,
                    state,
                    snapshot.schema,
                    to_micros(snapshot.recorded_at),
                ),
            )

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        rows = await self._fetch(
            "SELECT stream_id, version, state, schema, recorded_at FROM snapshots "
            "WHERE stream_id = ?",
            (stream_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return Snapshot(
            stream_id=r[0],
            version=r[1],
            state=json.loads(r[2]),
            schema=r[3],
            recorded_at=from_micros(r[4]),
        )

    async def delete_snapshots(self, stream_id: str | None = None) -> int:
        async with self._transaction() as conn:
            if stream_id is None:
                cursor = await conn.execute("DELETE FROM snapshots")
            else:
                cursor = await conn.execute(
                    "DELETE FROM snapshots WHERE stream_id = ?", (stream_id,)
                )
            return int(cursor.rowcount)

    # -- lifecycle of streams -----------------------------------------------------------------

    async def stream_info(self, stream_id: str) -> StreamInfo:
        rows = await self._fetch(
            "SELECT version, deleted, truncate_before, max_age_seconds FROM streams "
            "WHERE stream_id = ?",
            (stream_id,),
        )
        if not rows:
            return StreamInfo(stream_id=stream_id, version=0)
        version, deleted, truncate_before, max_age = rows[0]
        return StreamInfo(
            stream_id=stream_id,
            version=version,
            deleted=bool(deleted),
            truncate_before=truncate_before,
            max_age_seconds=max_age,
        )

    async def delete_stream(self, stream_id: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO streams (stream_id, version, deleted) VALUES (?, 0, 1) "
                "ON CONFLICT (stream_id) DO UPDATE SET deleted = 1",
                (stream_id,),
            )

    async def set_retention(
        self,
        stream_id: str,
        *,
        truncate_before: int | None = None,
        max_age_seconds: float | None = None,
    ) -> None:
        self.check_retention_allowed(stream_id)
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO streams (stream_id, version) VALUES (?, 0) "
                "ON CONFLICT (stream_id) DO NOTHING",
                (stream_id,),
            )
            if truncate_before is not None:
                await conn.execute(
                    "UPDATE streams SET truncate_before = ? WHERE stream_id = ?",
                    (truncate_before, stream_id),
                )
            if max_age_seconds is not None:
                await conn.execute(
                    "UPDATE streams SET max_age_seconds = ? WHERE stream_id = ?",
                    (max_age_seconds, stream_id),
                )


async def migrate(url: str) -> list[str]:
    """Apply the SQLite schema at ``url``; returns the names of the migrations applied now."""
    conn = await connect(sqlite_path(url))
    try:
        return await apply_sqlite(conn, [MIGRATIONS])
    finally:
        await conn.close()
