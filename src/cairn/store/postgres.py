"""``postgresql://user@host:port/db``: the production backend (psycopg 3, async pool).

Gap safety (SPEC §1 "no skipped events") without a global write lock and without a timer; the
full argument is in ``docs/adr/0001-gap-free-global-order-on-postgresql.md``. In short:

* Writers (``cairn_append``, one server-side call per append): (1) take a transaction id
  first, (2) allocate positions from a sequence, (3) then insert the events in a
  subtransaction, whose xid is taken after (2): it is every row's ``xmin``, the row's
  ``horizon`` (``cairn_horizon``). Any transaction that allocated a smaller position already
  had an xid, and it is < horizon.
* Readers (``read_all``, :mod:`cairn.store.postgres_read`): fetch rows after ``after`` in
  position order together with the ``xmin`` of the same snapshot. A row that directly follows
  the previous one is returned. A row after a hole is returned only if ``horizon <= xmin``:
  every transaction that could own the hole has ended, so the hole is a rollback, never an
  event that will commit later. Otherwise the batch stops before the hole; a stuck writer holds
  readers back visibly (``horizon()``).

Live wake-up (:mod:`cairn.store.postgres_notify`): no NOTIFY inside the append transaction (it
takes a global lock at commit on PostgreSQL 15 and would serialise writers again). After
commit, appends flag a background task that sends at most one ``pg_notify`` every couple of
milliseconds; subscribers LISTEN on a dedicated connection and still re-read every
``poll_interval * 20`` s as a safety net.

The schema is ``migrations/postgres/*.sql`` (:mod:`cairn.store.postgres_schema`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Mapping, Sequence
from datetime import datetime
from typing import Final, Self

import psycopg
import psycopg.errors
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from cairn.errors import (
    ConcurrencyError,
    InvalidEventError,
    StoreUnavailableError,
    StreamDeletedError,
)
from cairn.sql.array_literal import array_literal
from cairn.sql.pool import Connection, HotConnections
from cairn.sql.postgres_connect import connect, describe, first_line, open_pool
from cairn.store.appended import recorded_as_sent
from cairn.store.base import (
    ANY,
    STREAM_EXISTS,
    AppendResult,
    EventStore,
    ExpectedVersion,
    HorizonStatus,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    checked_page,
)
from cairn.store.encoding import encode_batch, encode_json, from_micros
from cairn.store.libpq_statement import LibpqStatement
from cairn.store.personal import KeyStore, SubjectKeyGone
from cairn.store.postgres_notify import Wakeup
from cairn.store.postgres_read import STREAM_VERSION, PostgresReader, read_positions
from cairn.store.postgres_schema import prepare_schema
from cairn.store.postgres_transfer import PostgresTransfer
from cairn.store.recent_appends import RecentAppends
from cairn.store.subject_keys import PostgresKeyStore
from cairn.store.transfer import StoreTransfer
from cairn.store.upcasting import Upcasters
from cairn.store.urls import pool_size, postgres_conninfo
from cairn.waiting import wait_set

_loads = json.loads

#: Run through libpq directly (:mod:`cairn.store.libpq_statement`); every value comes back as
#: text, ``recorded_at`` as whole microseconds since the epoch (exact, whatever the DateStyle).
_APPEND: Final = LibpqStatement(
    "cairn_append",
    "SELECT r_version, r_positions, (extract(epoch FROM r_recorded_at) * 1000000)::bigint, "
    "r_retry FROM cairn_append($1, $2, $3::jsonb)",
)


#: ``_APPEND`` for events sealed with subject keys the key store may have cached: written only
#: while every key still exists (migration 0009), else SQLSTATE CA423.
_APPEND_SEALED: Final = LibpqStatement(
    "cairn_append_sealed",
    "SELECT r_version, r_positions, (extract(epoch FROM r_recorded_at) * 1000000)::bigint, "
    "r_retry FROM cairn_append_sealed($1, $2, $3::jsonb, $4::uuid[])",
)


def _appended(result: pq.abc.PGresult) -> tuple[int, list[int], datetime | None, bool]:
    """``_APPEND``'s text row: version, positions (``{7,8,9}``), recorded_at (none for a retry,
    whose caller reads the stored events instead) and whether it was a retry."""
    version, positions, micros, retry = (result.get_value(0, column) for column in range(4))
    assert version is not None
    assert positions is not None
    return (
        int(version),
        [int(p) for p in positions[1:-1].split(b",")],
        from_micros(int(micros)) if micros is not None else None,
        retry == b"t",
    )


def _expected_code(expected: ExpectedVersion) -> int:
    if expected is ANY:
        return -1
    if expected is STREAM_EXISTS:
        return -2
    assert isinstance(expected, int)
    return expected


#: VACUUMs of the keys table after a forget, while a dead key row is still there (~5 s in all).
_VACUUM_ATTEMPTS: Final = 10


class PostgresEventStore(EventStore):
    poll_interval = 0.05

    def __init__(
        self,
        conninfo: str,
        pool: AsyncConnectionPool,
        *,
        upcasters: Upcasters | None = None,
        protected_categories: Collection[str] = (),
    ) -> None:
        super().__init__(upcasters=upcasters, protected_categories=protected_categories)
        self.conninfo = conninfo
        self._connections = HotConnections(pool, purpose=f"at {describe(conninfo)}")
        self._reader = PostgresReader(self._connection)
        self._recent = RecentAppends()
        # The listener's reconnect pause follows poll_interval, even one changed after opening.
        self._wakeup = Wakeup(
            conninfo,
            self._connection,
            reconnect_delay=lambda: self.poll_interval * 20,
            on_forgotten=self._recent.clear,
        )
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
        conninfo = postgres_conninfo(url)
        conn = await connect(conninfo)
        try:
            await prepare_schema(conn, conninfo, migrate=migrate)
        finally:
            await conn.close()
        sizes = pool_size(url)
        pool = await open_pool(conninfo, min_size=sizes.min, max_size=sizes.max)
        return cls(conninfo, pool, upcasters=upcasters, protected_categories=protected_categories)

    @property
    def pool_size(self) -> tuple[int, int]:
        """(minimum, maximum) connections of the pool, as the URL's pool parameters set them."""
        return self._connections.pool.min_size, self._connections.pool.max_size

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._wakeup.close()
        await self._connections.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """The most recently used connection first (:mod:`cairn.sql.pool`)."""
        async with self._connections.connection() as conn:
            try:
                yield conn
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError(
                    f"PostgreSQL at {describe(self.conninfo)}: {first_line(exc)}"
                ) from None

    # -- writing ------------------------------------------------------------------------------

    async def _append(
        self, stream_id: str, events: list[NewEvent], expected: ExpectedVersion
    ) -> AppendResult:
        return await self._append_sealed(stream_id, events, expected, ())

    async def _append_sealed(
        self,
        stream_id: str,
        events: list[NewEvent],
        expected: ExpectedVersion,
        keys: Collection[uuid.UUID],
    ) -> AppendResult:
        versions = [self.schema_version_for(e) for e in events]
        # The batch travels as ONE jsonb document, encoded by one encoder call: one parameter
        # to bind, and nothing per event on the client beyond building its dict.
        batch = encode_batch(
            [
                {"i": str(e.event_id), "t": e.type, "v": v, "d": e.data, "m": e.metadata or {}}
                for e, v in zip(events, versions, strict=True)
            ],
            events,
        )
        stored: list[RecordedEvent] = []
        try:
            # Not _connection(): its OperationalError translation must not hide the
            # psycopg.Error that _translate turns into the right typed error below.
            conn = await self._connections.checkout()
            try:
                params = [stream_id.encode(), b"%d" % _expected_code(expected), batch.encode()]
                statement = _APPEND
                if keys:
                    statement = _APPEND_SEALED
                    literal = array_literal(keys)
                    assert isinstance(literal, str)  # UUIDs always make a literal
                    params.append(literal.encode())
                version, positions, recorded_at, retry = _appended(
                    await statement.run(conn, params)
                )
                if retry:
                    # A retry: hand back the ORIGINAL stored events, not the resent ones.
                    stored = await read_positions(conn, positions)
            finally:
                await self._connections.checkin(conn)
        except psycopg.Error as exc:
            # A failed writer may have left a hole that readers wait on: wake them to re-check.
            self._wakeup.signal()
            raise self._translate(exc, stream_id, expected) from None
        if retry:
            return AppendResult(version, positions[-1], tuple(stored))
        assert recorded_at is not None
        # jsonb gives back the values we sent (key order aside, which a dict comparison
        # ignores), so our own text decodes to what a read would return; decoded on first use.
        result = AppendResult(
            version,
            positions[-1],
            decode=lambda: recorded_as_sent(
                stream_id,
                events,
                [(doc["d"], doc["m"]) for doc in _loads(batch)],
                first_version=version - len(events) + 1,
                positions=positions,
                recorded_at=recorded_at,
                schema_versions=versions,
            ),
        )
        # Before the wake-up: a follower woken by it finds the events here.
        self._recent.record(positions, result)
        self._wakeup.signal()
        return result

    def _translate(
        self, exc: psycopg.Error, stream_id: str, expected: ExpectedVersion
    ) -> Exception:
        state = exc.sqlstate or ""
        diag = exc.diag
        if state == "CA409":
            return ConcurrencyError(stream_id, expected, int(diag.message_detail or 0))
        if state == "CA410":
            return StreamDeletedError(f"stream {stream_id!r} is deleted")
        if state == "CA423":
            return SubjectKeyGone(diag.message_primary or "a subject key no longer exists")
        if state == "CA400":
            return InvalidEventError(diag.message_primary or "event id already stored")
        if isinstance(exc, psycopg.errors.UniqueViolation):
            if diag.constraint_name == "events_stream_version":  # pragma: no cover - row lock
                return ConcurrencyError(stream_id, expected, -1)
            return InvalidEventError(
                f"an event id of this batch is already stored: {diag.message_detail}"
            )
        if isinstance(exc, psycopg.DataError):
            return InvalidEventError(f"event rejected by PostgreSQL: {first_line(exc)}")
        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailableError(
                f"PostgreSQL at {describe(self.conninfo)}: {first_line(exc)}"
            )
        return exc

    # -- reading (cairn.store.postgres_read) --------------------------------------------------

    async def _read_stream(
        self, stream_id: str, from_version: int, to_version: int | None, until: datetime | None
    ) -> list[RecordedEvent]:
        return await self._reader.read_stream(stream_id, from_version, to_version, until)

    async def _read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        events, _ = await self._reader.read_all_proven(after, limit)
        return events

    def _opened(self, stored: AppendResult, opened: AppendResult) -> None:
        self._recent.opened(stored, opened)

    async def read_all_live(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """See :meth:`EventStore.read_all_live`: the run of this process's appends that
        continues ``after`` (:class:`~cairn.store.recent_appends.RecentAppends`), else a read."""
        position, limit = checked_page(after, limit)
        await self._wakeup.ensure_listener()  # to hear of a forget (RecentAppends)
        recent = self._recent.run_after(position, limit)
        if recent:
            return await self.present(recent)
        return await self.read_all(position, limit)

    async def follow(
        self, after: int = 0, *, batch_size: int = 1000, idle: float | None = None
    ) -> AsyncGenerator[list[RecordedEvent], None]:
        """See :meth:`EventStore.follow`. Events this process appended that continue the
        position are taken from :class:`~cairn.store.recent_appends.RecentAppends` instead of
        the database; after such a run it reads the database again only if another process
        may have appended meanwhile (a notification came, or none can come), so a follower of
        this process's own appends costs no read per append."""
        position, _ = checked_page(after, batch_size)
        await self._wakeup.ensure_listener()
        wakeup = self._wakeup
        wait = self.poll_interval * 20 if idle is None else idle
        # The count of other processes' notifications when the last read that found the end of
        # the log (no hole, short page) began: unchanged since, nobody else appended unread.
        caught_up_at: int | None = None
        while True:
            # Take the wake-up handle before looking, so an append that commits between the
            # look and the wait (or while the caller handles the batch) still wakes us.
            waiter = wakeup.waiter
            recent = self._recent.run_after(position, batch_size)
            if recent:
                yield await self.present(recent)
                position = recent[-1].position
                if len(recent) < batch_size and caught_up_at == wakeup.foreign and wakeup.listening:
                    await wait_set(waiter, wait)
                continue
            foreign = wakeup.foreign
            batch, blocked = await self._reader.read_all_proven(position, batch_size)
            if batch:
                yield await self.present(batch)
                position = batch[-1].position
            caught_up_at = foreign if len(batch) < batch_size and not blocked else None
            if len(batch) < batch_size:
                # Blocked behind an open writer: its end may not be announced (a rollback by
                # another client), so look again soon.
                await wait_set(waiter, self.poll_interval if blocked else wait)

    async def wait_for_append(self, after: int, timeout: float) -> None:
        await self._wakeup.ensure_listener()
        waiter = self._wakeup.waiter
        if await self.head_position() > after:
            return
        await wait_set(waiter, timeout)

    async def head_position(self) -> int:
        return await self._reader.head_position()

    async def horizon(self) -> HorizonStatus:
        return await self._reader.horizon()

    async def stream_version(self, stream_id: str) -> int:
        return await self._reader.stream_version(stream_id)

    async def _read_event(self, event_id: uuid.UUID | str) -> RecordedEvent | None:
        return await self._reader.read_event(event_id)

    async def _streams_with_field_value(
        self, types_by_field: Mapping[str, Sequence[str]], value: str
    ) -> list[str]:
        if not types_by_field:
            return []
        clauses, params = [], []
        for field, types in types_by_field.items():
            clauses.append("(type = ANY(%s) AND data->>%s = %s)")
            params += [array_literal(types), field, value]
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT stream_id FROM events WHERE {' OR '.join(clauses)} "
                "GROUP BY stream_id ORDER BY min(position)",
                params,
            )
            return [row[0] for row in await cur.fetchall()]

    async def forget_subject(self, subject: str) -> bool:
        """Also vacuum the keys table, so the deleted key does not linger as a dead row (SPEC
        §12). The pool's connections are autocommit, as VACUUM needs. A transaction that began
        before the delete keeps the row visible to it, and VACUUM then leaves it: it reports
        the dead rows it could not remove, and is repeated until there are none (bounded)."""
        deleted = await super().forget_subject(subject)
        # Events kept opened for this process's followers, and other processes', are opened
        # again from the database (RecentAppends).
        self._recent.clear()
        await self._wakeup.announce_forgotten()
        # Even when no key was left: a repeated forget finishes a vacuum that could not.
        for attempt in range(_VACUUM_ATTEMPTS):
            async with self._connection() as conn:
                await conn.execute("VACUUM subject_keys")
                cur = await conn.execute(
                    "SELECT n_dead_tup FROM pg_stat_user_tables "
                    "WHERE relid = 'subject_keys'::regclass"
                )
                row = await cur.fetchone()
            if not row or not row[0]:
                break
            await asyncio.sleep(0.1 * (attempt + 1))
        return deleted

    def key_store(self) -> KeyStore:
        return PostgresKeyStore(self._connection)

    def transfer(self) -> StoreTransfer:
        return PostgresTransfer(self._connection, describe(self.conninfo))

    # -- snapshots ----------------------------------------------------------------------------

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        state = encode_json(snapshot.state, "snapshot state")
        async with self._connection() as conn:
            # The latest version wins: an older snapshot saved late never replaces a newer one.
            await conn.execute(
                "INSERT INTO snapshots (stream_id, version, state, schema, recorded_at) "
                "VALUES (%s, %s, %s::jsonb, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET "
                "version = excluded.version, state = excluded.state, schema = excluded.schema, "
                "recorded_at = excluded.recorded_at WHERE excluded.version >= snapshots.version",
                (
                    snapshot.stream_id,
                    snapshot.version,
                    state,
                    snapshot.schema,
                    snapshot.recorded_at,
                ),
            )

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT stream_id, version, state, schema, recorded_at FROM snapshots "
                "WHERE stream_id = %s",
                (stream_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return Snapshot(
            stream_id=row[0], version=row[1], state=row[2], schema=row[3], recorded_at=row[4]
        )

    async def delete_snapshots(self, stream_id: str | None = None) -> int:
        async with self._connection() as conn:
            if stream_id is None:
                cur = await conn.execute("DELETE FROM snapshots")
            else:
                cur = await conn.execute("DELETE FROM snapshots WHERE stream_id = %s", (stream_id,))
            return cur.rowcount

    # -- lifecycle of streams -----------------------------------------------------------------

    async def stream_info(self, stream_id: str) -> StreamInfo:
        # The version from the events, the settings from the stream's row if it has one.
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT ({STREAM_VERSION}), COALESCE(s.deleted, false), "
                "COALESCE(s.truncate_before, 0), s.max_age_seconds "
                "FROM (SELECT) AS one LEFT JOIN streams s ON s.stream_id = %(sid)s",
                {"sid": stream_id},
            )
            row = await cur.fetchone()
        assert row is not None
        return StreamInfo(stream_id, *row)

    async def delete_stream(self, stream_id: str) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO streams (stream_id, deleted) VALUES (%s, true) "
                "ON CONFLICT (stream_id) DO UPDATE SET deleted = true",
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
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO streams (stream_id, truncate_before, max_age_seconds) "
                "VALUES (%(sid)s, COALESCE(%(tb)s::bigint, 0), %(age)s::double precision) "
                "ON CONFLICT (stream_id) DO UPDATE SET "
                "truncate_before = COALESCE(%(tb)s::bigint, streams.truncate_before), "
                "max_age_seconds = COALESCE(%(age)s::double precision, streams.max_age_seconds)",
                {"sid": stream_id, "tb": truncate_before, "age": max_age_seconds},
            )
