"""Export and import on PostgreSQL (:mod:`cairn.store.transfer`).

The import is one transaction: it locks the store's tables against appends and key writes,
refuses a store that holds anything, then loads the keys, the stream settings and the events
(``COPY``) with their own positions, and moves ``events_position_seq`` to the imported head so
the next append continues after it.

Gap safety (ADR 0001): a reader passes a hole in ``$all`` only when the row after it carries a
horizon every open transaction is above. An imported row's original ``tx_id``/``horizon``
belong to another cluster (or another backend), and its own ``xmin`` would be the import's
transaction, so both are set to ``'1'``: below every xid there will ever be. Until the import
commits its rows are invisible; once it does, every reader sees the whole imported log as one
committed prefix and passes its holes at once, which is right, because the transactions that
left them ended long ago on the source. Appends after the import take positions above the head
and carry real horizons as usual.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from typing import Final

from cairn.sql.postgres_connect import Connect
from cairn.store.base import RecordedEvent
from cairn.store.encoding import encode_json
from cairn.store.transfer import (
    StoreState,
    StoreTransfer,
    StreamSettings,
    SubjectKeyRecord,
)

#: Below every transaction id: imported rows are proven for every reader (see above).
IMPORTED_HORIZON: Final = "1"

_USED: Final = (
    "SELECT EXISTS (SELECT FROM events) OR EXISTS (SELECT FROM streams) "
    "OR EXISTS (SELECT FROM subject_keys)"
)
_COPY_EVENTS: Final = (
    "COPY events (position, stream_id, version, id, type, data, metadata, schema_version, "
    "recorded_at, tx_id, horizon) FROM STDIN"
)


class PostgresTransfer(StoreTransfer):
    def __init__(self, connection: Connect, where: str) -> None:
        self._connection = connection
        self.where = f"PostgreSQL database {where}"

    async def is_empty(self) -> bool:
        async with self._connection() as conn:
            cur = await conn.execute(_USED)
            row = await cur.fetchone()
        return row is not None and not row[0]

    async def count_events(self, up_to: int) -> int:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM events WHERE position <= %s", (up_to,))
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def subject_keys(self) -> list[SubjectKeyRecord]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT key_id, subject, key, created_at FROM subject_keys "
                "ORDER BY created_at, key_id"
            )
            rows = await cur.fetchall()
        return [SubjectKeyRecord(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    async def stream_settings(self) -> list[StreamSettings]:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT stream_id, deleted, truncate_before, max_age_seconds FROM streams "
                "WHERE deleted OR truncate_before > 0 OR max_age_seconds IS NOT NULL "
                "ORDER BY stream_id"
            )
            rows = await cur.fetchall()
        return [StreamSettings(r[0], r[1], int(r[2]), r[3]) for r in rows]

    async def restore(
        self, state: StoreState, batches: AsyncIterable[Sequence[RecordedEvent]]
    ) -> int:
        head = 0
        async with self._connection() as conn, conn.transaction():
            # Appends (ROW EXCLUSIVE) and key writes wait until the import has committed.
            await conn.execute(
                "LOCK TABLE events, streams, subject_keys IN SHARE ROW EXCLUSIVE MODE"
            )
            cur = await conn.execute(_USED)
            used = await cur.fetchone()
            if used is None or used[0]:
                raise self.refusal()
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO subject_keys (key_id, subject, key, created_at) "
                    "VALUES (%s, %s, %s, %s)",
                    [(k.key_id, k.subject, k.key, k.created_at) for k in state.subject_keys],
                )
                await cursor.executemany(
                    "INSERT INTO streams (stream_id, deleted, truncate_before, max_age_seconds) "
                    "VALUES (%s, %s, %s, %s)",
                    [
                        (s.stream_id, s.deleted, s.truncate_before, s.max_age_seconds)
                        for s in state.streams
                    ],
                )
                async with cursor.copy(_COPY_EVENTS) as copy:
                    async for batch in batches:
                        for e in batch:
                            await copy.write_row(
                                (
                                    e.position,
                                    e.stream_id,
                                    e.version,
                                    e.id,
                                    e.type,
                                    encode_json(e.data, "data"),
                                    encode_json(e.metadata, "metadata"),
                                    e.schema_version,
                                    e.recorded_at,
                                    IMPORTED_HORIZON,
                                    IMPORTED_HORIZON,
                                )
                            )
                        if batch:
                            head = batch[-1].position
            if head:
                await conn.execute("SELECT setval('events_position_seq', %s)", (head,))
        return head
