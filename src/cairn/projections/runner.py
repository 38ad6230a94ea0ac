"""One projection: ``$all`` in batches → read model rows + checkpoint, in one transaction.

Effectively-once: a batch's row changes and its checkpoint (``checkpoints``, named
``projection:<name>:v<version>``) commit together, and the transaction first re-reads the
checkpoint it is about to advance (compare-and-set). Two runners that both believed they owned a
projection could therefore never apply the same batch twice; the lease (advisory lock / flock)
is what keeps that from even being attempted.

A handler error rolls the batch back and retries it with backoff; after
``RunnerConfig.handler_attempts`` the failing event is parked (:mod:`cairn.projections.parking`)
and the batch is applied without it. A batch whose *write* fails with a data error (one that
will not go away: a character PostgreSQL cannot store, a number out of range, see
:func:`~cairn.projections.parking.is_data_error`) is applied again event by event, only then, so
that the one event whose rows cannot be written is found, retried and parked like a handler
error; the projection goes on (SPEC §12, "Control characters").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cairn.backoff import Backoff
from cairn.errors import LeaseLostError
from cairn.gc_tuning import CatchUpRelief
from cairn.leases import Lease
from cairn.observability.logging import get_logger
from cairn.observability.tracing import batch_span
from cairn.projections.hooks import AfterCommit, ChangedRows
from cairn.projections.parking import HandlerFailed, is_data_error, park
from cairn.projections.read_model import ReadModel, Rows
from cairn.projections.reader import SharedReader
from cairn.projections.save_points import SavePointMaker
from cairn.projections.schema import ACTIVE_VERSION, checkpoint_name, save_status
from cairn.projections.status import RebuildProgress
from cairn.sql.checkpoints import load_checkpoint, save_checkpoint
from cairn.sql.database import Database, Tx
from cairn.store.base import EventStore, RecordedEvent
from cairn.waiting import wait_set

_log = get_logger("cairn.projections")

#: What :meth:`ProjectionRunner.apply` returns when there is no hook to hand changed rows to.
_UNCHANGED: ChangedRows = {}


#: A ``projection_status`` row: version, state, owner, errors, last_error.
_StatusRow = tuple[int, str, str, int, str | None]


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
    #: A live runner reads at most one batch per this many seconds: while events keep coming,
    #: the ones that arrive during the pause join the next batch (one read, lock, checkpoint
    #: and commit for all of them) instead of a transaction each. The first event after a quiet
    #: spell is applied at once; a steady stream sees at most this much more read-model lag.
    live_interval: float = 0.05
    #: A batch with none of the projection's event types moves the checkpoint in memory only;
    #: it is written with the next batch that changes rows, or after this many seconds.
    checkpoint_interval: float = 0.1
    #: A save point (a copy of the read model's rows, for time travel) every this many events
    #: of the log; 0 turns them off. The newest ``save_point_retention`` are kept: time travel
    #: over the last interval x retention events replays at most one interval (bench/as_of.py).
    save_point_interval: int = 10_000
    save_point_retention: int = 10


class ProjectionRunner:
    """Keeps one read model up to date; one owner at a time (its lease).

    What an engine uses: :meth:`run` (forever), :meth:`catch_up` (what the log holds now),
    :meth:`apply` (a rebuild's batches), :meth:`load_position`, :meth:`advanced` and
    :meth:`wait_local`, and the attributes ``name``, ``lease``, ``state``, ``position``,
    ``errors``, ``last_error`` and ``rebuild``.
    """

    def __init__(
        self,
        model: ReadModel,
        store: EventStore,
        db: Database,
        lease: Lease,
        owner: str,
        config: RunnerConfig,
        after_commit: AfterCommit | None = None,
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
        self.after_commit = after_commit
        self.version = 1
        self.position = 0
        self.state = "stopped"
        self.errors = 0
        self.last_error: str | None = None
        self.rebuild: RebuildProgress | None = None
        self.save_points = SavePointMaker(
            model, config.save_point_interval, config.save_point_retention
        )
        # Swapped for a fresh Event on every advance: waiters never queue on a lock the runner
        # needs (a Condition would make the runner wait behind every reader it wakes).
        self._advanced = asyncio.Event()
        self._attempts: dict[str, int] = {}
        #: When the last live batch was read (``RunnerConfig.live_interval``).
        self._batch_at = -float("inf")
        #: The checkpoint as stored (``position`` may be ahead of it over ignored events only).
        self.persisted = 0
        self._persisted_at = 0.0
        #: The status row as this runner last committed it (written again only when it
        #: changes), and the one the open transaction writes.
        self._status: _StatusRow | None = None
        self._pending_status: _StatusRow | None = None
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

    async def catch_up(self) -> None:
        """Take the lease, apply everything the log holds now, store the checkpoint, and let the
        lease go (tests and one-off jobs)."""
        await self.lease.acquire(retry_interval=self.config.lease_retry)
        try:
            await self.load_position()
            while await self.step():
                pass
            if self.position > self.persisted:
                await self._write_checkpoint_only()
        finally:
            self._relief.release()
            await self.lease.release()

    async def _follow(self) -> None:
        await self.load_position()
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
                self.lease.doubt()  # an outage ends the lease's session too: ask at once
                self.state = "failed"
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                # At most 2 s: after a long database outage the projection is live again
                # within seconds of the database's return (SPEC §12), not a long backoff later.
                await asyncio.sleep(Backoff(initial=0.2, maximum=2.0).delay(failures))
                with contextlib.suppress(Exception):
                    await self.load_position()
                continue
            if processed < self._last_limit:
                self.state = "running"
                # After events, read again once paced: under load the log has grown meanwhile
                # (and this process's appends come from memory), so asking the store for its
                # head first would be a query per batch that only says "read". Only an empty
                # read waits for the next append.
                if not processed:
                    await self.store.wait_for_append(self.position, self.checkpoint_wait())
                await self._pace()
                if not await self._lease_ok():
                    raise LeaseLostError
            else:
                self.state = "catching_up"

    async def load_position(self) -> None:
        """Re-read the live version and its stored checkpoint."""
        row = await self.db.fetchone(ACTIVE_VERSION, (self.name,))
        self.version = int(row["active_version"]) if row else 1
        self.position = await load_checkpoint(self.db, checkpoint_name(self.name, self.version))
        self.persisted = self.position
        # Another owner may have written the status row meanwhile: write ours with the next batch.
        self._status = None

    async def step(self) -> int:
        """Apply the next batch (at most ``batch_size`` events when live, ``catch_up_batch_size``
        after a full batch); return how many were read."""
        self._last_limit = self._limit
        events = await self.reader.read(self.position, self._limit)
        if events:
            self._batch_at = time.monotonic()
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
            changed = await self.apply(events, self.version, live=True)
        except _Stale:
            await self.load_position()
            return 0
        self.position = self.persisted = events[-1].position
        self._persisted_at = time.monotonic()
        if self.after_commit is not None and changed:
            # Before waking wait_for: a reader that waited for this position must not then find
            # the value the hook is about to replace (a cache filled from the older row).
            await self.after_commit.after_commit(self.version, changed)
        self.advanced()
        return len(events)

    async def _pace(self) -> None:
        """Wait out the rest of ``live_interval`` since the last batch was read (applied, or
        skipped for holding none of the model's events)."""
        rest = self._batch_at + self.config.live_interval - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)

    def _checkpoint_due(self) -> bool:
        return time.monotonic() - self._persisted_at >= self.config.checkpoint_interval

    def checkpoint_wait(self) -> float:
        """How long the live loop may sleep before a deferred checkpoint is due."""
        if self.position <= self.persisted:
            return self.config.idle_wait
        due = self.config.checkpoint_interval - (time.monotonic() - self._persisted_at)
        return max(0.0, min(self.config.idle_wait, due))

    async def _lock_and_check(self, tx: Tx, version: int, start: int, *, live: bool) -> None:
        """Lock the version row, then check that ``version`` is still the one to write and that
        its stored checkpoint is still ``start``; raise :class:`_Stale` if not.

        The version row lock serialises this batch with a rebuild's swap and with a retry of
        parked events: without it a swap could land between our read of the active version and
        our commit, and this batch would go to tables no query reads. Compare-and-set on the
        checkpoint: if another owner already applied this batch (we lost the lease without
        noticing), applying it again would double-count. One statement for both checks: a live
        batch is mostly round trips.
        """
        pointer = await tx.fetchone(
            "SELECT v.active_version, v.rebuilding_version, c.position "
            "FROM read_model_versions v LEFT JOIN checkpoints c ON c.name = ? "
            "WHERE v.projection = ?" + tx.for_update(of="v"),
            (checkpoint_name(self.name, version), self.name),
        )
        if pointer is None:
            raise _Stale
        expected_version = pointer["active_version"] if live else pointer["rebuilding_version"]
        if expected_version is None or int(expected_version) != version:
            raise _Stale
        if int(pointer["position"] or 0) != start:
            raise _Stale

    async def _write_checkpoint_only(self) -> None:
        if not await self._lease_ok():
            raise LeaseLostError
        try:
            async with self.turn, self.db.transaction(durable=False) as tx:
                await self._lock_and_check(tx, self.version, self.persisted, live=True)
                async with tx.pipelined():
                    await self._save_progress(tx, self.version, self.position, "running")
        except _Stale:
            await self.load_position()
            return
        self._committed()
        self.persisted = self.position
        self._persisted_at = time.monotonic()

    async def apply(
        self, events: Sequence[RecordedEvent], version: int, *, live: bool
    ) -> ChangedRows:
        """Apply ``events`` to the tables of ``version`` with their checkpoint, in one
        transaction; retry a batch whose handler failed, with backoff, and after
        ``handler_attempts`` park the failing event and apply the rest without it. ``live``:
        the tables queries read (otherwise the ones a rebuild fills). Returns the rows changed
        when live and the runner has an ``after_commit`` hook (else nothing). Raises
        :class:`_Stale` when the version or the stored checkpoint moved."""
        parked: dict[str, str] = {}
        # One span per batch, in the trace of its events (with links when they span several).
        with batch_span(
            f"projection {self.name}",
            (e.metadata for e in events if self.model.accepts(e)),
            attributes={"cairn.projection": self.name, "cairn.events": len(events)},
        ):
            return await self._apply_retrying(events, version, parked, live=live)

    async def _apply_retrying(
        self,
        events: Sequence[RecordedEvent],
        version: int,
        parked: dict[str, str],
        *,
        live: bool,
        after: int | None = None,
    ) -> ChangedRows:
        while True:
            try:
                changed = await self._apply_once(events, version, parked, live=live, after=after)
                if self._attempts:
                    for event in events:
                        self._attempts.pop(str(event.id), None)
                return changed
            except HandlerFailed as failure:
                await self._failed(failure, parked)
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                pending = [e for e in events if self.model.accepts(e) and str(e.id) not in parked]
                if len(pending) > 1:
                    return await self._apply_singly(events, version, parked, live=live, after=after)
                if not pending:
                    raise
                await self._failed(HandlerFailed(pending[0], exc), parked)

    async def _failed(self, failure: HandlerFailed, parked: dict[str, str]) -> None:
        """Count a failure of ``failure.event``; park it after its last attempt, else back off."""
        key = str(failure.event.id)
        attempts = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempts
        self.errors += 1
        self.last_error = f"{failure.event.type} at {failure.event.position}: {failure.error!r}"
        if attempts >= self.config.handler_attempts:
            parked[key] = self.last_error
            _log.warning(
                "projection_event_parked",
                projection=self.name,
                event_id=key,
                event_type=failure.event.type,
                position=failure.event.position,
                attempts=attempts,
                error=self.last_error,
            )
        else:
            await asyncio.sleep(Backoff(initial=self.config.retry_backoff).delay(attempts))

    async def _apply_singly(
        self,
        events: Sequence[RecordedEvent],
        version: int,
        parked: dict[str, str],
        *,
        live: bool,
        after: int | None,
    ) -> ChangedRows:
        """The batch's write failed with a data error: apply it one event per transaction (each
        retried and parked on its own), so that only the event at fault is parked."""
        _log.warning(
            "projection_batch_write_failed",
            projection=self.name,
            first=events[0].position,
            last=events[-1].position,
        )
        changed: dict[Any, Any] = {}
        start = self._start(events, live, after)
        for event in events:
            changed.update(
                await self._apply_retrying([event], version, parked, live=live, after=start)
            )
            start = event.position
            if live:
                self.persisted = start
        return changed

    async def _apply_once(
        self,
        events: Sequence[RecordedEvent],
        version: int,
        parked: dict[str, str],
        *,
        live: bool,
        after: int | None = None,
    ) -> ChangedRows:
        # Live: the stored checkpoint may trail over ignored events (see ``step``). ``after``:
        # the checkpoint an event-by-event retry (``_apply_singly``) left.
        start = self._start(events, live, after)
        relevant = [e for e in events if self.model.accepts(e)]
        tables = {t.base: t for t in self.model.tables}
        # Take turns only for small (live) batches; full catch-up batches overlap, so that
        # one projection's Python work runs while another's statements execute.
        turn = self.turn if len(events) < self.config.batch_size else contextlib.nullcontext()
        async with turn, self.db.transaction(durable=False) as tx:
            await self._lock_and_check(tx, version, start, live=live)
            rows = Rows(tx, tables, version)
            await rows.prefetch(k for e in relevant for k in self.model.prefetch(e))
            await rows.prefetch(self.model.prefetch_more(relevant, rows.loaded))
            parked_now: list[RecordedEvent] = []
            for event in relevant:
                if parked and str(event.id) in parked:
                    parked_now.append(event)
                    continue
                mark = rows.mark()
                try:
                    await self.model.apply(rows, event)
                except Exception as exc:
                    rows.rollback_to(mark)
                    raise HandlerFailed(event, exc) from exc
            # Sent without waiting for each result (PostgreSQL pipeline): the writes, the
            # checkpoint and the COMMIT cost one round trip together.
            async with tx.pipelined():
                await rows.save()
                await self.model.after_save(tx, rows, version, self.db.dialect)
                for event in parked_now:
                    key = str(event.id)
                    attempts = self._attempts.get(key, self.config.handler_attempts)
                    await park(tx, self.name, version, event, parked[key], attempts)
                state = "running" if live else "rebuilding"
                await self._save_progress(tx, version, events[-1].position, state)
            await self.save_points.after_batch(tx, version, events[-1].position)
        self._committed()
        for event in parked_now:
            self._attempts.pop(str(event.id), None)
        if not live or self.after_commit is None:
            return _UNCHANGED
        return rows.dirty

    def _start(self, events: Sequence[RecordedEvent], live: bool, after: int | None) -> int:
        """The stored checkpoint a batch of ``events`` expects to find."""
        if after is not None:
            return after
        return self.persisted if live else events[0].position - 1

    async def _save_progress(self, tx: Tx, version: int, position: int, state: str) -> None:
        """The checkpoint, and the status row when it changed (one statement fewer per batch
        otherwise). Only inside ``tx.pipelined()``: neither waits for a round trip."""
        await save_checkpoint(tx, checkpoint_name(self.name, version), position)
        status = (version, state, self.owner, self.errors, self.last_error)
        self._pending_status = None
        if status != self._status:
            await save_status(tx, self.name, *status)
            self._pending_status = status

    def _committed(self) -> None:
        """The transaction of the last :meth:`_save_progress` committed."""
        if self._pending_status is not None:
            self._status, self._pending_status = self._pending_status, None

    # -- waiting ------------------------------------------------------------------------------

    async def _lease_ok(self) -> bool:
        """Whether the lease is still ours, asked of the database at most every
        :data:`cairn.leases.CHECK_INTERVAL` (the checkpoint compare-and-set is the fence)."""
        return await self.lease.still_held_within()

    def advanced(self) -> None:
        """Wake every ``wait_for`` of this process."""
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def wait_local(self, timeout: float) -> None:
        await wait_set(self._advanced, timeout)
