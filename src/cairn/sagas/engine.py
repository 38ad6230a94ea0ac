"""The generic saga engine's vocabulary: messages in, commands out, a definition in between.

A saga is a workflow (Emmett's shape): a pure ``handle(state, message) -> Transition`` over an
explicit state machine, whose result holds both halves of Emmett's pair — the commands to send
(``decide``) and the next state (``evolve``) — so each message is worked out once. The runner
(:mod:`cairn.sagas.runner`) feeds it messages — events from ``$all`` and the engine's own
``StepFailed`` (a step failed for good), ``StepSucceeded`` (a *compensation* step succeeded; a
forward step's success reaches the saga as the event its command recorded), ``DeadlineExpired``
and ``RetryRequested`` — and records the input, the new state
and the outgoing commands in one transaction. :func:`engine_message` reads the engine's own
messages as typed values (:data:`EngineMessage`), so a definition can ``match`` on them.

Each :class:`Send` names a ``step`` unique within its saga; the command id is
``uuid5(saga_id, step)``, so a re-send after a crash carries the same id and the command side's
idempotency (and the adapters' idempotency keys) make it harmless.
"""

from __future__ import annotations

import enum
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar, Final, Generic, TypeAlias, TypeVar

from cairn.store.base import RecordedEvent
from cairn.uuids import uuid5_text

#: Namespace of every saga id (``uuid5(SAGA_NAMESPACE, f"{type}:{key}")``).
SAGA_NAMESPACE: Final = uuid.UUID("8f6f3c1e-4a59-5c0b-9d1e-2b7f3f0c9a61")

#: Messages the engine itself delivers to a saga.
STEP_SUCCEEDED: Final = "StepSucceeded"
STEP_FAILED: Final = "StepFailed"
DEADLINE_EXPIRED: Final = "DeadlineExpired"
RETRY_REQUESTED: Final = "RetryRequested"


class SagaStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    COMPENSATING = "compensating"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


#: Statuses in which a saga has nothing left to do on its own (a later event may reopen it,
#: e.g. a cancellation after the saga completed).
RESTING: Final = frozenset({SagaStatus.COMPLETED, SagaStatus.TIMED_OUT})


@dataclass(frozen=True, slots=True)
class Message:
    """One input of a saga: a stored event, or a message from the engine."""

    id: str
    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    position: int | None = None

    @classmethod
    def from_event(cls, event: RecordedEvent) -> Message:
        return cls(
            id=str(event.id),
            type=event.type,
            data=event.data,
            metadata=event.metadata,
            position=event.position,
        )


@dataclass(frozen=True, slots=True)
class Send:
    """A command the saga wants sent. ``kind`` selects the effect that runs it; ``step`` is
    unique within the saga and derives the command id."""

    step: str
    kind: str
    payload: Mapping[str, Any]
    compensation: bool = False


@dataclass(frozen=True, slots=True)
class StepSucceeded:
    """A compensation step's effect returned. (A forward step's success reaches the saga as the
    event its command recorded, which says more than "it worked".)"""

    step: str
    compensation: bool


@dataclass(frozen=True, slots=True)
class StepFailed:
    """A step failed for good: a permanent error, or its last attempt failed or timed out."""

    step: str
    error: str
    compensation: bool


@dataclass(frozen=True, slots=True)
class DeadlineExpired:
    """The saga's own deadline fired (it may be stale: the saga may have finished since)."""


@dataclass(frozen=True, slots=True)
class RetryRequested:
    """An operator asked a ``failed`` saga to try its compensation again."""


#: The messages the engine itself delivers, decoded.
EngineMessage: TypeAlias = StepSucceeded | StepFailed | DeadlineExpired | RetryRequested


def engine_message(message: Message) -> EngineMessage | None:
    """The engine's own message ``message`` holds, or ``None`` for anything else (an event).

    Lenient on purpose, as the saga state machines were before they were typed: a missing field
    reads as ``"None"`` / ``False`` rather than failing a transition (the runner writes every
    field, so this only matters for hand-made messages)."""
    d = message.data
    if message.type == STEP_SUCCEEDED:
        return StepSucceeded(step=str(d.get("step")), compensation=bool(d.get("compensation")))
    if message.type == STEP_FAILED:
        return StepFailed(
            step=str(d.get("step")),
            error=str(d.get("error")),
            compensation=bool(d.get("compensation")),
        )
    if message.type == DEADLINE_EXPIRED:
        return DeadlineExpired()
    if message.type == RETRY_REQUESTED:
        return RetryRequested()
    return None


