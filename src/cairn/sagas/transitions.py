"""Handling one input of a saga: load its state, ``definition.handle`` it, and record the new
state, the step-log lines, the commands to send and the deadline, inside the caller's
transaction, together with the record that the input was handled.

What marks an input as handled, in the same transaction, depends on where it came from:

* an event of ``$all``: the partition's checkpoint (:meth:`Transitions.apply_events`, one
  transaction per batch);
* a timer: its deleted row (:meth:`Transitions.fire_due_timer`);
* a step's answer (``StepFailed``, a compensation's ``StepSucceeded``): the step row
  (:mod:`.steps`); an operator's retry: the reset step rows (:mod:`.operators`).

So an input is never applied twice nor skipped, whatever instant a crash hits.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Generic, NamedTuple, TypeVar

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
from cairn.sagas.policy import StepPolicy
from cairn.sagas.repository import SagaRepository
from cairn.sql.checkpoints import save_checkpoint
from cairn.sql.database import Tx
from cairn.store.base import RecordedEvent

S = TypeVar("S")


class Routed(NamedTuple):
    """An event of ``$all`` for one saga."""

    saga_id: str
    key: str
    message: Message


def partition_of(saga_id: str, partitions: int) -> int:
    """The partition a saga belongs to (of ``partitions``); every worker must agree."""
    return uuid.UUID(saga_id).int % partitions


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
    ) -> None:
        self.definition = definition
        self.repository = repository
        self.policy = policy
        self.partitions = partitions
        self.on_transition = on_transition

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
        self, tx: Tx, routed: Sequence[Routed], checkpoint: str, position: int
    ) -> None:
        """Apply ``routed`` (:meth:`ours` of a batch), then save the batch's last ``position``
        as ``checkpoint``, all in ``tx``.

        One transaction per batch: every transition of the batch and the checkpoint after it
        commit together (all or nothing), so a crash re-reads the whole batch and nothing is
        applied twice."""
        for saga_id, key, message in routed:
            await self.apply(tx, saga_id, key, message)
        # Pipelined (PostgreSQL): the checkpoint needs no answer, so it rides along with the
        # COMMIT instead of costing a round trip of its own; an error still fails the commit.
        async with tx.pipelined():
            await save_checkpoint(tx, checkpoint, position)

    async def fire_due_timer(self, tx: Tx, partitions: list[int]) -> bool:
        """Deliver the next due timer of ``partitions`` to its saga in ``tx``, deleting its row
        there too (so it fires once); ``False`` when none is due."""
        repository = self.repository
        timer = await repository.claim_due_timer(tx, now=time.time(), partitions=partitions)
        if timer is None:
            return False
        key = await repository.find_key(tx, timer.saga_id)
        if key is None:
            return True
        await repository.append_log(
            tx,
            timer.saga_id,
            "timer",
            None,
            timer.kind,
            timer.timer_id,
            {"due_at": from_epoch(timer.due_at).isoformat()},
        )
        message_type = DEADLINE_EXPIRED if timer.kind == deadlines.DEADLINE else timer.kind
        await self.apply(
            tx,
            timer.saga_id,
            key,
            Message(id=timer.timer_id, type=message_type, data=timer.payload),
        )
        return True

    async def apply(self, tx: Tx, saga_id: str, key: str, message: Message) -> None:
        """Apply one message to one saga inside ``tx`` (the caller records the input as handled
        in the same transaction)."""
        definition, repository = self.definition, self.repository
        # Row lock (PostgreSQL): two transitions of one saga never interleave; the second waits
        # and then sees the first one's state.
        instance = await repository.lock_instance(tx, saga_id)
        now = time.time()
        if instance is None:
            if not definition.starts(message):
                return
            state = definition.initial_state()
            version = 0
            correlation = message.metadata.get("correlation_id") or message.id
            correlation_id: str | None = str(correlation)
            before = None
        else:
            state = definition.load(instance.state)
            version = instance.version
            correlation_id = instance.correlation_id
            before = instance.status
        transition = definition.handle(state, message)
        state, sends = transition.state, transition.sends
        status = definition.status(state)
        step = definition.step(state)
        partition = partition_of(saga_id, self.partitions)
        encoded = definition.dump(state)
        if instance is None:
            await repository.insert_instance(
                tx,
                saga_id=saga_id,
                saga_type=definition.type,
                key=key,
                partition=partition,
                status=status,
                step=step,
                state=encoded,
                correlation_id=correlation_id,
                now=now,
            )
            await repository.schedule_timer(
                tx,
                saga_id=saga_id,
                partition=partition,
                kind=deadlines.DEADLINE,
                due_at=now + self.policy.deadline,
                payload={},
            )
        else:
            await repository.update_instance(
                tx,
                saga_id=saga_id,
                status=status,
                step=step,
                state=encoded,
                version=version + 1,
                now=now,
            )
        if status is not SagaStatus.RUNNING:
            await repository.cancel_timer(tx, saga_id=saga_id, kind=deadlines.DEADLINE)
        if status is SagaStatus.COMPENSATING and before != status.value:
            # Forward steps are no longer wanted: let the attempt in flight (if any) be their
            # last, so compensation waits for at most one step timeout, not every retry.
            await repository.cap_forward_attempts(tx, saga_id)
        await repository.append_log(
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
        # The steps continue the trace of what sent them: the event's, or (a step's answer)
        # the active step span's.
        parent = message.metadata.get("traceparent")
        traceparent = parent if isinstance(parent, str) else current_traceparent()
        for send in sends:
            action_id = command_id_for(saga_id, send.step)
            await repository.insert_action(
                tx,
                action_id=action_id,
                saga_id=saga_id,
                key=key,
                correlation_id=correlation_id,
                partition=partition,
                send=send,
                max_attempts=(
                    self.policy.compensation_attempts if send.compensation else self.policy.attempts
                ),
                causation_id=message.id,
                now=now,
                traceparent=traceparent,
            )
            await repository.append_log(
                tx,
                saga_id,
                "sent",
                send.step,
                send.kind,
                action_id,
                {"payload": dict(send.payload), "compensation": send.compensation},
            )
        if self.on_transition is not None and before != status.value:
            self.on_transition(definition.type, status)
