"""Running the commands sagas send: claim due steps, run each effect with a timeout, record its
outcome, retry with backoff.

A step is a ``saga_actions`` row written by the transition that sent it (:mod:`.transitions`)
and executed after that transaction commits. It is claimed (``claimed_by``) before it runs, so
no step ever runs twice concurrently, and marked done only after its effect returned: a crash in
between re-runs the effect with the same command id (``uuid5(saga_id, step)``), which the
command side and the adapters recognise, so a re-send is harmless.

A step sent by a runner's own transition is inserted already claimed by it and handed over here
(:meth:`Steps.start`) the moment that transaction commits; the pump (:meth:`Steps.start_due`)
only claims the steps nobody holds: retries that came due, steps an operator reset, and those of
a worker that died (released by :meth:`Steps.take_over`). A forward step's success is one
statement on PostgreSQL (:meth:`.repository.SagaRepository.record_successes`), usually one of
the writes of the runner's next transition (:meth:`Steps.take_successes`); a failure or a
compensation's answer locks the saga first and applies the answer to it in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Mapping
from typing import Generic, TypeVar

from opentelemetry.trace import Span, StatusCode

from cairn.errors import (
    ApplicationError,
    CairnError,
    ConcurrencyError,
    StoreUnavailableError,
    TransientAdapterError,
)
from cairn.observability.logging import get_logger
from cairn.observability.tracing import span
from cairn.sagas.engine import STEP_FAILED, STEP_SUCCEEDED, Effect, Message, StepContext
from cairn.sagas.policy import StepPolicy
from cairn.sagas.repository import Action, LogLine, SagaRepository
from cairn.sagas.transitions import Transitions
from cairn.sql.database import Database, Dialect
from cairn.uuids import uuid5_text

log = get_logger("cairn.sagas")

S = TypeVar("S")

#: A forward step that succeeded, and the future its task awaits until the success is recorded.
Success = tuple[Action, asyncio.Future[None]]

#: Seconds a forward success waits to be recorded by the runner's next transition (PostgreSQL)
#: before it is recorded on its own: the transition that handles the step's event usually comes
#: within a millisecond; a burst keeps transitions coming.
FOLD_WINDOW = 0.02


class Steps(Generic[S]):
    """Claims and runs the steps of the partitions a worker holds.

    ``in_flight``: the ids of the steps this worker holds now (at most ``max_in_flight`` of them
    claimed by polling); ``running``: how many run their effect at once, the others wait their
    turn with their timeout not started yet (more than the database pool can serve only makes
    every effect wait for a connection, and steps on one stream conflict); ``wake`` is set when
    the pump should look for due steps again (a retry was scheduled, or a place freed up while
    due steps were left waiting)."""

    def __init__(
        self,
        *,
        db: Database,
        repository: SagaRepository,
        transitions: Transitions[S],
        effects: Mapping[str, Effect],
        policy: StepPolicy,
        worker_id: str,
        wake: asyncio.Event,
        max_in_flight: int = 64,
        running: int = 16,
    ) -> None:
        self.db = db
        self.repository = repository
        self.transitions = transitions
        self.effects = dict(effects)
        self.policy = policy
        self.worker_id = worker_id
        self.wake = wake
        self.max_in_flight = max_in_flight
        self.in_flight: set[str] = set()
        self._places = asyncio.Semaphore(min(running, max_in_flight))
        #: Due steps were left unclaimed for want of room: wake the pump when a step ends.
        self._backlog = False
        self._tasks: asyncio.TaskGroup | None = None
        # Forward successes waiting to be recorded, and the task recording them.
        self._succeeded: list[Success] = []
        self._recorder: asyncio.Future[None] | None = None

    def attach(self, tasks: asyncio.TaskGroup) -> None:
        """Run steps in ``tasks`` (the runner's task group) from now on."""
        self._tasks = tasks

    async def take_over(self, partition: int) -> None:
        """We now own ``partition``: its previous owner is gone (it held the lease until it
        died), so steps it had claimed but not finished are due again now."""
        now = time.time()
        async with self.db.transaction() as tx:
            for action_id in await self.repository.claimed_actions(tx, partition):
                if action_id not in self.in_flight:
                    await self.repository.release_claim(tx, action_id, now)

    def start(self, actions: list[Action]) -> None:
        """Run ``actions``, which this worker has claimed (their transaction committed)."""
        for action in actions:
            if action.action_id in self.in_flight:
                continue
            step = self._run(action)
            try:
                if self._tasks is None:
                    raise RuntimeError("not running")
                self._tasks.create_task(step)
            except RuntimeError:  # the runner is shutting down; the claim is released on
                step.close()  # the next take-over
                return
            self.in_flight.add(action.action_id)

    async def start_due(self, held: list[int]) -> None:
        """Claim the due steps nobody holds in the ``held`` partitions (as many as there is
        room for) and start running each one."""
        room = self.max_in_flight - len(self.in_flight)
        self._backlog = room <= 0
        if room <= 0:
            return
        repository = self.repository
        async with self.db.transaction() as tx:
            actions = await repository.claim_due_actions(
                tx, held, time.time(), room, self.worker_id
            )
            async with tx.pipelined():
                await repository.append_logs(
                    tx,
                    [
                        LogLine(
                            a.saga_id,
                            "started",
                            a.step,
                            None,
                            a.action_id,
                            {"worker": self.worker_id, "attempt": a.attempts + 1},
                        )
                        for a in actions
                    ],
                )
        self._backlog = len(actions) >= room
        self.start(actions)

    async def _run(self, action: Action) -> None:
        # ``saga fulfilment reserve_stock``: in the trace of the message that sent the step,
        # so the command the effect sends (and the events it appends) are its children.
        saga_type = self.transitions.definition.type
        with span(
            f"saga {saga_type} {action.kind}",
            metadata={"traceparent": action.traceparent} if action.traceparent else {},
            attributes={
                "cairn.saga.type": saga_type,
                "cairn.saga.step": action.step,
                "cairn.saga.attempt": action.attempts + 1,
            },
        ) as current:
            await self._run_in_span(action, current)

    async def _run_in_span(self, action: Action, current: Span) -> None:
        outcome: str
        error: str | None = None
        try:
            effect = self.effects.get(action.kind)
            if effect is None:
                raise ApplicationError("saga.no_effect", f"no effect runs {action.kind!r} steps")
            context = StepContext(
                saga_id=action.saga_id,
                saga_type=self.transitions.definition.type,
                key=action.key,
                step=action.step,
                kind=action.kind,
                payload=action.payload,
                command_id=action.action_id,
                attempt=action.attempts + 1,
                correlation_id=action.correlation_id,
                causation_id=action.causation_id,
                compensation=action.compensation,
                first_run=action.first_run,
            )
            # Its turn first (``running``), then a deadline on this task (not wait_for's task
            # per step); recording the outcome afterwards takes no turn.
            async with self._places, asyncio.timeout(self.policy.timeout):
                await effect(context)
            outcome = "succeeded"
        except TimeoutError:
            outcome, error = "transient", f"no answer within {self.policy.timeout:g}s"
        except ConcurrencyError as exc:
            # Contention on a hot stream (e.g. one popular key) after the bus's own retries:
            # nothing is wrong with the step, so it does not use up an attempt.
            outcome, error = "contention", str(exc)
        except (TransientAdapterError, StoreUnavailableError) as exc:
            outcome, error = "transient", str(exc)
        except CairnError as exc:
            outcome, error = "permanent", f"{exc.code}: {exc}"
        except Exception as exc:  # an unexpected failure may be passing: retry, bounded
            log.exception("saga step %s of %s raised", action.step, action.saga_id)
            outcome, error = "transient", f"{type(exc).__name__}: {exc}"
        if outcome != "succeeded" and current.is_recording():
            current.set_status(StatusCode.ERROR, f"{outcome}: {error}")
        sent: list[Action] = []
        try:
            if outcome == "succeeded" and not action.compensation:
                await self._record_forward_success(action)
            else:
                sent = await self._record_answer(action, outcome, error)
        except Exception:
            # The answer could not be recorded (database hiccup): un-claim the step so it runs
            # again later; its command id makes the re-run harmless.
            log.exception("could not record the outcome of %s; will re-run it", action.step)
            with contextlib.suppress(Exception):
                async with self.db.transaction() as tx:
                    await self.repository.unclaim_action(
                        tx, action.action_id, self.worker_id, time.time() + 1.0
                    )
            self.wake.set()
        finally:
            self.in_flight.discard(action.action_id)
            if self._backlog:
                self.wake.set()
        self.start(sent)

    async def _record_forward_success(self, action: Action) -> None:
        """Done, with its log line. The saga hears of it through the event its command recorded
        (no transition here), so no saga row is locked. On PostgreSQL the runner's next
        transition usually records it with its own writes (:meth:`take_successes`: the event
        the step's command appended is on its way to that transition); what is still waiting
        :data:`FOLD_WINDOW` later is recorded on its own, the successes that come in meanwhile
        together (group commit)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._succeeded.append((action, done))
        self._ensure_recorder()
        await done

    def _ensure_recorder(self) -> None:
        if self._recorder is None or self._recorder.done():
            recording = self._record_successes()
            try:
                self._recorder = (
                    self._tasks.create_task(recording)
                    if self._tasks is not None
                    else asyncio.ensure_future(recording)
                )
            except RuntimeError:  # the runner is shutting down: the steps stay claimed and
                recording.close()  # run again after the next take-over (their ids dedupe)

    def take_successes(self) -> list[Success]:
        """The forward successes waiting to be recorded, for a transaction of the runner to
        record with its own writes (PostgreSQL; none on SQLite, where recording is a
        transaction of its own anyway). Hand them back with :meth:`settle_successes`."""
        if self.db.dialect is not Dialect.POSTGRES:
            return []
        taken, self._succeeded = self._succeeded, []
        return taken

    def settle_successes(self, taken: list[Success], *, committed: bool) -> None:
        """After the transaction that recorded ``taken``: done if it ``committed``, else they
        wait to be recorded again."""
        if not committed:
            self._succeeded = taken + self._succeeded
            if taken:
                self._ensure_recorder()
            return
        for _, done in taken:
            if not done.done():  # its step may have been cancelled (shutdown)
                done.set_result(None)

    async def _record_successes(self) -> None:
        if self.db.dialect is Dialect.POSTGRES:
            await asyncio.sleep(FOLD_WINDOW)  # the next transition may take them first
        while self._succeeded:
            batch, self._succeeded = self._succeeded, []
            try:
                await self.repository.record_successes(
                    self.db, [a.action_id for a, _ in batch], time.time(), self.worker_id
                )
            except Exception as exc:
                for _, done in batch:
                    if not done.done():  # its step may have been cancelled (shutdown)
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _record_answer(self, action: Action, outcome: str, error: str | None) -> list[Action]:
        """A compensation's success, a retry or a failure: the steps the saga sent in answer,
        claimed for this worker."""
        sent, rescheduled = await self._answer(action, outcome, error, time.time())
        if rescheduled:
            # After the commit: a pump woken before it looks for due steps, does not see this
            # one, and sleeps its idle bound (5 s) before looking again.
            self.wake.set()
        return sent

    async def _answer(
        self, action: Action, outcome: str, error: str | None, now: float
    ) -> tuple[list[Action], bool]:
        """The steps sent in answer, and whether the step was rescheduled (a retry), in one
        transaction."""
        repository = self.repository
        async with self.db.transaction() as tx:
            # Lock order is always saga row, then its step rows (as in Transitions.apply_all):
            # the reverse order deadlocks against a transition of the same saga on PostgreSQL.
            locked = await repository.lock_instances(tx, [action.saga_id])
            ran = await repository.claimed_attempts(tx, action.action_id, self.worker_id)
            if ran is None:
                return [], False  # someone else took it over (lost lease): their answer counts
            attempts = ran + 1
            if outcome == "succeeded":
                async with tx.pipelined():
                    await repository.finish_action(
                        tx, action.action_id, attempts, now, self.worker_id
                    )
                    await repository.append_log(
                        tx,
                        action.saga_id,
                        "succeeded",
                        action.step,
                        None,
                        action.action_id,
                        {"attempt": attempts},
                    )
                answer = Message(
                    id=uuid5_text(action.action_id, "succeeded"),
                    type=STEP_SUCCEEDED,
                    data={
                        "step": action.step,
                        "kind": action.kind,
                        "compensation": action.compensation,
                        "attempts": attempts,
                    },
                )
                sent = await self.transitions.apply(
                    tx,
                    action.saga_id,
                    action.key,
                    answer,
                    claim_for=self.worker_id,
                    locked=locked,
                )
                return sent, False
            limit = action.max_attempts
            if outcome == "contention":
                attempts -= 1
            if outcome == "contention" or (outcome == "transient" and attempts < limit):
                delay = self.policy.delay(attempts) if outcome == "transient" else 0.0
                delay = delay or random.uniform(0.005, 0.05)
                async with tx.pipelined():
                    await repository.reschedule_action(
                        tx, action.action_id, attempts, now + delay, error, now
                    )
                    await repository.append_log(
                        tx,
                        action.saga_id,
                        "retrying",
                        action.step,
                        None,
                        action.action_id,
                        {"attempt": attempts, "error": error, "retry_in": round(delay, 3)},
                    )
                return [], True
            async with tx.pipelined():
                await repository.fail_action(tx, action.action_id, attempts, error, now)
                await repository.append_log(
                    tx,
                    action.saga_id,
                    "failed",
                    action.step,
                    None,
                    action.action_id,
                    {"attempt": attempts, "error": error},
                )
            failure = Message(
                id=uuid5_text(action.action_id, f"failed:{attempts}"),
                type=STEP_FAILED,
                data={
                    "step": action.step,
                    "kind": action.kind,
                    "error": error,
                    "compensation": action.compensation,
                    "attempts": attempts,
                },
            )
            sent = await self.transitions.apply(
                tx, action.saga_id, action.key, failure, claim_for=self.worker_id, locked=locked
            )
            return sent, False