@lru_cache(maxsize=4096)
def saga_id_for(saga_type: str, key: str) -> str:
    """Asked again for every event routed to the saga: kept while the saga is in use."""
    return uuid5_text(SAGA_NAMESPACE, f"{saga_type}:{key}")


def command_id_for(saga_id: str, step: str) -> str:
    """The deterministic id of the command a saga sends for ``step``."""
    return uuid5_text(saga_id, step)


S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Transition(Generic[S]):
    """What one message does to a saga: its next state and the commands to send, computed
    together so the runner records exactly the pair the workflow decided."""

    state: S
    sends: tuple[Send, ...] = ()


class SagaDefinition(ABC, Generic[S]):
    """One kind of saga. Everything here is pure: no I/O, no clock, no random ids."""

    type: ClassVar[str]
    #: What the application calls a saga's key (the entity it runs for) where it shows a saga:
    #: the field of :meth:`SagaRecord.to_dict` that holds it.
    key_field: ClassVar[str] = "key"

    @abstractmethod
    def route(self, message: Message) -> str | None:
        """The key (the id of the entity the saga runs for) of the saga this event concerns,
        or ``None``."""

    @abstractmethod
    def starts(self, message: Message) -> bool:
        """Whether this message starts a new saga when none exists for its key."""

    @abstractmethod
    def initial_state(self) -> S: ...

    @abstractmethod
    def handle(self, state: S, message: Message) -> Transition[S]:
        """The state after ``message`` and the commands to send in reaction to it, in one pass
        (a message the saga does not care about leaves ``state`` as it is and sends nothing)."""

    @abstractmethod
    def status(self, state: S) -> SagaStatus: ...

    @abstractmethod
    def step(self, state: S) -> str:
        """A short human name of where the saga is (``authorize_payment``, ``done``…)."""

    @abstractmethod
    def dump(self, state: S) -> dict[str, Any]:
        """State → JSON object (persisted)."""

    @abstractmethod
    def load(self, data: Mapping[str, Any]) -> S:
        """JSON object → state."""


@dataclass(frozen=True, slots=True)
class StepContext:
    """What an effect gets to run one command of a saga."""

    saga_id: str
    saga_type: str
    key: str
    step: str
    kind: str
    payload: Mapping[str, Any]
    #: ``uuid5(saga_id, step)``: the command id and the adapters' idempotency key.
    command_id: str
    attempt: int
    correlation_id: str | None
    causation_id: str | None
    compensation: bool
    #: No run of this step can have happened before: it is the worker that sent it running it
    #: right after sending. A command it sends has no earlier delivery to be recognised (its
    #: events' deterministic ids still make the store refuse a duplicate), so the command
    #: side may skip looking for one. False for every re-run, retry and take-over.
    first_run: bool = False


#: Runs one command. Returns normally on success; raises ``TransientAdapterError`` (or times
#: out) to be retried; raises any other ``CairnError`` to fail the step at once.
Effect = Callable[[StepContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SagaRecord:
    """A saga as operators see it. ``key_field`` names the key in :meth:`to_dict` (its
    definition's :attr:`SagaDefinition.key_field`)."""

    saga_id: str
    type: str
    key: str
    status: SagaStatus
    step: str
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    key_field: str = "key"

    def to_dict(self) -> dict[str, Any]:
        return {
            "saga_id": self.saga_id,
            "type": self.type,
            self.key_field: self.key,
            "status": self.status.value,
            "step": self.step,
            "data": self.data,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class StepLogEntry:
    """One line of a saga's history: a message received, a command sent, an answer, an error."""

    at: datetime
    #: ``received``, ``sent``, ``succeeded``, ``retrying``, ``failed``, ``timer``, ``retry``.
    kind: str
    step: str | None
    message_type: str | None
    message_id: str | None
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "step": self.step,
            "message_type": self.message_type,
            "message_id": self.message_id,
            "detail": self.detail,
        }


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
