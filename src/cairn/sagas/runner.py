"""The saga runner: owns partitions, feeds ``$all`` and the engine's timers to a saga definition,
and runs the commands its sagas send.

The pieces, each in its own module: :mod:`.transitions` applies one input to one saga and
records it as handled in the same transaction; :mod:`.steps` claims and runs due steps;
:mod:`.operators` lists, shows and retries sagas; :mod:`.repository` holds every statement on
the saga tables. This module is the loop around them: partitions and their leases, following
``$all`` from each partition's checkpoint, and waking the step and timer pump.

Invariants (each guards against a crash at any instant):

* A transition (new state, step-log lines, the commands to send, a new deadline) commits in the
  same transaction as the record that its input was handled: the partition's checkpoint for an
  event, the deleted timer row for a deadline, the failed step row for a ``StepFailed``. So an
  input is never applied twice nor skipped.
* Commands are rows (``saga_actions``) written in that transaction and executed after it
  commits; a step is marked done only after its effect returned. A crash in between re-runs the
  effect with the same command id (``uuid5(saga_id, step)``), which the command side and the
  adapters recognise — a re-send is harmless.
* One worker at a time per partition (a :mod:`cairn.leases` lease). A step is claimed
  (``claimed_by``) before it runs, so no step ever runs twice concurrently: by the runner whose
  transition sent it, in that transaction (it runs the step as soon as it commits), or, for the
  steps nobody holds (retries, an operator's reset, a dead worker's), by the pump with
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; timers are claimed the same way.

Idle, the runner sleeps: the pump until the next due step or timer, the follower until the
store's notification of an append (:meth:`~cairn.store.base.EventStore.follow`), each with a
bound (:data:`IDLE_POLL_INTERVAL`, :data:`IDLE_FOLLOW_INTERVAL`); the lease is asked about
every :data:`LEASE_CHECK_INTERVAL`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import Final, Generic, TypeVar

from cairn.errors import StaleRowError
from cairn.leases import CHECK_INTERVAL, Lease, Leases, lease_for
from cairn.observability.logging import get_logger
from cairn.sagas.engine import Effect, SagaDefinition, SagaRecord, SagaStatus, StepLogEntry
from cairn.sagas.operators import DEFAULT_LIST_LIMIT, SagaOperators
from cairn.sagas.policy import StepPolicy
from cairn.sagas.repository import Action, SagaRepository
from cairn.sagas.steps import Steps
from cairn.sagas.transitions import Routed, Transitions, partition_of
from cairn.sql.checkpoints import load_checkpoint
from cairn.sql.database import Database
from cairn.store.base import EventStore
from cairn.store.urls import Backend, backend_of
from cairn.waiting import wait_set

__all__ = ["SagaRunner", "StepPolicy"]

log = get_logger("cairn.sagas")

#: How often the runner tries to take the partitions it does not hold and asks about those it
#: does (seconds; :data:`cairn.leases.CHECK_INTERVAL`). Idle, this is most of its transactions.
LEASE_CHECK_INTERVAL: Final = CHECK_INTERVAL
#: The longest an idle runner sleeps before looking for steps and timers another process wrote
#: (a step an operator reset from the CLI) (seconds).
IDLE_POLL_INTERVAL: Final = 5.0
#: How long the checkpoint may lag behind events that concern none of our sagas (seconds).
CHECKPOINT_LAG: Final = 1.0
#: After a transition of several messages (sagas running side by side), the pause before the
#: next one, so that the messages arriving meanwhile share its transaction (seconds). A lone
#: saga's transitions (one message each) never wait.
BUSY_PACE: Final = 0.010
#: The longest it waits for the store's notification of an append before reading ``$all``
#: anyway (a notification lost while the store's listener reconnected) (seconds).
IDLE_FOLLOW_INTERVAL: Final = 10.0

S = TypeVar("S")


class _LocalLease(Lease):
    """A private database (memory://) has one runner by construction."""

    async def try_acquire(self) -> bool:
        self.held = True
        return True

    async def still_held(self) -> bool:
        return self.held

    async def release(self) -> None:
        self.held = False


class SagaRunner(Generic[S]):
    """Runs one saga definition. ``run()`` forever (cancel to stop); the rest is the operators'
    API (``list``, ``counts``, ``get``, ``get_by_key``, ``history``, ``retry``), usable without
    ``run()``."""

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
        running_steps: int = 16,
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
        self.policy = policy
        self.partitions = partitions
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
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
        # Each held partition's one follower. A lease lost and retaken gets a new follower only
        # once the old one has stopped (it may be waiting for an append, or mid-batch).
        self._followers: dict[int, asyncio.Task[None]] = {}
        # The earliest timer this process set since the pump last looked (epoch seconds): it may
        # not be committed yet when the pump asks the database, so the pump also wakes for it.
        self._timer_hint = math.inf
        self._pump_sleeps_until = math.inf
        # Set when there may be new work for the pump: a batch with our sagas committed, a step
        # finished, a partition was taken, an operator retried.
        self._wake = asyncio.Event()
        self._closed = False
        repository = self.repository = SagaRepository(key_field=definition.key_field)
        self.transitions = Transitions(
            definition=definition,
            repository=repository,
            policy=policy,
            partitions=partitions,
            on_transition=on_transition,
            on_timer=self._timer_set,
        )
        self.steps = Steps(
            db=db,
            repository=repository,
            transitions=self.transitions,
            effects=effects,
            policy=policy,
            worker_id=self.worker_id,
            wake=self._wake,
            max_in_flight=max_in_flight,
            running=running_steps,
        )
        self.operators = SagaOperators(
            db=db, repository=repository, transitions=self.transitions, wake=self._wake
        )

    # -- operators (see .operators) -----------------------------------------------------------

    async def list(
        self, status: str | None = None, limit: int = DEFAULT_LIST_LIMIT
    ) -> builtins.list[SagaRecord]:
        """Sagas (newest activity first), optionally of one status; at most ``limit``."""
        return await self.operators.list(status, limit)

    async def counts(self) -> dict[str, int]:
        """How many sagas are in each status (for metrics and health)."""
        return await self.operators.counts()

    async def get(self, saga_id: str) -> SagaRecord | None:
        return await self.operators.get(saga_id)

    async def get_by_key(self, key: str) -> SagaRecord | None:
        """The saga of a key (the id of the entity it runs for)."""
        return await self.operators.get_by_key(key)

    async def history(self, saga_id: str) -> builtins.list[StepLogEntry]:
        """Everything the saga received, sent, and was answered, oldest first."""
        return await self.operators.history(saga_id)

    async def retry(self, saga_id: str) -> SagaRecord:
        """Re-run the failed steps of a ``failed`` saga from scratch (fresh attempts)."""
        return await self.operators.retry(saga_id)

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Own partitions (leases), follow ``$all`` from each one's checkpoint, fire due timers
        and run due steps. Forever; cancel to stop."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self.steps.attach(tasks)
                tasks.create_task(self._lease_loop(tasks))
                tasks.create_task(self._pump_loop())
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
        self._followers.clear()
        for lease in self._leases.values():
            with contextlib.suppress(Exception):
                await lease.release()

    @property
    def owned(self) -> frozenset[int]:
        """The partitions this runner holds the lease of now (and so follows)."""
        return frozenset(self._held)

    def partition_of(self, saga_id: str) -> int:
        return partition_of(saga_id, self.partitions)

    def checkpoint_name(self, p: int) -> str:
        """Partition ``p``'s row in the one checkpoint table (:mod:`cairn.sql.checkpoints`)."""
        return f"saga:{self.definition.type}:{p}of{self.partitions}"

    async def _lease_loop(self, tasks: asyncio.TaskGroup) -> None:
        while True:
            for p, lease in self._leases.items():
                if p in self._held:
                    if not await self._still_held(p):
                        log.warning("saga partition %s lost its lease", p)
                        self._held.discard(p)
                        if p in self._followers:
                            self._followers[p].cancel()
                    continue
                if await lease.try_acquire():
                    await self._stop_follower(p)
                    await self.steps.take_over(p)
                    self._held.add(p)
                    self._followers[p] = tasks.create_task(self._follow(p))
                    self._wake.set()
                    # Let workers starting together interleave, so partitions spread out.
                    await asyncio.sleep(random.uniform(0.0, 0.2))
            await asyncio.sleep(LEASE_CHECK_INTERVAL)

    async def _stop_follower(self, p: int) -> None:
        """Cancel partition ``p``'s follower and wait until it has stopped: what it applies
        after a lease was lost it would apply again beside (and behind) the next follower."""
        task = self._followers.pop(p, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])  # (does not re-raise the task's cancellation here)

    def _following(self, p: int) -> bool:
        """Whether the current task is the follower of ``p`` now: not once the lease was lost,
        even when it is held again (the check a follower that survived its cancellation sees)."""
        return p in self._held and self._followers.get(p) is asyncio.current_task()

    async def _still_held(self, p: int) -> bool:
        """Whether we still hold partition ``p``'s lease (asked of the database at most once
        per :data:`LEASE_CHECK_INTERVAL`)."""
        return await self._leases[p].still_held_within(LEASE_CHECK_INTERVAL)

    async def _follow(self, p: int) -> None:
        """Follow ``$all`` for partition ``p`` while we own it; a failed transaction rolls back
        and is retried from the last checkpoint."""
        while self._following(p):
            try:
                await self._follow_once(p)
            except Exception:
                log.exception("saga partition %s: following $all failed; retrying", p)
                self._leases[p].doubt()  # an outage ends the lease's session too: ask at once
                await asyncio.sleep(1.0)

    async def _follow_once(self, p: int) -> None:
        name = self.checkpoint_name(p)
        position = await load_checkpoint(self.db, name)
        saved_at = time.monotonic()
        # Woken by the store's notification of an append; IDLE_FOLLOW_INTERVAL only bounds how
        # long a lost notification can delay us (each look costs a statement).
        batches = self.store.follow(position, batch_size=self.batch_size, idle=IDLE_FOLLOW_INTERVAL)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                # A worker that lost its lease (e.g. its database session died) must not write
                # beside the new owner, nor a follower replaced here after its lease was lost.
                if not self._following(p):
                    return
                if not await self._still_held(p):
                    self._held.discard(p)
                    return
                # One transaction per batch, checkpoint included (Transitions.apply_events).
                # Batches stay small enough (batch_size) to keep the write lock short. The steps
                # it sends are ours (claimed in it) and start as soon as it commits.
                ours = self.transitions.ours(p, batch)
                if not ours and time.monotonic() - saved_at < CHECKPOINT_LAG:
                    # Nothing for our sagas (an order created, another partition's event): after
                    # a crash, reading these again changes nothing, so the checkpoint can wait.
                    continue
                saved_at = time.monotonic()
                actions = await self._transition(ours, name, batch[-1].position)
                self.steps.start(actions)
                if len(ours) > 1:
                    await asyncio.sleep(BUSY_PACE)

    async def _transition(
        self, ours: builtins.list[Routed], checkpoint: str, position: int
    ) -> builtins.list[Action]:
        """One batch's transaction, which also records the forward successes waiting to be
        (:meth:`.steps.Steps.take_successes`); once more at once if a saga's row changed under
        what this process remembered of it (the retry reads the row: :mod:`.instances`)."""
        successes = self.steps.take_successes()
        done = [action.action_id for action, _ in successes]

        async def apply() -> builtins.list[Action]:
            async with self.db.transaction() as tx:
                return await self.transitions.apply_events(
                    tx, ours, checkpoint, position, claim_for=self.worker_id, successes=done
                )

        try:
            try:
                actions = await apply()
            except StaleRowError as exc:
                log.info("saga partition checkpoint %s: %s; reading it again", checkpoint, exc)
                actions = await apply()
        except BaseException:
            self.steps.settle_successes(successes, committed=False)
            raise
        self.steps.settle_successes(successes, committed=True)
        return actions

    def _timer_set(self, due_at: float) -> None:
        self._timer_hint = min(self._timer_hint, due_at)
        if due_at < self._pump_sleeps_until:
            self._wake.set()

    async def _pump_loop(self) -> None:
        """Fire due timers and claim due steps nobody holds (retries, an operator's reset, a
        dead worker's), then sleep until the next one is due, or until woken, or at most
        :data:`IDLE_POLL_INTERVAL` (a step or timer another process wrote). Idle, that is one
        statement per interval."""
        while True:
            due = math.inf
            held = sorted(self._held)
            if held:
                if self._timer_hint <= time.time():
                    self._timer_hint = math.inf
                try:
                    due = await self._next_due(held)
                    if due <= time.time():
                        await self._fire_timers(held)
                        await self.steps.start_due(held)
                        due = await self._next_due(held)
                except Exception:
                    log.exception("saga timers/steps: a transaction failed; retrying")
                    await asyncio.sleep(1.0)
                    continue
            sleep = min(max(due - time.time(), self.poll_interval), IDLE_POLL_INTERVAL)
            self._pump_sleeps_until = time.time() + sleep
            await wait_set(self._wake, sleep)
            self._pump_sleeps_until = math.inf
            self._wake.clear()

    async def _next_due(self, held: builtins.list[int]) -> float:
        due = await self.repository.next_due(self.db, held)
        return min(math.inf if due is None else due, self._timer_hint)

    async def _fire_timers(self, held: builtins.list[int]) -> None:
        """Fire every due timer of the ``held`` partitions, one transaction each, and run the
        steps they sent; a timer whose saga's row changed under what this process remembered
        of it fires again at once (reading the row), as a batch does (:meth:`_transition`)."""
        fired = True
        while fired:
            try:
                fired, actions = await self._fire_next_timer(held)
            except StaleRowError as exc:
                log.info("saga timer: %s; reading it again", exc)
                fired, actions = await self._fire_next_timer(held)
            self.steps.start(actions)

    async def _fire_next_timer(
        self, held: builtins.list[int]
    ) -> tuple[bool, builtins.list[Action]]:
        async with self.db.transaction() as tx:
            return await self.transitions.fire_due_timer(tx, held, claim_for=self.worker_id)
