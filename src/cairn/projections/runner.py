"""The projection runner: ``$all`` in batches → read model rows + checkpoint, in one transaction.

Per projection, per table version, the bookkeeping lives beside the read model:

- ``projection_checkpoints(name, version, position, state, owner, errors, last_error, …)``
- ``read_model_versions(projection, active_version, rebuilding_version)``: which tables queries
  read, and which version a rebuild is filling.
- ``projection_parked(id, projection, version, position, event_id, …, error, attempts)``: events
  whose handler kept failing; the projection went on without them.

Effectively-once: a batch's row changes and its checkpoint commit together, and the transaction
first re-reads the checkpoint it is about to advance (compare-and-set). Two runners that both
believed they owned a projection could therefore never apply the same batch twice; the lease
(advisory lock / flock) is what keeps that from even being attempted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from cairn.backoff import Backoff
from cairn.errors import LeaseLostError
from cairn.gc_tuning import CatchUpRelief
from cairn.leases import Lease, Leases, lease_for
from cairn.orders.read_models.orders import ORDERS, public_order
from cairn.projections.cache import OrderCache
from cairn.projections.read_model import ReadModel, Rows
from cairn.sql.database import Database, Dialect, Tx
from cairn.store.base import EventStore, RecordedEvent
from cairn.store.urls import Backend, backend_of
from cairn.waiting import wait_set

ProgressCallback = Callable[[int, int], None]

_DDL = (
    """CREATE TABLE IF NOT EXISTS projection_checkpoints (
        name TEXT NOT NULL,
        version BIGINT NOT NULL,
        position BIGINT NOT NULL,
        state TEXT NOT NULL,
        owner TEXT,
        errors BIGINT NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (name, version))""",
    """CREATE TABLE IF NOT EXISTS read_model_versions (
        projection TEXT PRIMARY KEY,
        active_version BIGINT NOT NULL,
        rebuilding_version BIGINT,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS projection_parked (
        id TEXT PRIMARY KEY,
        projection TEXT NOT NULL,
        version BIGINT NOT NULL,
        position BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        parked_at TEXT NOT NULL)""",
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _fix(sql: str, dialect: Dialect) -> str:
    return sql.replace("BIGINT", "INTEGER") if dialect is Dialect.SQLITE else sql


@dataclass(frozen=True)
class ParkedEvent:
    """An event a projection gave up on, with the error it raised."""

    id: str
    projection: str
    version: int
    position: int
    event_id: str
    event_type: str
    stream_id: str
    error: str
    attempts: int
    parked_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProjectionStatus:
    """What ``GET /api/v1/admin/projections`` shows for one projection."""

    name: str
    position: int
    lag_events: int
    lag_seconds: float
    state: str  # running | catching_up | rebuilding | stopped | failed
    errors: int
    last_error: str | None
    parked: int
    owner: str | None
    version: int
    rebuild_done: int | None = None
    rebuild_total: int | None = None
    rebuild_rate: float | None = None
    rebuild_eta_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RebuildProgress:
    """done / total, rate and ETA of a running rebuild."""

    def __init__(self, total: int) -> None:
        self.started = time.monotonic()
        self.done = 0
        self.total = total

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate
        return max(self.total - self.done, 0) / rate if rate > 0 else None


class SharedReader:
    """One ``read_all`` for every projection at the same position.

    Projections of one engine usually move in step (catch-up, live): without sharing, each would
    fetch and decode the same batch from the store. A batch is kept only while a few others are
    newer; an empty batch is never kept (the log may have grown since).
    """

    def __init__(self, store: EventStore, keep: int = 16) -> None:
        self._store = store
        self._keep = keep
        self._batches: dict[tuple[int, int], asyncio.Future[list[RecordedEvent]]] = {}

    async def read(self, after: int, limit: int) -> list[RecordedEvent]:
        key = (after, limit)
        pending = self._batches.get(key)
        if pending is None:
            pending = self._start(key)
        batch = list(await asyncio.shield(pending))
        if len(batch) == limit and self._keep:
            # Catching up: fetch the next batch while this one is being applied.
            following = (batch[-1].position, limit)
            if following not in self._batches:
                self._start(following)
        return batch

    def _start(self, key: tuple[int, int]) -> asyncio.Future[list[RecordedEvent]]:
        task = asyncio.ensure_future(self._store.read_all(after=key[0], limit=key[1]))
        self._batches[key] = task

        def settled(done: asyncio.Future[list[RecordedEvent]]) -> None:
            # Failed or empty batches are not kept: the next reader asks the store again.
            failed = done.cancelled() or done.exception() is not None or not done.result()
            if failed and self._batches.get(key) is done:
                del self._batches[key]

        task.add_done_callback(settled)
        while len(self._batches) > max(self._keep, 1):
            oldest = next(iter(self._batches))
            if oldest == key:
                break
            del self._batches[oldest]
        return task

    def close(self) -> None:
        for pending in self._batches.values():
            pending.cancel()
        self._batches.clear()


class _HandlerFailed(Exception):
    def __init__(self, event: RecordedEvent, error: BaseException) -> None:
        super().__init__(f"{event.type} at {event.position}: {error!r}")
        self.event = event
        self.error = error


class _Stale(Exception):
    """The checkpoint or the active version moved under us: re-read and go on."""


@dataclass
class RunnerConfig:
    batch_size: int = 500
    #: After a full batch the runner is catching up: it reads this many events at a time (per
    #: transaction) until a batch comes back short. Fewer, larger transactions amortise each
    #: batch's fixed cost (its queries, checkpoint and commit); live batches stay small.
    catch_up_batch_size: int = 2000
    rebuild_batch_size: int = 2000
    handler_attempts: int = 3
    retry_backoff: float = 0.05
    lease_retry: float = 0.5
    idle_wait: float = 1.0
    #: A batch with none of the projection's event types moves the checkpoint in memory only;
    #: it is written with the next batch that changes rows, or after this many seconds.
    checkpoint_interval: float = 0.1


class ProjectionRunner:
    """Keeps one read model up to date; one owner at a time (its lease)."""

    def __init__(
        self,
        model: ReadModel,
        store: EventStore,
        db: Database,
        lease: Lease,
        owner: str,
        config: RunnerConfig,
        cache: OrderCache | None = None,
        reader: SharedReader | None = None,
        turn: asyncio.Lock | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.reader = reader or SharedReader(store, keep=0)
        #: Shared by the runners of one engine: their batch transactions take turns. Overlapping
        #: ones only compete for the same two cores and connections, and every open transaction
        #: holds back the PostgreSQL store's proof horizon (xmin) for all readers of $all.
        self.turn = turn or asyncio.Lock()
        self.db = db
        self.lease = lease
        self.owner = owner
        self.config = config
        self.cache = cache
        self.version = 1
        self.position = 0
        self.state = "stopped"
        self.errors = 0
        self.last_error: str | None = None
        self.rebuild: RebuildProgress | None = None
        # Swapped for a fresh Event on every advance: waiters never queue on a lock the runner
        # needs (a Condition would make the runner wait behind every reader it wakes).
        self._advanced = asyncio.Event()
        self._attempts: dict[str, int] = {}
        self._lease_checked = 0.0
        #: The checkpoint as stored (``position`` may be ahead of it over ignored events only).
        self.persisted = 0
        self._persisted_at = 0.0
        self._relief = CatchUpRelief()
        #: How many events the next read asks for, and the last one asked for (see ``step``).
        self._limit = self._last_limit = config.batch_size

    @property
    def name(self) -> str:
        return self.model.name

    # -- the live loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the lease, then follow ``$all`` forever (cancel to stop)."""
        try:
            while True:
                self.state = "stopped"
                await self.lease.acquire(retry_interval=self.config.lease_retry)
                try:
                    await self._follow()
                except LeaseLostError:
                    self.state = "stopped"
                    continue
                finally:
                    self._relief.release()
        finally:
            self.state = "stopped"
            with contextlib.suppress(Exception):
                await asyncio.shield(self.lease.release())

    async def _follow(self) -> None:
        await self._load_position()
        self.state = "catching_up"
        failures = 0
        while True:
            try:
                processed = await self.step()
                failures = 0
            except LeaseLostError:
                raise
            except Exception as exc:  # the database or store failed: back off and retry
                failures += 1
                self.state = "failed"
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(Backoff(initial=0.2, maximum=5.0).delay(failures))
                with contextlib.suppress(Exception):
                    await self._load_position()
                continue
            if processed < self._last_limit:
                self.state = "running"
                # Returns at once if the log already grew past us (no empty read needed).
                await self.store.wait_for_append(self.position, timeout=self.checkpoint_wait())
                idle_check_due = time.monotonic() - self._lease_checked >= self.config.idle_wait
                if idle_check_due and not await self._lease_ok():
                    raise LeaseLostError
            else:
                self.state = "catching_up"

    async def _load_position(self) -> None:
        row = await self.db.fetchone(
            "SELECT active_version FROM read_model_versions WHERE projection = ?", (self.name,)
        )
        self.version = int(row["active_version"]) if row else 1
        cp = await self.db.fetchone(
            "SELECT position FROM projection_checkpoints WHERE name = ? AND version = ?",
            (self.name, self.version),
        )
        self.position = int(cp["position"]) if cp else 0
        self.persisted = self.position

    async def step(self) -> int:
        """Apply the next batch (at most ``batch_size`` events when live, ``catch_up_batch_size``
        after a full batch); return how many were read."""
        self._last_limit = self._limit
        events = await self.reader.read(self.position, self._limit)
        if len(events) >= self._limit:
            self._relief.hold()
            self._limit = max(self.config.batch_size, self.config.catch_up_batch_size)
        else:
            self._relief.release()
            self._limit = self.config.batch_size
        if not events:
            if self.position > self.persisted and self._checkpoint_due():
                await self._write_checkpoint_only()
            return 0
        if not any(self.model.accepts(e) for e in events) and not self._checkpoint_due():
            # Nothing to change: skipping the transaction is safe because after a crash the
            # runner re-reads these events from the stored checkpoint, and they change nothing.
            self.position = events[-1].position
            self.advanced()
            return len(events)
        if not await self._lease_ok():
            raise LeaseLostError
        try:
            changed = await self._apply_with_retries(events, self.version, live=True)
        except _Stale:
            await self._load_position()
            return 0
        self.position = self.persisted = events[-1].position
        self._persisted_at = time.monotonic()
        if self.cache is not None and changed:
            await self.cache.store(self.version, changed)
        self.advanced()
        return len(events)

    def _checkpoint_due(self) -> bool:
        return time.monotonic() - self._persisted_at >= self.config.checkpoint_interval

    def checkpoint_wait(self) -> float:
        """How long the live loop may sleep before a deferred checkpoint is due."""
        if self.position <= self.persisted:
            return self.config.idle_wait
        due = self.config.checkpoint_interval - (time.monotonic() - self._persisted_at)
        return max(0.0, min(self.config.idle_wait, due))

    async def _write_checkpoint_only(self) -> None:
        if not await self._lease_ok():
            raise LeaseLostError
        try:
            async with self.turn, self.db.transaction(durable=False) as tx:
                row = await tx.fetchone(
                    "SELECT v.active_version, c.position "
                    "FROM read_model_versions v LEFT JOIN projection_checkpoints c "
                    "ON c.name = v.projection AND c.version = ? "
                    "WHERE v.projection = ?" + self.db.for_update(of="v"),
                    (self.version, self.name),
                )
                if row is None or int(row["active_version"]) != self.version:
                    raise _Stale
                if int(row["position"] or 0) != self.persisted:
                    raise _Stale
                await self._save_checkpoint(tx, self.version, self.position, "running")
        except _Stale:
            await self._load_position()
            return
        self.persisted = self.position
        self._persisted_at = time.monotonic()

    async def _apply_with_retries(
        self, events: Sequence[RecordedEvent], version: int, *, live: bool
    ) -> list[dict[str, Any]]:
        """Retry a batch whose handler failed, with backoff; after ``handler_attempts`` park the
        failing event and apply the rest without it."""
        park: dict[str, str] = {}
        while True:
            try:
                changed = await self._apply_batch(events, version, park, live=live)
                if self._attempts:
                    for event in events:
                        self._attempts.pop(str(event.id), None)
                return changed
            except _HandlerFailed as failure:
                key = str(failure.event.id)
                attempts = self._attempts.get(key, 0) + 1
                self._attempts[key] = attempts
                self.errors += 1
                self.last_error = (
                    f"{failure.event.type} at {failure.event.position}: {failure.error!r}"
                )
                if attempts >= self.config.handler_attempts:
                    park[key] = self.last_error
                else:
                    await asyncio.sleep(Backoff(initial=self.config.retry_backoff).delay(attempts))

    async def _apply_batch(
        self,
        events: Sequence[RecordedEvent],
        version: int,
        park: dict[str, str],
        *,
        live: bool,
    ) -> list[dict[str, Any]]:
        # Live: the stored checkpoint may trail over ignored events (see ``step``).
        start = self.persisted if live else events[0].position - 1
        relevant = [e for e in events if self.model.accepts(e)]
        tables = {t.base: t for t in self.model.tables}
        # Take turns only for small (live) batches; full catch-up batches overlap, so that
        # one projection's Python work runs while another's statements execute.
        turn = self.turn if len(events) < self.config.batch_size else contextlib.nullcontext()
        async with turn, self.db.transaction(durable=False) as tx:
            # The version row lock serialises this batch with a rebuild's swap and with a
            # retry of parked events: without it a swap could land between our read of the
            # active version and our commit, and this batch would go to tables no query reads.
            # (One statement for both checks: a live batch is mostly round trips.)
            # Compare-and-set on the checkpoint: if another owner already applied this batch
            # (we lost the lease without noticing), applying it again would double-count.
            pointer = await tx.fetchone(
                "SELECT v.active_version, v.rebuilding_version, c.position "
                "FROM read_model_versions v LEFT JOIN projection_checkpoints c "
                "ON c.name = v.projection AND c.version = ? "
                "WHERE v.projection = ?" + self.db.for_update(of="v"),
                (version, self.name),
            )
            if pointer is None:
                raise _Stale
            expected_version = pointer["active_version"] if live else pointer["rebuilding_version"]
            if expected_version is None or int(expected_version) != version:
                raise _Stale
            if int(pointer["position"] or 0) != start:
                raise _Stale
            rows = Rows(tx, tables, version)
            await rows.prefetch(k for e in relevant for k in self.model.prefetch(e))
            await rows.prefetch(self.model.prefetch_more(relevant, rows.loaded))
            parked_now: list[RecordedEvent] = []
            for event in relevant:
                if park and str(event.id) in park:
                    parked_now.append(event)
                    continue
                mark = rows.mark()
                try:
                    await self.model.apply(rows, event)
                except Exception as exc:
                    rows.rollback_to(mark)
                    raise _HandlerFailed(event, exc) from exc
            async with tx.pipelined():
                await rows.save()
                await self.model.after_save(tx, rows, version, self.db.dialect)
                for event in parked_now:
                    await self._park(tx, event, version, park[str(event.id)])
                await self._save_checkpoint(
                    tx, version, events[-1].position, "running" if live else "rebuilding"
                )
        for event in parked_now:
            self._attempts.pop(str(event.id), None)
        if not live or self.cache is None:
            return []  # nothing to store: skip building the API shape of every changed order
        return [
            public_order(row)
            for (table, _), row in rows.dirty.items()
            if table == ORDERS.base and row is not None
        ]

    async def _save_checkpoint(self, tx: Tx, version: int, position: int, state: str) -> None:
        await tx.execute(
            "INSERT INTO projection_checkpoints "
            "(name, version, position, state, owner, errors, last_error, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, version) DO UPDATE SET "
            "position = excluded.position, state = excluded.state, owner = excluded.owner, "
            "errors = excluded.errors, last_error = excluded.last_error, "
            "updated_at = excluded.updated_at",
            (self.name, version, position, state, self.owner, self.errors, self.last_error, _now()),
        )

    async def _park(self, tx: Tx, event: RecordedEvent, version: int, error: str) -> None:
        await tx.execute(
            "INSERT INTO projection_parked (id, projection, version, position, event_id, "
            "event_type, stream_id, error, attempts, parked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "error = excluded.error, attempts = excluded.attempts, parked_at = excluded.parked_at",
            (
                f"{self.name}:{version}:{event.id}",
                self.name,
                version,
                event.position,
                str(event.id),
                event.type,
                event.stream_id,
                error,
                self._attempts.get(str(event.id), self.config.handler_attempts),
                _now(),
            ),
        )

    # -- waiting ------------------------------------------------------------------------------

    async def _lease_ok(self) -> bool:
        self._lease_checked = time.monotonic()
        return await self.lease.still_held()

    def advanced(self) -> None:
        """Wake every ``wait_for`` of this process."""
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def wait_local(self, timeout: float) -> None:
        await wait_set(self._advanced, timeout)


class ProjectionEngine:
    """Every projection of one process: run, status, rebuild, parked events, read-your-writes.

    Built by :func:`build_projections`; nothing connects until first use.
    """

    def __init__(
        self,
        store: EventStore,
        database_url: str,
        models: Sequence[ReadModel],
        *,
        config: RunnerConfig | None = None,
        redis_url: str | None = None,
        read_model_url: str | None = None,
        database: Database | None = None,
        leases: Leases | None = None,
    ) -> None:
        """``database`` and ``leases``: the process's own (the composition root closes them);
        without them the engine opens a Database for itself (closed by ``close()``) and a lease
        session per projection."""
        from cairn.orders.views import ReadModelQueries
        from cairn.sql.factory import open_database

        self.store = store
        self.database_url = database_url
        target = read_model_url or database_url
        self._owns_db = database is None
        self.db: Database = database if database is not None else open_database(target)
        self.config = config or RunnerConfig()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.cache = OrderCache(redis_url) if redis_url else None
        self.queries = ReadModelQueries(self.db, self.cache)
        self.reader = SharedReader(store)
        self._turn = asyncio.Lock()
        # A memory store (or a private in-memory read-model database) lives in this process
        # only: its leases must not collide with another engine's in the same process.
        private = backend_of(target) is Backend.MEMORY or target.rstrip("/") in (
            "sqlite:",
            "sqlite:///:memory:",
        )
        self._lease_scope = f"@{self.owner}" if private else ""
        self._lease_url = "memory://" if private else target
        self._lease: Callable[[str], Lease] = (
            leases.lease
            if leases is not None and not private
            else partial(lease_for, self._lease_url)
        )
        self.runners: dict[str, ProjectionRunner] = {
            m.name: ProjectionRunner(
                m,
                store,
                self.db,
                self._lease(f"projection:{m.name}{self._lease_scope}"),
                self.owner,
                self.config,
                self.cache if m.name == "orders" else None,
                self.reader,
                self._turn,
            )
            for m in models
        }
        self._migrated = False
        self._migrate_lock = asyncio.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.runners)

    def runner(self, name: str) -> ProjectionRunner:
        try:
            return self.runners[name]
        except KeyError:
            from cairn.errors import NotFoundError

            raise NotFoundError(
                "projection.not_found", f"no projection named {name!r}", name=name
            ) from None

    # -- schema ---------------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Create bookkeeping and read-model tables if missing (idempotent)."""
        if self._migrated:
            return
        async with self._migrate_lock:
            if self._migrated:
                return
            dialect = self.db.dialect
            async with self.db.schema_transaction() as tx:
                for sql in _DDL:
                    await tx.execute(_fix(sql, dialect))
                for runner in self.runners.values():
                    await tx.execute(
                        "INSERT INTO read_model_versions (projection, active_version, updated_at) "
                        "VALUES (?, 1, ?) ON CONFLICT (projection) DO NOTHING",
                        (runner.name, _now()),
                    )
                    pointer = await tx.fetchone(
                        "SELECT active_version, rebuilding_version FROM read_model_versions "
                        "WHERE projection = ?",
                        (runner.name,),
                    )
                    assert pointer is not None
                    versions = {int(pointer["active_version"])}
                    if pointer["rebuilding_version"] is not None:
                        versions.add(int(pointer["rebuilding_version"]))
                    for version in sorted(versions):
                        for sql in runner.model.ddl(version, dialect):
                            await tx.execute(sql)
                        await tx.execute(
                            "INSERT INTO projection_checkpoints "
                            "(name, version, position, state, errors, updated_at) "
                            "VALUES (?, ?, 0, 'stopped', 0, ?) ON CONFLICT (name, version) "
                            "DO NOTHING",
                            (runner.name, version, _now()),
                        )
            self._migrated = True

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every projection until cancelled."""
        await self.migrate()
        async with asyncio.TaskGroup() as group:
            for runner in self.runners.values():
                group.create_task(runner.run(), name=f"projection:{runner.name}")

    async def run_until_caught_up(self, name: str | None = None) -> None:
        """Apply everything currently in the log (tests and one-off jobs; takes the lease)."""
        await self.migrate()
        for runner in [self.runner(name)] if name else list(self.runners.values()):
            await runner.lease.acquire(retry_interval=self.config.lease_retry)
            try:
                await runner._load_position()
                while await runner.step():
                    pass
                if runner.position > runner.persisted:
                    await runner._write_checkpoint_only()
            finally:
                runner._relief.release()
                await runner.lease.release()

    async def close(self) -> None:
        self.reader.close()
        for runner in self.runners.values():
            with contextlib.suppress(Exception):
                await runner.lease.release()
        if self.cache is not None:
            await self.cache.close()
        if self._owns_db:
            await self.db.close()

    # -- status ---------------------------------------------------------------------------------

    async def status(self) -> list[ProjectionStatus]:
        await self.migrate()
        head = await self.store.head_position()
        return [await self._status(runner, head) for runner in self.runners.values()]

    async def _status(self, runner: ProjectionRunner, head: int) -> ProjectionStatus:
        pointer = await self.db.fetchone(
            "SELECT active_version, rebuilding_version FROM read_model_versions "
            "WHERE projection = ?",
            (runner.name,),
        )
        version = int(pointer["active_version"]) if pointer else 1
        cp = await self.db.fetchone(
            "SELECT * FROM projection_checkpoints WHERE name = ? AND version = ?",
            (runner.name, version),
        )
        parked = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM projection_parked WHERE projection = ? AND version = ?",
            (runner.name, version),
        )
        position = int(cp["position"]) if cp else 0
        lag_events = max(head - position, 0)
        lag_seconds = 0.0
        if lag_events:
            nxt = await self.store.read_all(after=position, limit=1)
            if nxt:
                lag_seconds = max((datetime.now(UTC) - nxt[0].recorded_at).total_seconds(), 0.0)
        owner = cp["owner"] if cp else None
        if runner.lease.held:
            state = runner.state
        elif await self._nobody_owns(runner.name):
            state, owner = "stopped", None
        else:
            state = str(cp["state"]) if cp else "running"
        if runner.rebuild is not None or (
            pointer is not None
            and pointer["rebuilding_version"] is not None
            and not await self._nobody_owns(f"{runner.name}:rebuild")
        ):
            # A rebuild whose process died leaves its version behind; the next rebuild drops
            # it. Only a rebuild somebody still runs (holds its lease) counts.
            state = "rebuilding"
        elif state == "running" and lag_events > self.config.batch_size:
            state = "catching_up"
        errors = max(runner.errors, int(cp["errors"]) if cp else 0)
        last_error = runner.last_error or (cp["last_error"] if cp else None)
        rebuild = runner.rebuild
        return ProjectionStatus(
            name=runner.name,
            position=position,
            lag_events=lag_events,
            lag_seconds=round(lag_seconds, 3),
            state=state,
            errors=errors,
            last_error=last_error,
            parked=int(parked["n"]) if parked else 0,
            owner=owner,
            version=version,
            rebuild_done=rebuild.done if rebuild else None,
            rebuild_total=rebuild.total if rebuild else None,
            rebuild_rate=round(rebuild.rate, 1) if rebuild else None,
            rebuild_eta_seconds=(
                round(rebuild.eta_seconds, 1)
                if rebuild and rebuild.eta_seconds is not None
                else None
            ),
        )

    async def _nobody_owns(self, name: str) -> bool:
        """Probe the projection's lease: if we can take it, no live worker owns it."""
        probe = self._lease(f"projection:{name}{self._lease_scope}")
        try:
            return bool(await probe.try_acquire())
        finally:
            await probe.release()

    # -- read-your-writes -------------------------------------------------------------------------

    async def position_of(self, name: str) -> int:
        row = await self.db.fetchone(
            "SELECT c.position FROM projection_checkpoints c JOIN read_model_versions v "
            "ON v.projection = c.name AND v.active_version = c.version WHERE c.name = ?",
            (name,),
        )
        return int(row["position"]) if row else 0

    async def _reached(self, runner: ProjectionRunner) -> int:
        # The owner's in-memory position moves right after its commit: no query needed (and
        # none of the pool's connections, which the runners need). A rebuild's swap makes the
        # in-memory figure stale, so fall back to the database whenever a swap may be pending.
        if runner.lease.held and runner.rebuild is None and runner.state != "failed":
            return runner.position
        return await self.position_of(runner.name)

    async def wait_for(
        self, name: str | int, position: int | None = None, timeout: float = 5.0
    ) -> bool:
        """True once projection ``name`` has applied the log up to ``position`` (its live
        tables), False if ``timeout`` seconds pass first. ``wait_for(position, timeout=…)``
        waits for every projection."""
        if isinstance(name, int):
            names, target = self.names, name
        else:
            self.runner(name)
            names, target = [name], int(position or 0)
        await self.migrate()
        deadline = time.monotonic() + timeout
        for one in names:
            runner = self.runner(one)
            while await self._reached(runner) < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if runner.lease.held:
                    await runner.wait_local(min(remaining, 0.05))
                else:  # another process runs it: poll its checkpoint briefly
                    await asyncio.sleep(min(remaining, 0.01))
        return True

    # -- parked events --------------------------------------------------------------------------

    async def parked(self, name: str) -> list[ParkedEvent]:
        """Events projection ``name`` parked (its live tables), oldest first."""
        self.runner(name)
        await self.migrate()
        rows = await self.db.fetchall(
            "SELECT p.* FROM projection_parked p JOIN read_model_versions v "
            "ON v.projection = p.projection AND v.active_version = p.version "
            "WHERE p.projection = ? ORDER BY p.position",
            (name,),
        )
        return [
            ParkedEvent(
                **{
                    **r,
                    "version": int(r["version"]),
                    "position": int(r["position"]),
                    "attempts": int(r["attempts"]),
                }
            )
            for r in rows
        ]

    async def retry_parked(
        self, name: str, position: int | None = None, *, ids: Sequence[str] | None = None
    ) -> dict[str, int]:
        """Re-apply parked events (all; the one at ``position``; or those ``ids``) to the live
        tables. An event that succeeds leaves the parking lot; one that fails again stays, with
        its new error. Returns ``{"retried": n, "failed": m}``."""
        runner = self.runner(name)
        fixed = failed = 0
        for parked in await self.parked(name):
            if ids is not None and parked.id not in ids:
                continue
            if position is not None and parked.position != position:
                continue
            event = await self.store.read_event(parked.event_id)
            if event is None:
                continue
            try:
                await self._reapply(runner, parked, event)
                fixed += 1
            except _HandlerFailed as failure:
                failed += 1
                async with self.db.transaction(durable=False) as tx:
                    await tx.execute(
                        "UPDATE projection_parked SET error = ?, attempts = attempts + 1, "
                        "parked_at = ? WHERE id = ?",
                        (f"{event.type} at {event.position}: {failure.error!r}", _now(), parked.id),
                    )
        return {"retried": fixed, "failed": failed}

    async def _reapply(
        self, runner: ProjectionRunner, parked: ParkedEvent, event: RecordedEvent
    ) -> None:
        tables = {t.base: t for t in runner.model.tables}
        async with self.db.transaction(durable=False) as tx:
            pointer = await tx.fetchone(
                "SELECT active_version FROM read_model_versions WHERE projection = ?"
                + self.db.for_update(),
                (runner.name,),
            )
            assert pointer is not None
            version = int(pointer["active_version"])
            rows = Rows(tx, tables, version)
            try:
                await runner.model.apply(rows, event)
            except Exception as exc:
                raise _HandlerFailed(event, exc) from exc
            await rows.save()
            await runner.model.after_save(tx, rows, version, self.db.dialect)
            await tx.execute("DELETE FROM projection_parked WHERE id = ?", (parked.id,))

    # -- rebuild ----------------------------------------------------------------------------------

    async def rebuild(self, name: str, progress: ProgressCallback | None = None) -> int:
        """Replay the whole log into fresh tables (version n+1) while queries keep reading
        version n, then swap the pointer; returns the new version. ``progress(done, total)``
        is called after each batch (positions). No side effects (no cache writes) meanwhile."""
        runner = self.runner(name)
        await self.migrate()
        lease = self._lease(f"projection:{name}:rebuild{self._lease_scope}")
        if not await lease.try_acquire():
            from cairn.errors import ConflictError

            raise ConflictError(
                "projection.rebuild_running",
                f"projection {name!r} is already being rebuilt",
                name=name,
            )
        try:
            version = await self._start_rebuild(runner)
            builder = ProjectionRunner(
                runner.model, self.store, self.db, lease, self.owner, self.config, cache=None
            )
            builder.version = version
            head = await self.store.head_position()
            track = RebuildProgress(head)
            runner.rebuild = track
            size = self.config.rebuild_batch_size
            builder._relief.hold()
            try:
                while True:
                    events = await self.store.read_all(after=builder.position, limit=size)
                    if events:
                        await builder._apply_with_retries(events, version, live=False)
                        builder.position = events[-1].position
                    track.done = builder.position
                    track.total = max(track.total, builder.position)
                    if progress is not None:
                        progress(track.done, track.total)
                    if len(events) < size and await self._try_swap(
                        runner, version, builder.position
                    ):
                        break
                    if len(events) < size:
                        track.total = await self.store.head_position()
            finally:
                builder._relief.release()
                runner.rebuild = None
            runner.advanced()
            return version
        finally:
            await lease.release()

    async def _start_rebuild(self, runner: ProjectionRunner) -> int:
        dialect = self.db.dialect
        async with self.db.transaction(durable=False) as tx:
            pointer = await tx.fetchone(
                "SELECT active_version, rebuilding_version FROM read_model_versions "
                "WHERE projection = ?" + self.db.for_update(),
                (runner.name,),
            )
            assert pointer is not None
            active = int(pointer["active_version"])
            version = active + 1
            # Keep the live tables and nothing older: a query that read the pointer just before
            # the last swap may still be reading version active-1, but never anything older.
            stale = await tx.fetchall(
                "SELECT version FROM projection_checkpoints WHERE name = ? AND version <> ?",
                (runner.name, active),
            )
            for row in stale:
                old = int(row["version"])
                for sql in runner.model.drop_ddl(old, dialect):
                    await tx.execute(sql)
                await tx.execute(
                    "DELETE FROM projection_checkpoints WHERE name = ? AND version = ?",
                    (runner.name, old),
                )
                await tx.execute(
                    "DELETE FROM projection_parked WHERE projection = ? AND version = ?",
                    (runner.name, old),
                )
            for sql in runner.model.ddl(version, dialect):
                await tx.execute(sql)
            await tx.execute(
                "INSERT INTO projection_checkpoints "
                "(name, version, position, state, owner, errors, updated_at) "
                "VALUES (?, ?, 0, 'rebuilding', ?, 0, ?)",
                (runner.name, version, self.owner, _now()),
            )
            await tx.execute(
                "UPDATE read_model_versions SET rebuilding_version = ?, updated_at = ? "
                "WHERE projection = ?",
                (version, _now(), runner.name),
            )
        return version

    async def _try_swap(self, runner: ProjectionRunner, version: int, position: int) -> bool:
        async with self.db.transaction(durable=False) as tx:
            # Same row lock as every live batch: the live runner cannot commit between our
            # comparison and the pointer move, so the new tables are never behind the old.
            pointer = await tx.fetchone(
                "SELECT active_version FROM read_model_versions WHERE projection = ?"
                + self.db.for_update(),
                (runner.name,),
            )
            assert pointer is not None
            live = await tx.fetchone(
                "SELECT position FROM projection_checkpoints WHERE name = ? AND version = ?",
                (runner.name, int(pointer["active_version"])),
            )
            if live is not None and int(live["position"]) > position:
                return False
            await tx.execute(
                "UPDATE read_model_versions SET active_version = ?, rebuilding_version = NULL, "
                "updated_at = ? WHERE projection = ?",
                (version, _now(), runner.name),
            )
            await tx.execute(
                "UPDATE projection_checkpoints SET state = 'running' "
                "WHERE name = ? AND version = ?",
                (runner.name, version),
            )
        return True
