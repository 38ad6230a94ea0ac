"""Handling the inputs of sagas: load their state, ``definition.handle`` each input, and record
the new state, the step-log lines, the commands to send and the deadline, inside the caller's
transaction, together with the record that the input was handled.

What marks an input as handled, in the same transaction, depends on where it came from:

* an event of ``$all``: the partition's checkpoint (:meth:`Transitions.apply_events`, one
  transaction per batch);
* a timer: its deleted row (:meth:`Transitions.fire_due_timer`);
* a step's answer (``StepFailed``, a compensation's ``StepSucceeded``): the step row
  (:mod:`.steps`); an operator's retry: the reset step rows (:mod:`.operators`).

So an input is never applied twice nor skipped, whatever instant a crash hits.

Round trips: the sagas of a whole batch are locked with one statement, which also reads the ids
of the steps they sent before; every write after that is pipelined with the COMMIT (PostgreSQL):
two round trips per transaction, whatever the batch. A runner passes ``claim_for`` (its worker
id): the commands are then inserted already claimed by it, and returned, so it runs them as soon
as the transaction commits instead of polling for them (:meth:`.steps.Steps.start`). A command
whose row already existed (the same step sent again) is neither inserted nor returned: it is
not ours to run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, NamedTuple, TypeVar

from cairn.observability.tracing import current_traceparent
from cairn.sagas import deadlines
from cairn.sagas.engine import (
    DEADLINE_EXPIRED,
    Message,
    SagaDefinition,
    SagaStatus,
    command_id_for,
    from_epoch,
    saga_id_for,
)
from cairn.sagas.instances import Instance, KnownInstances
from cairn.sagas.policy import StepPolicy
from cairn.sagas.repository import (
    Action,
    LogLine,
    NewAction,
    NewTimer,
    SagaRepository,
    SagaRow,
)
from cairn.sagas.row_writes import state_json
from cairn.sql.checkpoints import save_checkpoint
from cairn.sql.database import Dialect, Tx
from cairn.store.base import RecordedEvent

S = TypeVar("S")


#: A saga in one of these receives more inputs: worth remembering (:mod:`.instances`).
_UNFINISHED = frozenset({SagaStatus.RUNNING.value, SagaStatus.COMPENSATING.value})


class Routed(NamedTuple):
    """An input for one saga (an event of ``$all``, or a message of the engine)."""

    saga_id: str
    key: str
    message: Message


def partition_of(saga_id: str, partitions: int) -> int:
    """The partition a saga belongs to (of ``partitions``); every worker must agree."""
    if partitions == 1:
        return 0  # the usual case, asked several times per input: no UUID parsed
    return uuid.UUID(saga_id).int % partitions


class _Saga(Generic[S]):
    """One saga's state while a transaction's inputs are applied to it, and what to write."""

    def __init__(self, key: str, instance: Instance | None) -> None:
        self.key = key
        self.instance = instance
        self.state: S | None = None
        self.version = 0 if instance is None else instance.version
        self.correlation_id = None if instance is None else instance.correlation_id
        self.status: str | None = None if instance is None else instance.status
        self.step = ""
        self.dirty = False


def _new_sends(sends: list[NewAction], sagas: Mapping[str, _Saga[Any]]) -> list[NewAction]:
    """``sends`` less the steps their saga sent before, and repeats within ``sends``."""
    seen: set[str] = set()
    fresh = []
    for new in sends:
        action_id = new.action.action_id
        saga = sagas[new.action.saga_id]
        known = saga.instance.actions if saga.instance is not None else frozenset()
        if action_id not in seen and action_id not in known:
            seen.add(action_id)
            fresh.append(new)
    return fresh


class Transitions(Generic[S]):
    """Applies messages to the sagas of one definition (see the module docstring)."""

    def __init__(
        self,
        *,
        definition: SagaDefinition[S],
        repository: SagaRepository,
        policy: StepPolicy,
        partitions: int,
        on_transition: Callable[[str, SagaStatus], None] | None = None,
        on_timer: Callable[[float], None] | None = None,
    ) -> None:
        self.definition = definition
        self.repository = repository
        self.policy = policy
        self.partitions = partitions
        self.on_transition = on_transition
        #: Told the due time of every timer set (the runner's pump sleeps until the next one).
        self.on_timer = on_timer
        #: The rows this process committed last: read from here, not from the database.
        self.known = KnownInstances()

    def ours(self, partition: int, batch: Sequence[RecordedEvent]) -> list[Routed]:
        """The events of ``batch`` that concern sagas of ``partition``, with their saga (pure:
        worked out before the transaction opens, so the write lock stays short)."""
        routed = []
        for event in batch:
            message = Message.from_event(event)
            key = self.definition.route(message)
            if key is None:
                continue
            saga_id = saga_id_for(self.definition.type, key)
            if partition_of(saga_id, self.partitions) == partition:
                routed.append(Routed(saga_id, key, message))
        return routed

    async def apply_events(
        self,
        tx: Tx,
        routed: Sequence[Routed],
        checkpoint: str,
        position: int,
        *,
        claim_for: str | None = None,
        successes: Sequence[str] = (),
    ) -> list[Action]:
        """Apply ``routed`` (:meth:`ours` of a batch), then save the batch's last ``position``
        as ``checkpoint``, all in ``tx``; the steps sent and claimed for ``claim_for``.
        ``successes``: forward steps of ``claim_for`` that succeeded, recorded first (their
        lines come before those of the events they caused; PostgreSQL).

        One transaction per batch: every transition of the batch and the checkpoint after it
        commit together (all or nothing), so a crash re-reads the whole batch and nothing is
        applied twice."""
        if successes and claim_for is not None:
            async with tx.pipelined():
                await self.repository.record_successes(tx, list(successes), time.time(), claim_for)
        actions = await self.apply_all(tx, routed, claim_for=claim_for) if routed else []
        # Pipelined (PostgreSQL): the checkpoint needs no answer, so it rides along with the
        # COMMIT instead of costing a round trip of its own; an error still fails the commit.
        async with tx.pipelined():
            await save_checkpoint(tx, checkpoint, position)
        return actions

    async def fire_due_timer(
        self, tx: Tx, partitions: list[int], *, claim_for: str | None = None
    ) -> tuple[bool, list[Action]]:
        """Deliver the next due timer of ``partitions`` to its saga in ``tx``, deleting its row
        there too (so it fires once): whether one was due, and the steps it sent."""
        timer = await self.repository.claim_due_timer(tx, now=time.time(), partitions=partitions)
        if timer is None:
            return False, []
        message_type = DEADLINE_EXPIRED if timer.kind == deadlines.DEADLINE else timer.kind
        message = Message(id=timer.timer_id, type=message_type, data=timer.payload)
        line = LogLine(
            timer.saga_id,
            "timer",
            None,
            timer.kind,
            timer.timer_id,
            {"due_at": from_epoch(timer.due_at).isoformat()},
        )
        # The key is the saga's own (a timer only exists for a saga that exists).
        actions = await self.apply_all(
            tx, [Routed(timer.saga_id, "", message)], claim_for=claim_for, first_lines=[line]
        )
        return True, actions

    async def apply(
        self,
        tx: Tx,
        saga_id: str,
        key: str,
        message: Message,
        *,
        claim_for: str | None = None,
        locked: Mapping[str, Instance | None] | None = None,
    ) -> list[Action]:
        """Apply one message to one saga inside ``tx`` (the caller records the input as handled
        in the same transaction); the steps it sent and claimed for ``claim_for``."""
        return await self.apply_all(
            tx, [Routed(saga_id, key, message)], claim_for=claim_for, locked=locked
        )

    async def apply_all(
        self,
        tx: Tx,
        routed: Sequence[Routed],
        *,
        claim_for: str | None = None,
        locked: Mapping[str, Instance | None] | None = None,
        first_lines: Sequence[LogLine] = (),
    ) -> list[Action]:
        """Apply each input of ``routed`` in order, inside ``tx``. ``locked``: the sagas the
        caller already locked (:meth:`.repository.SagaRepository.lock_instances`); the others
        are locked here, all in one statement. ``first_lines``: log lines that go before."""
        repository = self.repository
        instances = dict(locked or {})
        missing = sorted({r.saga_id for r in routed} - instances.keys())
        expected = self._from_memory(tx, routed, missing, instances)
        if len(expected) < len(missing):
            unknown = [saga_id for saga_id in missing if saga_id not in expected]
            instances.update(await repository.lock_instances(tx, unknown))
        now = time.time()
        sagas: dict[str, _Saga[S]] = {}
        lines = list(first_lines)
        sends: list[NewAction] = []
        async with tx.pipelined():
            if expected:
                await repository.check_versions(tx, expected)
            for saga_id, key, message in routed:
                saga = sagas.get(saga_id)
                if saga is None:
                    instance = instances.get(saga_id)
                    saga = sagas[saga_id] = _Saga(instance.key if instance else key, instance)
                await self._apply_one(tx, saga_id, saga, message, now, lines, sends)
            written = await self._write(tx, sagas, now)
            # A step sent again keeps its row (and whoever holds it): only new rows are ours.
            fresh = _new_sends(sends, sagas)
            if tx.dialect is Dialect.POSTGRES:
                tx.after_commit(lambda: self._remember(sagas, written, fresh))
            await repository.insert_actions(tx, fresh, claimed_by=claim_for, now=now)
            if claim_for is None:
                await repository.append_logs(tx, lines)
                return []
            claimed = [replace(new.action, first_run=True) for new in fresh]
            lines += [
                LogLine(
                    a.saga_id,
                    "started",
                    a.step,
                    None,
                    a.action_id,
                    {"worker": claim_for, "attempt": 1},
                )
                for a in claimed
            ]
            await repository.append_logs(tx, lines)
        return claimed

    def _from_memory(
        self,
        tx: Tx,
        routed: Sequence[Routed],
        missing: Sequence[str],
        instances: dict[str, Instance | None],
    ) -> dict[str, int]:
        """Which of the ``missing`` sagas this transaction may write without reading them
        (PostgreSQL: :mod:`.instances`), with the version each must be at (0: no row yet, for a
        saga this input starts); their rows, where known, go into ``instances``."""
        if tx.dialect is not Dialect.POSTGRES:
            return {}
        first: dict[str, Message] = {}
        for saga_id, _, message in routed:
            first.setdefault(saga_id, message)
        expected: dict[str, int] = {}
        for saga_id in missing:
            instance = self.known.take(saga_id)
            if instance is not None:
                instances[saga_id] = instance
                expected[saga_id] = instance.version
            elif not self.known.doubted(saga_id) and self.definition.starts(first[saga_id]):
                self.known.doubt(saga_id)
                expected[saga_id] = 0
        return expected

    def _remember(
        self,
        sagas: Mapping[str, _Saga[S]],
        written: Mapping[str, tuple[dict[str, Any], str]],
        fresh: Sequence[NewAction],
    ) -> None:
        """After the commit: the rows as this transaction left them (see :mod:`.instances`)."""
        sent: dict[str, set[str]] = {}
        for new in fresh:
            sent.setdefault(new.action.saga_id, set()).add(new.action.action_id)
        for saga_id, saga in sagas.items():
            before = saga.instance
            state_and_text = written.get(saga_id)
            if state_and_text is None:
                if before is not None:  # read (and locked) but not changed
                    self.known.remember(saga_id, before, running=True)
                continue
            state, text = state_and_text
            actions = before.actions if before is not None else frozenset()
            assert saga.status is not None
            row = Instance(
                key=saga.key,
                status=saga.status,
                state=state,
                version=saga.version + 1 if before is not None else 1,
                correlation_id=saga.correlation_id,
                actions=actions | sent.get(saga_id, set()),
            )
            running = saga.status in _UNFINISHED
            self.known.remember(saga_id, row, running=running, state_text=text)

    async def _apply_one(
        self,
        tx: Tx,
        saga_id: str,
        saga: _Saga[S],
        message: Message,
        now: float,
        lines: list[LogLine],
        sends: list[NewAction],
    ) -> None:
        definition, repository = self.definition, self.repository
        if saga.state is None:
            if saga.instance is None:
                if not definition.starts(message):
                    return
                saga.state = definition.initial_state()
                correlation = message.metadata.get("correlation_id") or message.id
                saga.correlation_id = str(correlation)
            else:
                saga.state = definition.load(saga.instance.state)
        before = saga.status
        transition = definition.handle(saga.state, message)
        saga.state = transition.state
        status = definition.status(saga.state)
        saga.step = definition.step(saga.state)
        saga.status = status.value
        saga.dirty = True
        partition = partition_of(saga_id, self.partitions)
        if status is SagaStatus.COMPENSATING and before != status.value:
            # Forward steps are no longer wanted: let the attempt in flight (if any) be their
            # last, so compensation waits for at most one step timeout, not every retry.
            await repository.cap_forward_attempts(tx, saga_id)
            for i, new in enumerate(sends):
                if new.action.saga_id == saga_id and not new.action.compensation:
                    sends[i] = new.capped()
        lines.append(
            LogLine(
                saga_id,
                "received",
                saga.step,
                message.type,
                message.id,
                {
                    "status": status.value,
                    **({"from": before} if before and before != status.value else {}),
                },
            )
        )
        # The steps continue the trace of what sent them: the event's, or (a step's answer)
        # the active step span's.
        parent = message.metadata.get("traceparent")
        traceparent = parent if isinstance(parent, str) else current_traceparent()
        for send in transition.sends:
            action_id = command_id_for(saga_id, send.step)
            action = Action(
                action_id=action_id,
                saga_id=saga_id,
                key=saga.key,
                correlation_id=saga.correlation_id,
                step=send.step,
                kind=send.kind,
                payload=dict(send.payload),
                compensation=send.compensation,
                attempts=0,
                max_attempts=(
                    self.policy.compensation_attempts if send.compensation else self.policy.attempts
                ),
                causation_id=message.id,
                traceparent=traceparent,
            )
            sends.append(NewAction(action, partition))
            lines.append(
                LogLine(
                    saga_id,
                    "sent",
                    send.step,
                    send.kind,
                    action_id,
                    {"payload": dict(send.payload), "compensation": send.compensation},
                )
            )
        if self.on_transition is not None and before != status.value:
            self.on_transition(definition.type, status)

    async def _write(
        self, tx: Tx, sagas: Mapping[str, _Saga[S]], now: float
    ) -> dict[str, tuple[dict[str, Any], str]]:
        """The changed sagas' rows, each kind in one batch, and their deadlines: set when a saga
        starts, cancelled when it stops running. Returns the states as written (and their JSON
        text, encoded once for the row and for what is remembered), by saga."""
        repository = self.repository
        written: dict[str, tuple[dict[str, Any], str]] = {}
        new: list[SagaRow] = []
        changed: list[SagaRow] = []
        deadlines_set: list[NewTimer] = []
        stopped: list[str] = []
        for saga_id, saga in sagas.items():
            if not saga.dirty:
                continue
            assert saga.state is not None
            assert saga.status is not None
            status = SagaStatus(saga.status)
            encoded = self.definition.dump(saga.state)
            text = state_json(encoded)
            written[saga_id] = (encoded, text)
            partition = partition_of(saga_id, self.partitions)
            row = SagaRow(
                saga_id,
                self.definition.type,
                saga.key,
                partition,
                status,
                saga.step,
                encoded,
                saga.correlation_id,
                1 if saga.instance is None else saga.version + 1,
                text,
            )
            if saga.instance is None:
                new.append(row)
                if status is SagaStatus.RUNNING:
                    due_at = now + self.policy.deadline
                    if self.on_timer is not None:
                        self.on_timer(due_at)
                    deadlines_set.append(
                        NewTimer(saga_id, partition, deadlines.DEADLINE, due_at, {})
                    )
                continue
            changed.append(row)
            was_running = saga.instance.status == SagaStatus.RUNNING.value
            if was_running and status is not SagaStatus.RUNNING:
                stopped.append(saga_id)
        await repository.insert_instances(tx, new, now)
        await repository.update_instances(tx, changed, now)
        await repository.schedule_timers(tx, deadlines_set)
        await repository.cancel_timers(tx, stopped, deadlines.DEADLINE)
        return written
