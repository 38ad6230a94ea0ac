"""The one command handler: load → decide → append with the loaded version as
``expected_version``. Handlers never decide; a route may fetch facts the decider needs (an
application's catalogue prices, an order number) and hand them over on the command.

An application supplies the routing table (command type → :class:`Route`) and its
repositories; the toolkit knows neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cairn.application.messages import CommandResult, Envelope
from cairn.application.repository import Loaded, Repositories, Repository
from cairn.application.stream_locks import StreamLocks
from cairn.errors import ConcurrencyError, DomainError
from cairn.store.base import EventStore


@dataclass(frozen=True, slots=True)
class Services:
    """What handlers may use besides the target aggregate's repository."""

    store: EventStore
    repositories: Repositories
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    locks: StreamLocks = field(default_factory=StreamLocks)


Prepare = Callable[[Any, Any, Services, Envelope], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """How the bus reaches the aggregate a command targets."""

    #: The stream category of the aggregate (its repository is found by it).
    category: str
    stream_id: Callable[[Any], str]
    #: Stateless domain rules, checked by the validation middleware before anything is loaded.
    validate: Callable[[Any], None]
    #: Looks up what the decider needs (given the loaded state) and returns the full command.
    prepare: Prepare | None = None


class _Unproven(Exception):
    """An outcome a cached, unverified state cannot prove (a refusal or a no-op)."""


async def handle(envelope: Envelope, services: Services) -> CommandResult:
    """Load → decide → append(expected_version). The terminal step of the bus pipeline.

    Fast path: when the repository holds a cached state of the stream, or the caller has just
    minted the stream's id (``context.new_stream``: its state is the initial one), decide on
    it without asking the store first. Only an append can prove a decision, and the append's
    expected version does: if another writer got there first, nothing is written and the
    command runs again on the caught-up state. A refusal or a no-op decided on the cached
    state is not trusted either: the command runs again on the verified state before answering.

    Commands on one stream take turns inside this process (``services.locks``), so the next
    one decides on the state the previous one saved instead of losing the race to it.
    """
    async with services.locks.hold(envelope.stream_id):
        return await _handle(envelope, services)


async def _handle(envelope: Envelope, services: Services) -> CommandResult:
    repository = services.repositories.for_category(envelope.route.category)
    cached = repository.peek(envelope.stream_id)
    if cached is None and envelope.context.new_stream:
        initial = repository.aggregate.decider.initial_state()
        cached = Loaded(envelope.stream_id, initial, 0, 0)
    if cached is not None and (cached.version > 0 or envelope.context.new_stream):
        try:
            return await _run(envelope, services, repository, cached, trusted=True)
        except _Unproven:
            pass
        except ConcurrencyError:
            if envelope.context.expected_version is not None:
                raise  # the caller's own precondition failed: that is the answer
    loaded = await repository.load(envelope.stream_id)
    return await _run(envelope, services, repository, loaded, trusted=False)


async def _run(
    envelope: Envelope,
    services: Services,
    repository: Repository[Any, Any, Any],
    loaded: Loaded[Any],
    *,
    trusted: bool,
) -> CommandResult:
    route, context = envelope.route, envelope.context
    if envelope.replay is not None:
        replayed = await envelope.replay
        if replayed is not None:
            return replayed
    if context.expected_version is not None and loaded.version != context.expected_version:
        if trusted:
            raise _Unproven
        raise ConcurrencyError(envelope.stream_id, context.expected_version, loaded.version)
    command = envelope.command
    if route.prepare is not None:
        command = await route.prepare(command, loaded.state, services, envelope)
    try:
        events = repository.aggregate.decider.decide(command, loaded.state)
    except DomainError:
        if trusted:
            raise _Unproven from None
        raise
    if not events:
        if trusted:
            raise _Unproven
        return CommandResult(
            envelope.stream_id, loaded.version, loaded.position, [], context.command_id
        )
    saved = await repository.save(
        loaded,
        events,
        event_ids=context.event_ids(len(events)),
        metadata=context.event_metadata(envelope.command_type),
    )
    result = saved.result
    # The append answers the events as recorded (the original ones on an idempotent retry).
    return CommandResult(
        envelope.stream_id, result.version, result.position, list(result.events), context.command_id
    )
