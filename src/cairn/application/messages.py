"""What travels through the command bus: the acting context, the envelope and the result."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cairn.store.base import RecordedEvent
from cairn.uuids import uuid5

if TYPE_CHECKING:
    from cairn.application.handlers import Route

#: Namespace turning a non-UUID command id into a UUID (uuid5): never change it.
COMMAND_NAMESPACE = uuid.UUID("5d1f8f4e-0f7b-4c53-9d64-3f1f0f0a6a21")


def command_uuid(command_id: str) -> uuid.UUID:
    """The UUID of a command id: itself if it is one, else uuid5 of the string."""
    try:
        return uuid.UUID(command_id)
    except ValueError:
        return uuid.uuid5(COMMAND_NAMESPACE, command_id)


@lru_cache(maxsize=1024)
def _command_space(command_id: str) -> uuid.UUID:
    return command_uuid(command_id)


def event_id_for(command_id: str, index: int | str) -> uuid.UUID:
    """The id of the ``index``-th event a command writes: ``uuid5(command uuid, str(index))``.
    Deterministic, so re-delivering a command finds (and the store recognises) what it wrote."""
    return uuid5(_command_space(command_id), str(index))


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Who acts, on whose behalf, under which ids. Every field is optional.

    ``command_id``: re-delivering a command with the same id has no further effect (the first
    result is returned); the bus makes one up when it is missing (then nothing de-duplicates).
    ``correlation_id`` / ``causation_id`` default to the command id. ``expected_version`` is a
    caller's optimistic-concurrency precondition (HTTP ``If-Match``): a mismatch raises
    ConcurrencyError at once, without retrying. ``metadata`` keys are copied into every event.
    """

    command_id: str | None = None
    user: str | None = None
    roles: frozenset[str] = frozenset()
    correlation_id: str | None = None
    causation_id: str | None = None
    expected_version: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Set by the correlation middleware: the W3C trace context active when dispatching.
    traceparent: str | None = None
    #: False when the bus made the command id up (nothing to de-duplicate against).
    command_id_given: bool = True
    #: The caller has just minted the target stream's id (a fresh UUID), so the stream cannot
    #: exist yet: the handler decides on the initial state without reading the store. The
    #: append (expected version 0) still proves it; if the stream exists after all, the
    #: command runs again on the loaded state, as after any conflict.
    new_stream: bool = False

    def with_(self, **changes: Any) -> CommandContext:
        return replace(self, **changes)

    def event_ids(self, count: int) -> list[uuid.UUID]:
        if self.command_id is None:
            return [uuid.uuid4() for _ in range(count)]
        return [event_id_for(self.command_id, i) for i in range(count)]

    def event_metadata(self, command_type: str) -> dict[str, Any]:
        """The metadata every event of this command carries."""
        meta: dict[str, Any] = dict(self.metadata)
        meta["command_id"] = self.command_id
        meta["command_type"] = command_type
        meta["correlation_id"] = self.correlation_id or self.command_id
        meta["causation_id"] = self.causation_id or self.command_id
        if self.user is not None:
            meta["user"] = self.user
        if self.traceparent is not None:
            meta["traceparent"] = self.traceparent
        return meta


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Where a command left its stream: ``version`` and ``position`` (of its last event, or of
    the stream's last event when the command changed nothing), and the events it wrote."""

    stream_id: str
    version: int
    position: int
    events: list[RecordedEvent]
    command_id: str | None = None
    #: True when this is the stored result of an earlier delivery of the same command id.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Envelope:
    """A command on its way through the middleware, with its route and target stream."""

    command: Any
    context: CommandContext
    route: Route
    stream_id: str
    #: The idempotency check, running while the handler loads: the handler awaits it before
    #: deciding and returns its result instead when the command was already handled.
    replay: asyncio.Future[CommandResult | None] | None = None

    @property
    def command_type(self) -> str:
        return type(self.command).__name__

    def with_context(self, context: CommandContext) -> Envelope:
        return replace(self, context=context)

    def with_command(self, command: Any) -> Envelope:
        return replace(self, command=command)
