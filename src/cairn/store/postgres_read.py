"""Reading the PostgreSQL event store, and the proofs that let ``$all`` readers pass a hole.

A reader of ``$all`` must never pass a position that may still commit (SPEC §1, "no skipped
events"). Rows that follow the previous one without a hole need no proof; a row after a hole is
returned only if every transaction below its horizon has ended in the snapshot that returned it
(``horizon <= xmin``): then the hole is a rollback, never an event that will commit later. The
full argument is in ``docs/adr/0001-gap-free-global-order-on-postgresql.md``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from cairn.gc_tuning import paused_gc
from cairn.sql.array_literal import array_literal
from cairn.sql.pool import Connection
from cairn.sql.postgres_connect import Connect
from cairn.store.base import HorizonStatus, RecordedEvent, recorded_event

_loads = json.loads

#: ``data`` and ``metadata`` travel as one JSON array text, decoded by one ``json.loads`` per
#: row: half the decoder calls of two jsonb columns, which dominate a ``read_all`` scan.
COLUMNS: Final = (
    "e.id, e.stream_id, e.type, '[' || e.data::text || ',' || e.metadata::text || ']', "
    "e.version, e.position, e.recorded_at, e.schema_version"
)

_XMIN: Final = (
    "SELECT x AS xmin, x::text::bigint AS xmin_number "
    "FROM pg_snapshot_xmin(pg_current_snapshot()) AS x"
)
#: Whether every transaction below the row's horizon has ended by the snapshot ``s`` (ADR 0001).
#: The horizon is above the row's top xid, so rows whose top xid is not below xmin fail without
#: computing it.
_PROVEN: Final = "(e.tx_id < s.xmin AND cairn_horizon(e.horizon, e.tx_id, e.xmin) <= s.xmin_number)"

#: A stream's version: the highest version of its events (0 for none; ADR 0001, 0008).
STREAM_VERSION: Final = "SELECT COALESCE(max(version), 0) FROM events WHERE stream_id = %(sid)s"

_READ_ALL: Final = (
    f"SELECT {COLUMNS} FROM events e WHERE e.position > %s ORDER BY e.position LIMIT %s"
)

_READ_POSITIONS: Final = (
    f"SELECT {COLUMNS} FROM events e WHERE e.position = ANY(%s) ORDER BY e.position"
)


def _dense_prefix(rows: Sequence[Sequence[Any]], after: int) -> int:
    """How many of ``rows`` (position in column 5) follow ``after`` without a hole."""
    for index, row in enumerate(rows):
        if row[5] != after + index + 1:
            return index
    return len(rows)


def decode(rows: Sequence[Sequence[Any]]) -> list[RecordedEvent]:
    """Rows → events. All payloads of the batch are parsed by ONE ``json.loads`` over the joined
    texts: the C scanner then does the work, not a Python-level call per event."""
    if not rows:
        return []
    with paused_gc():
        payloads = _loads("[" + ",".join([r[3] for r in rows]) + "]")
        return [
            recorded_event(r[0], r[1], r[2], p[0], p[1], r[4], r[5], r[6], r[7])
            for r, p in zip(rows, payloads, strict=True)
        ]


async def read_positions(conn: Connection, positions: Sequence[int]) -> list[RecordedEvent]:
    """The stored events at ``positions`` (an idempotent retry's originals)."""
    cur = await conn.execute(_READ_POSITIONS, (array_literal(positions),))
    return decode(await cur.fetchall())


class PostgresReader:
    """The read side of :class:`~cairn.store.postgres.PostgresEventStore`, over its pool."""

    def __init__(self, connection: Connect) -> None:
        self._connection = connection
        #: The highest position proven passable so far; it only ever moves forward.
        self._proven_head = 0

    async def read_stream(
        self, stream_id: str, from_version: int, to_version: int | None, until: datetime | None
    ) -> list[RecordedEvent]:
        # No horizon check here: the unique (stream_id, version) index makes versions of one
        # stream commit in order, so a stream read never sees version v+1 before v.
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM events e LEFT JOIN streams s USING (stream_id) "
                "WHERE e.stream_id = %(sid)s AND NOT COALESCE(s.deleted, false) "
                # The plain bound lets the (stream_id, version) index skip to from_version;
                # GREATEST(...) alone hides it from the planner and scans the whole stream.
                "AND e.version >= %(lo)s "
                "AND e.version >= GREATEST(%(lo)s, COALESCE(s.truncate_before, 0)) "
                "AND (%(hi)s::bigint IS NULL OR e.version <= %(hi)s::bigint) "
                "AND (%(until)s::timestamptz IS NULL OR e.recorded_at <= %(until)s::timestamptz) "
                "AND (s.max_age_seconds IS NULL "
                "     OR e.recorded_at >= now() - make_interval(secs => s.max_age_seconds)) "
                "ORDER BY e.version",
                {"sid": stream_id, "lo": from_version, "hi": to_version, "until": until},
                binary=True,
            )
            return decode(await cur.fetchall())

    async def read_all_proven(self, after: int, limit: int) -> tuple[list[RecordedEvent], bool]:
        """Events after ``after`` up to the first unproven hole; also whether one stopped us.

        Events that follow ``after`` without a hole need no proof, so the page is read without
        one (the proof costs the server about a third of a scan's time). At a hole, the rest is
        read again with proofs, in a snapshot of its own: a hole still empty in a snapshot that
        proves the event after it stays empty (ADR 0001), whatever the first snapshot saw."""
        async with self._connection() as conn:
            cur = await conn.execute(_READ_ALL, (after, limit), binary=True)
            rows = await cur.fetchall()
        dense = _dense_prefix(rows, after)
        if dense == len(rows):
            return decode(rows), False
        previous = rows[dense - 1][5] if dense else after
        rest, blocked = await self.read_all_with_proofs(previous, limit - dense)
        return decode(rows[:dense]) + rest, blocked

    async def read_all_with_proofs(
        self, after: int, limit: int
    ) -> tuple[list[RecordedEvent], bool]:
        async with self._connection() as conn:
            # xmin comes from the same snapshot as the rows (one statement): every xid below
            # it has finished, and the committed ones among them are visible in these rows.
            # Computed once in a CTE: in the select list it would be evaluated per row.
            cur = await conn.execute(
                f"WITH s AS MATERIALIZED ({_XMIN}) SELECT {COLUMNS}, {_PROVEN} "
                "FROM events e, s WHERE e.position > %s ORDER BY e.position LIMIT %s",
                (after, limit),
                binary=True,
            )
            rows = await cur.fetchall()
        previous = after
        for index, row in enumerate(rows):
            if row[5] != previous + 1 and not row[8]:
                return decode(rows[:index]), True
            previous = row[5]
        return decode(rows), False

    async def head_position(self) -> int:
        # Walk positions only (no payloads) from the last proven head; the proven head only
        # ever moves forward, so this scans the recent tail.
        async with self._connection() as conn:
            cur = await conn.execute(
                f"WITH s AS MATERIALIZED ({_XMIN}) SELECT e.position, {_PROVEN} "
                "FROM events e, s WHERE e.position > %s ORDER BY e.position",
                (self._proven_head,),
            )
            rows = await cur.fetchall()
        head = self._proven_head
        for position, proven in rows:
            if position != head + 1 and not proven:
                break
            head = position
        self._proven_head = head
        return head

    async def horizon(self) -> HorizonStatus:
        head = await self.head_position()
        async with self._connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM events WHERE position > %s", (head,))
            lag_row = await cur.fetchone()
            # Cluster-wide: xids are shared by every database of the server, so a writer open in
            # another database holds our readers back as well.
            cur = await conn.execute(
                "SELECT COALESCE(EXTRACT(epoch FROM clock_timestamp() - min(xact_start)), 0), "
                "count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                "AND pid <> pg_backend_pid()"
            )
            writer_row = await cur.fetchone()
        assert lag_row is not None
        assert writer_row is not None
        return HorizonStatus(
            head=head,
            lag_events=int(lag_row[0]),
            oldest_writer_seconds=float(writer_row[0]),
            details={"open_write_transactions": int(writer_row[1])},
        )

    async def stream_version(self, stream_id: str) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(STREAM_VERSION, {"sid": stream_id})
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def read_event(self, event_id: uuid.UUID | str) -> RecordedEvent | None:
        key = event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(event_id)
        async with self._connection() as conn:
            cur = await conn.execute(f"SELECT {COLUMNS} FROM events e WHERE e.id = %s", (key,))
            row = await cur.fetchone()
        return None if row is None else decode([row])[0]
