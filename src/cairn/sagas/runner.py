"""The saga runner: feeds ``$all`` and the engine's timers to saga definitions, persists every
transition atomically, and runs the commands the sagas send.

Invariants (each guards against a crash at any instant):

* A transition (new state, step-log lines, the commands to send, a new deadline) commits in the
  same transaction as the record that its input was handled: the partition's checkpoint for an
  event, the deleted timer row for a deadline, the failed step row for a ``StepFailed``. So an
  input is never applied twice nor skipped.
* Commands are rows (``saga_actions``) written in that transaction and executed after it
  commits; a step is marked done only after its effect returned. A crash in between re-runs the
  effect with the same command id (``uuid5(saga_id, step)``), which the command side and the
  adapters recognise — a re-send is harmless.
* One worker at a time per partition (a :mod:`cairn.leases` lease). Steps and timers are further
  claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and a step is claimed (``claimed_by``)
  before it runs, so no step ever runs twice concurrently.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from cairn.backoff import Backoff
from cairn.errors import (
    ApplicationError,
    CairnError,
    ConcurrencyError,
    ConflictError,
    NotFoundError,
    StoreUnavailableError,
    TransientAdapterError,
)
from cairn.leases import Lease, Leases, lease_for
from cairn.observability.logging import get_logger
from cairn.sagas import deadlines
from cairn.sagas.engine import (
    DEADLINE_EXPIRED,
    RETRY_REQUESTED,
    STEP_FAILED,
    STEP_SUCCEEDED,
    Effect,
    Message,
    SagaDefinition,
    SagaRecord,
    SagaStatus,
    StepContext,
    StepLogEntry,
    command_id_for,
    from_epoch,
    saga_id_for,
)
from cairn.settings import Settings
from cairn.sql.database import Database, Row, Tx
from cairn.store.base import EventStore
from cairn.store.urls import Backend, backend_of
from cairn.waiting import wait_set

log = get_logger("cairn.sagas")

S = TypeVar("S")

MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """Timeout and retries of every step, and the saga's overall deadline (seconds)."""

    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.2
    max_backoff: float = 5.0
    #: Compensations are retried longer than forward steps before the saga shows ``failed``.
    compensation_attempts: int = 8
    deadline: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> StepPolicy:
        return cls(
            timeout=settings.saga_step_timeout,
            attempts=settings.saga_step_attempts,
            backoff=settings.saga_retry_backoff,
            compensation_attempts=max(8, settings.saga_step_attempts),
            deadline=settings.saga_deadline,
        )

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter before attempt ``attempt + 1``."""
        return Backoff(initial=self.backoff, maximum=self.max_backoff, jitter=0.25).delay(attempt)


class _LocalLease(Lease):
    """A private database (memory://) has one runner by construction."""

    async def try_acquire(self) -> bool:
        self.held = True
        return True

    async def still_held(self) -> bool:
        return self.held

    async def release(self) -> None:
        self.held = False


@dataclass(frozen=True, slots=True)
class _Action:
    action_id: str
    saga_id: str
    key: str
    correlation_id: str | None
    step: str
    kind: str
    payload: dict[str, Any]
    compensation: bool
    attempts: int
    max_attempts: int
    causation_id: str | None


_ACTION_COLUMNS = (
    "action_id, saga_id, saga_key, correlation_id, step, kind, payload, compensation,"
    " attempts, max_attempts, causation_id"
)


def _action(row: Row) -> _Action:
    return _Action(
        action_id=str(row["action_id"]),
        saga_id=str(row["saga_id"]),
        key=str(row["saga_key"]),
        correlation_id=row["correlation_id"],
        step=str(row["step"]),
        kind=str(row["kind"]),
        payload=json.loads(row["payload"]),
        compensation=bool(row["compensation"]),
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        causation_id=row["causation_id"],
    )


class SagaRunner(Generic[S]):
    """Runs one saga definition. ``run()`` forever (cancel to stop); the rest is the operators'
    API (``list``, ``get``, ``history``, ``retry``), usable without ``run()``."""

    def __init__(
        self,
        *,
        db: Database,
        store: EventStore,
        definition: SagaDefinition[S],
        effects: Mapping[str, Effect],
        policy: StepPolicy,
        database_url: str,
        leases: Leases | None = None,
        owns_db: bool = False,
        partitions: int = 1,
        poll_interval: float = 0.05,
        batch_size: int = 200,
        max_in_flight: int = 64,
        on_transition: Callable[[str, SagaStatus], None] | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.db = db
        # close() closes a Database the runner's builder opened for it alone; one given by the
        # composition root is the root's to close.
        self._owns_db = owns_db
        self.store = store
        self.definition = definition
        self.effects = dict(effects)
        self.policy = policy
        self.partitions = partitions
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._on_transition = on_transition
        private = backend_of(database_url) is Backend.MEMORY
        self._leases: dict[int, Lease] = {
            p: (
                _LocalLease(f"saga:{definition.type}:{p}")
                if private
                else (leases.lease if leases else partial(lease_for, database_url))(
                    f"saga:{definition.type}:{p}of{partitions}"
                )
            )
            for p in range(partitions)
        }
        self._held: set[int] = set()
        self._in_flight: set[str] = set()
        self._wake = asyncio.Event()
        self._closed = False

    # -- operators ----------------------------------------------------------------------------

    async def list(
        self, status: str | None = None, limit: int = DEFAULT_LIST_LIMIT
    ) -> builtins.list[SagaRecord]:
        """Sagas (newest activity first), optionally of one status; at most ``limit``."""
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_LIST_LIMIT
        ):
            raise ApplicationError(
                "saga.invalid_limit", f"limit must be between 1 and {MAX_LIST_LIMIT}"
            )
        columns = "saga_id, saga_type, saga_key, status, step, state, created_at, updated_at"
        if status is None:
            rows = await self.db.fetchall(
                f"SELECT {columns} FROM saga_instances ORDER BY updated_at DESC LIMIT ?", (limit,)
            )
        else:
            try:
                wanted = SagaStatus(status)
            except ValueError:
                allowed = ", ".join(s.value for s in SagaStatus)
                raise ApplicationError(
                    "saga.invalid_status", f"unknown saga status {status!r} (one of {allowed})"
                ) from None
            rows = await self.db.fetchall(
                f"SELECT {columns} FROM saga_instances WHERE status = ?"
                " ORDER BY updated_at DESC LIMIT ?",
                (wanted.value, limit),
            )
        return [self._record(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """How many sagas are in each status (for metrics and health)."""
        rows = await self.db.fetchall(
            "SELECT status, count(*) AS n FROM saga_instances GROUP BY status"
        )
        return {str(r["status"]): int(r["n"]) for r in rows}

    async def get(self, saga_id: str) -> SagaRecord | None:
        rows = await self.db.fetchall(
            "SELECT saga_id, saga_type, saga_key, status, step, state, created_at, updated_at"
            " FROM saga_instances WHERE saga_id = ?",
            (saga_id,),
        )
        return self._record(rows[0]) if rows else None

    async def get_by_key(self, key: str) -> SagaRecord | None:
        """The saga of a key (for the fulfilment saga: an order id)."""
        return await self.get(saga_id_for(self.definition.type, key))

    async def history(self, saga_id: str) -> builtins.list[StepLogEntry]:
        """Everything the saga received, sent, and was answered, oldest first."""
        rows = await self.db.fetchall(
            "SELECT at, kind, step, message_type, message_id, detail FROM saga_log"
            " WHERE saga_id = ? ORDER BY id",
            (saga_id,),
        )
        return [
            StepLogEntry(
                at=from_epoch(float(r["at"])),
                kind=str(r["kind"]),
                step=r["step"],
                message_type=r["message_type"],
                message_id=r["message_id"],
                detail=json.loads(r["detail"]),
            )
            for r in rows
        ]

    async def retry(self, saga_id: str) -> SagaRecord:
        """Re-run the failed steps of a ``failed`` saga from scratch (fresh attempts)."""
        now = time.time()
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT saga_key, status FROM saga_instances WHERE saga_id = ?" + tx.for_update(),
                (saga_id,),
            )
            if row is None:
                raise NotFoundError("saga.not_found", f"no saga {saga_id!r}", saga_id=saga_id)
            if row["status"] != SagaStatus.FAILED.value:
                raise ConflictError(
                    "saga.not_failed",
                    f"saga {saga_id} is {row['status']}; only a failed saga can be retried",
                )
            await tx.execute(
                "UPDATE saga_actions SET status = 'pending', attempts = 0, due_at = ?,"
                " claimed_by = NULL, error = NULL, updated_at = ?"
                " WHERE saga_id = ? AND status = 'failed' AND compensation = 1",
                (now, now, saga_id),
            )
            await self._log(tx, saga_id, "retry", None, None, None, {"by": "operator"})
            await self._apply_in(
                tx,
                saga_id,
                str(row["saga_key"]),
                Message(id=str(uuid.uuid4()), type=RETRY_REQUESTED, data={}),
            )
        self._wake.set()
        record = await self.get(saga_id)
        assert record is not None
        return record

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Own partitions (leases), follow ``$all`` from each one's checkpoint, fire due timers
        and run due steps. Forever; cancel to stop."""
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._lease_loop(tasks))
                tasks.create_task(self._pump_loop(tasks))
        finally:
            await self._release_all()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._release_all()
        if self._owns_db:
            await self.db.close()

    async def _release_all(self) -> None:
        self._held.clear()
        for lease in self._leases.values():
            with contextlib.suppress(Exception):
                await lease.release()

    def partition_of(self, saga_id: str) -> int:
        return uuid.UUID(saga_id).int % self.partitions

    async def _lease_loop(self, tasks: asyncio.TaskGroup) -> None:
        while True:
            for p, lease in self._leases.items():
                if p in self._held:
                    if not await lease.still_held():
                        log.warning("saga partition %s lost its lease", p)
                        self._held.discard(p)
                    continue
                if await lease.try_acquire():
                    await self._take_over(p)
                    self._held.add(p)
                    tasks.create_task(self._follow(p))
                    self._wake.set()
                    # Let workers starting together interleave, so partitions spread out.
                    await asyncio.sleep(random.uniform(0.0, 0.2))
            await asyncio.sleep(1.0)

    async def _take_over(self, p: int) -> None:
        """We now own partition ``p``: its previous owner is gone (it held the lease until it
        died), so steps it had claimed but not finished are due again now."""
        now = time.time()
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT action_id FROM saga_actions WHERE partition_no = ? AND status = 'pending'"
                " AND claimed_by IS NOT NULL",
                (p,),
            )
            for row in rows:
                action_id = str(row["action_id"])
                if action_id not in self._in_flight:
                    await tx.execute(
                        "UPDATE saga_actions SET claimed_by = NULL, due_at = ? WHERE action_id = ?",
                        (now, action_id),
                    )

    async def _checkpoint(self, p: int) -> int:
        rows = await self.db.fetchall(
            "SELECT position FROM saga_checkpoints WHERE name = ?", (self._checkpoint_name(p),)
        )
        return int(rows[0]["position"]) if rows else 0

    def _checkpoint_name(self, p: int) -> str:
        return f"saga:{self.definition.type}:{p}of{self.partitions}"

    async def _save_checkpoint(self, tx: Tx, p: int, position: int) -> None:
        name = self._checkpoint_name(p)
        changed = await tx.execute(
            "UPDATE saga_checkpoints SET position = ? WHERE name = ? AND position < ?",
            (position, name, position),
        )
        if changed == 0:
            await tx.execute(
                "INSERT INTO saga_checkpoints (name, position) VALUES (?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, position),
            )

    async def _follow(self, p: int) -> None:
        """Follow ``$all`` for partition ``p`` while we own it; a failed transaction rolls back
        and is retried from the last checkpoint."""
        while p in self._held:
            try:
                await self._follow_once(p)
            except Exception:
                log.exception("saga partition %s: following $all failed; retrying", p)
                await asyncio.sleep(1.0)

    async def _follow_once(self, p: int) -> None:
        position = await self._checkpoint(p)
        while p in self._held:
            batch = await self.store.read_all(after=position, limit=self.batch_size)
            if not batch:
                await self.store.wait_for_append(position, timeout=1.0)
                continue
            # A worker that lost its lease (e.g. its database session died) must not write
            # beside the new owner.
            if not await self._leases[p].still_held():
                self._held.discard(p)
                return
            # One transaction per batch: every transition of the batch and the checkpoint after
            # it commit together (all or nothing), so a crash re-reads the whole batch and
            # nothing is applied twice. Batches stay small enough (batch_size) to keep the write
            # lock short.
            ours = []
            for event in batch:
                message = Message.from_event(event)
                key = self.definition.route(message)
                if key is None:
                    continue
                saga_id = saga_id_for(self.definition.type, key)
                if self.partition_of(saga_id) == p:
                    ours.append((saga_id, key, message))
            async with self.db.transaction() as tx:
                for saga_id, key, message in ours:
                    await self._apply_in(tx, saga_id, key, message)
                await self._save_checkpoint(tx, p, batch[-1].position)
            position = batch[-1].position
            if ours:
                self._wake.set()

    async def _pump_loop(self, tasks: asyncio.TaskGroup) -> None:
        while True:
            held = sorted(self._held)
            if held:
                try:
                    await self._fire_timers(held)
                    await self._start_due_steps(held, tasks)
                except Exception:
                    log.exception("saga timers/steps: a transaction failed; retrying")
                    await asyncio.sleep(1.0)
            await wait_set(self._wake, self.poll_interval)
            self._wake.clear()

    async def _fire_timers(self, held: builtins.list[int]) -> None:
        while True:
            async with self.db.transaction() as tx:
                timer = await deadlines.claim_due(tx, now=time.time(), partitions=held)
                if timer is None:
                    return
                row = await tx.fetchone(
                    "SELECT saga_key FROM saga_instances WHERE saga_id = ?", (timer.saga_id,)
                )
                if row is None:
                    continue
                await self._log(
                    tx,
                    timer.saga_id,
                    "timer",
                    None,
                    timer.kind,
                    timer.timer_id,
                    {"due_at": from_epoch(timer.due_at).isoformat()},
                )
                message_type = DEADLINE_EXPIRED if timer.kind == deadlines.DEADLINE else timer.kind
                await self._apply_in(
                    tx,
                    timer.saga_id,
                    str(row["saga_key"]),
                    Message(id=timer.timer_id, type=message_type, data=timer.payload),
                )

    async def _start_due_steps(self, held: builtins.list[int], tasks: asyncio.TaskGroup) -> None:
        room = self.max_in_flight - len(self._in_flight)
        if room <= 0:
            return
        marks = ", ".join("?" for _ in held)
        async with self.db.transaction() as tx:
            # SKIP LOCKED: a step another worker is claiming right now is left to it; the
            # claimed_by mark then keeps everybody else off it until it is answered.
            rows = await tx.fetchall(
                f"SELECT {_ACTION_COLUMNS} FROM saga_actions WHERE status = 'pending'"
                f" AND claimed_by IS NULL AND due_at <= ? AND partition_no IN ({marks})"
                " ORDER BY due_at LIMIT ?" + tx.skip_locked(),
                (time.time(), *held, room),
            )
            for row in rows:
                await tx.execute(
                    "UPDATE saga_actions SET claimed_by = ? WHERE action_id = ?",
                    (self.worker_id, row["action_id"]),
                )
                await self._log(
                    tx,
                    str(row["saga_id"]),
                    "started",
                    str(row["step"]),
                    None,
                    str(row["action_id"]),
                    {"worker": self.worker_id, "attempt": int(row["attempts"]) + 1},
                )
        for row in rows:
            action = _action(row)
            step = self._run_step(action)
            try:
                tasks.create_task(step)
            except RuntimeError:  # the runner is shutting down; the claim is released on
                step.close()  # the next take-over
                return
            self._in_flight.add(action.action_id)

    async def _run_step(self, action: _Action) -> None:
        outcome: str
        error: str | None = None
        try:
            effect = self.effects.get(action.kind)
            if effect is None:
                raise ApplicationError("saga.no_effect", f"no effect runs {action.kind!r} steps")
            context = StepContext(
                saga_id=action.saga_id,
                saga_type=self.definition.type,
                key=action.key,
                step=action.step,
                kind=action.kind,
                payload=action.payload,
                command_id=action.action_id,
                attempt=action.attempts + 1,
                correlation_id=action.correlation_id,
                causation_id=action.causation_id,
                compensation=action.compensation,
            )
            await asyncio.wait_for(effect(context), timeout=self.policy.timeout)
            outcome = "succeeded"
        except TimeoutError:
            outcome, error = "transient", f"no answer within {self.policy.timeout:g}s"
        except ConcurrencyError as exc:
            # Contention on a hot stream (e.g. one popular SKU) after the bus's own retries:
            # nothing is wrong with the step, so it does not use up an attempt.
            outcome, error = "contention", str(exc)
        except (TransientAdapterError, StoreUnavailableError) as exc:
            outcome, error = "transient", str(exc)
        except CairnError as exc:
            outcome, error = "permanent", f"{exc.code}: {exc}"
        except Exception as exc:  # an unexpected failure may be passing: retry, bounded
            log.exception("saga step %s of %s raised", action.step, action.saga_id)
            outcome, error = "transient", f"{type(exc).__name__}: {exc}"
        try:
            await self._record_outcome(action, outcome, error)
        except Exception:
            # The answer could not be recorded (database hiccup): un-claim the step so it runs
            # again later; its command id makes the re-run harmless.
            log.exception("could not record the outcome of %s; will re-run it", action.step)
            with contextlib.suppress(Exception):
                async with self.db.transaction() as tx:
                    await tx.execute(
                        "UPDATE saga_actions SET claimed_by = NULL, due_at = ?"
                        " WHERE action_id = ? AND claimed_by = ?",
                        (time.time() + 1.0, action.action_id, self.worker_id),
                    )
        finally:
            self._in_flight.discard(action.action_id)
            self._wake.set()

    async def _record_outcome(self, action: _Action, outcome: str, error: str | None) -> None:
        now = time.time()
        async with self.db.transaction() as tx:
            # Lock order is always saga row, then its step rows (as in _apply_in): the reverse
            # order deadlocks against a transition of the same saga on PostgreSQL.
            await tx.fetchone(
                "SELECT version FROM saga_instances WHERE saga_id = ?" + tx.for_update(),
                (action.saga_id,),
            )
            row = await tx.fetchone(
                "SELECT status, claimed_by, attempts FROM saga_actions"
                " WHERE action_id = ?" + tx.for_update(),
                (action.action_id,),
            )
            if row is None or row["status"] != "pending" or row["claimed_by"] != self.worker_id:
                return  # someone else took it over (we lost our lease): their answer counts
            attempts = int(row["attempts"]) + 1
            if outcome == "succeeded":
                await tx.execute(
                    "UPDATE saga_actions SET status = 'done', attempts = ?, claimed_by = NULL,"
                    " error = NULL, updated_at = ? WHERE action_id = ?",
                    (attempts, now, action.action_id),
                )
                await self._log(
                    tx,
                    action.saga_id,
                    "succeeded",
                    action.step,
                    None,
                    action.action_id,
                    {"attempt": attempts},
                )
                if not action.compensation:
                    return  # a forward step's outcome reaches the saga as the event it recorded
                answer = Message(
                    id=str(uuid.uuid5(uuid.UUID(action.action_id), "succeeded")),
                    type=STEP_SUCCEEDED,
                    data={
                        "step": action.step,
                        "kind": action.kind,
                        "compensation": action.compensation,
                        "attempts": attempts,
                    },
                )
                await self._apply_in(tx, action.saga_id, action.key, answer)
                return
            limit = action.max_attempts
            if outcome == "contention":
                attempts -= 1
            if outcome == "contention" or (outcome == "transient" and attempts < limit):
                delay = self.policy.delay(attempts) if outcome == "transient" else 0.0
                delay = delay or random.uniform(0.005, 0.05)
                await tx.execute(
                    "UPDATE saga_actions SET status = 'pending', attempts = ?, due_at = ?,"
                    " claimed_by = NULL, error = ?, updated_at = ? WHERE action_id = ?",
                    (attempts, now + delay, error, now, action.action_id),
                )
                await self._log(
                    tx,
                    action.saga_id,
                    "retrying",
                    action.step,
                    None,
                    action.action_id,
                    {"attempt": attempts, "error": error, "retry_in": round(delay, 3)},
                )
                return
            await tx.execute(
                "UPDATE saga_actions SET status = 'failed', attempts = ?, claimed_by = NULL,"
                " error = ?, updated_at = ? WHERE action_id = ?",
                (attempts, error, now, action.action_id),
            )
            await self._log(
                tx,
                action.saga_id,
                "failed",
                action.step,
                None,
                action.action_id,
                {"attempt": attempts, "error": error},
            )
            failure = Message(
                id=str(uuid.uuid5(uuid.UUID(action.action_id), f"failed:{attempts}")),
                type=STEP_FAILED,
                data={
                    "step": action.step,
                    "kind": action.kind,
                    "error": error,
                    "compensation": action.compensation,
                    "attempts": attempts,
                },
            )
            await self._apply_in(tx, action.saga_id, action.key, failure)

    # -- the transition -----------------------------------------------------------------------

    async def _apply_in(self, tx: Tx, saga_id: str, key: str, message: Message) -> None:
        """Apply one message to one saga inside ``tx`` (the caller records the input as handled
        in the same transaction)."""
        definition = self.definition
        # Row lock (PostgreSQL): two transitions of one saga never interleave; the second waits
        # and then sees the first one's state.
        row = await tx.fetchone(
            "SELECT state, version, correlation_id, status FROM saga_instances"
            " WHERE saga_id = ?" + tx.for_update(),
            (saga_id,),
        )
        now = time.time()
        if row is None:
            if not definition.starts(message):
                return
            state = definition.initial_state()
            version = 0
            correlation = message.metadata.get("correlation_id") or message.id
            correlation_id: str | None = str(correlation)
            before = None
        else:
            state = definition.load(json.loads(row["state"]))
            version = int(row["version"])
            correlation_id = row["correlation_id"]
            before = row["status"]
        transition = definition.handle(state, message)
        state, sends = transition.state, transition.sends
        status = definition.status(state)
        step = definition.step(state)
        partition = self.partition_of(saga_id)
        encoded = json.dumps(definition.dump(state), separators=(",", ":"))
        if row is None:
            await tx.execute(
                "INSERT INTO saga_instances (saga_id, saga_type, saga_key, partition_no, status,"
                " step, state, correlation_id, version, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    saga_id,
                    definition.type,
                    key,
                    partition,
                    status.value,
                    step,
                    encoded,
                    correlation_id,
                    1,
                    now,
                    now,
                ),
            )
            await deadlines.schedule(
                tx,
                saga_id=saga_id,
                partition=partition,
                kind=deadlines.DEADLINE,
                due_at=now + self.policy.deadline,
                payload={},
            )
        else:
            await tx.execute(
                "UPDATE saga_instances SET status = ?, step = ?, state = ?, version = ?,"
                " updated_at = ? WHERE saga_id = ?",
                (status.value, step, encoded, version + 1, now, saga_id),
            )
        if status is not SagaStatus.RUNNING:
            await deadlines.cancel(tx, saga_id=saga_id, kind=deadlines.DEADLINE)
        if status is SagaStatus.COMPENSATING and before != status.value:
            # Forward steps are no longer wanted: let the attempt in flight (if any) be their
            # last, so compensation waits for at most one step timeout, not every retry.
            await tx.execute(
                "UPDATE saga_actions SET max_attempts = CASE WHEN max_attempts > attempts + 1"
                " THEN attempts + 1 ELSE max_attempts END"
                " WHERE saga_id = ? AND status = 'pending' AND compensation = 0",
                (saga_id,),
            )
        await self._log(
            tx,
            saga_id,
            "received",
            step,
            message.type,
            message.id,
            {
                "status": status.value,
                **({"from": before} if before and before != status.value else {}),
            },
        )
        for send in sends:
            action_id = command_id_for(saga_id, send.step)
            attempts = (
                self.policy.compensation_attempts if send.compensation else self.policy.attempts
            )
            await tx.execute(
                "INSERT INTO saga_actions (action_id, saga_id, saga_key, correlation_id,"
                " partition_no, step, kind, payload, compensation, status, attempts,"
                " max_attempts, due_at, claimed_by, causation_id, error, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, NULL, ?, NULL, ?, ?)"
                " ON CONFLICT (action_id) DO NOTHING",
                (
                    action_id,
                    saga_id,
                    key,
                    correlation_id,
                    partition,
                    send.step,
                    send.kind,
                    json.dumps(dict(send.payload)),
                    1 if send.compensation else 0,
                    attempts,
                    now,
                    message.id,
                    now,
                    now,
                ),
            )
            await self._log(
                tx,
                saga_id,
                "sent",
                send.step,
                send.kind,
                action_id,
                {"payload": dict(send.payload), "compensation": send.compensation},
            )
        if self._on_transition is not None and before != status.value:
            self._on_transition(definition.type, status)

    async def _log(
        self,
        tx: Tx,
        saga_id: str,
        kind: str,
        step: str | None,
        message_type: str | None,
        message_id: str | None,
        detail: dict[str, Any],
    ) -> None:
        await tx.execute(
            "INSERT INTO saga_log (saga_id, at, kind, step, message_type, message_id, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                saga_id,
                time.time(),
                kind,
                step,
                message_type,
                message_id,
                json.dumps(detail, default=str),
            ),
        )

    def _record(self, row: Row) -> SagaRecord:
        return SagaRecord(
            saga_id=str(row["saga_id"]),
            type=str(row["saga_type"]),
            key=str(row["saga_key"]),
            status=SagaStatus(row["status"]),
            step=str(row["step"]),
            data=json.loads(row["state"]),
            created_at=from_epoch(float(row["created_at"])),
            updated_at=from_epoch(float(row["updated_at"])),
        )
