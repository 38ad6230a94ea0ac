"""The command pipeline: each middleware wraps the next, the handler is the innermost step.

Default order (outermost first), and why:

    tracing → correlation → logging → metrics → validation → authorisation → retry
    → idempotency → handler

Tracing opens the command's span first, so the trace context correlation records is the
command's. Correlation fills the ids every event (and every log line) carries; validation and
authorisation refuse before anything is read; retry re-runs idempotency + handler on
ConcurrencyError (a fresh load each time),
and idempotency sits inside the retry so that a concurrent duplicate delivery that lost the race
finds the winner's events on its retry and returns them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog.contextvars

from cairn.application.messages import CommandContext, CommandResult, Envelope, event_id_for
from cairn.application.validation import check_command
from cairn.backoff import Backoff
from cairn.errors import (
    ApplicationError,
    CairnError,
    ConcurrencyError,
    ConflictError,
    DomainError,
    InvalidEventError,
    PermissionDeniedError,
)
from cairn.observability.logging import get_logger, logs_at
from cairn.observability.tracing import current_traceparent, span
from cairn.store.base import EventStore

Next = Callable[[Envelope], Awaitable[CommandResult]]

#: Upper bound of the events one command writes (CreateOrder: 1 + up to 100 items).
MAX_COMMAND_EVENTS = 500

_log = get_logger("cairn.commands")


class Middleware(Protocol):
    async def __call__(self, envelope: Envelope, call_next: Next) -> CommandResult: ...


# --- logging and metrics ---------------------------------------------------------------------


def outcome_of(error: BaseException | None) -> str:
    """``ok`` · ``rejected`` (domain rule) · ``invalid`` (validation / auth) · ``conflict`` ·
    ``error`` (anything else)."""
    if error is None:
        return "ok"
    if isinstance(error, DomainError):
        return "rejected"
    if isinstance(error, ConcurrencyError):
        return "conflict"
    if isinstance(error, ApplicationError):
        return "invalid"
    return "error"


class LoggingMiddleware:
    """One structured log line per command, with its ids, outcome and duration; the ids are
    bound to structlog's context while the command runs, so every nested log line has them."""

    async def __call__(self, envelope: Envelope, call_next: Next) -> CommandResult:
        ctx = envelope.context
        # Bound and reset by token (structlog's ``bound_contextvars`` costs 3x as much).
        tokens = structlog.contextvars.bind_contextvars(
            command_id=ctx.command_id, correlation_id=ctx.correlation_id
        )
        try:
            return await self._logged(envelope, call_next)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    async def _logged(self, envelope: Envelope, call_next: Next) -> CommandResult:
        started = time.perf_counter()
        try:
            result = await call_next(envelope)
        except BaseException as exc:
            ctx = envelope.context
            level = "warning" if isinstance(exc, CairnError) else "error"
            getattr(_log, level)(
                "command_failed",
                command=envelope.command_type,
                stream_id=envelope.stream_id,
                command_id=ctx.command_id,
                correlation_id=ctx.correlation_id,
                outcome=outcome_of(exc),
                code=getattr(exc, "code", type(exc).__name__),
                error=str(exc),
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            raise
        if not logs_at(logging.DEBUG):
            return result
        _log.debug(
            "command_handled",
            command=envelope.command_type,
            stream_id=result.stream_id,
            version=result.version,
            position=result.position,
            events=len(result.events),
            replayed=result.replayed,
            command_id=result.command_id,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return result


#: ``hook(command_type, outcome, seconds)``; the API wires this to Prometheus.
MetricHook = Callable[[str, str, float], None]


class MetricsMiddleware:
    """Calls every hook with the command type, outcome and duration. A failing hook is logged,
    never allowed to fail the command."""

    def __init__(self, hooks: Sequence[MetricHook] = ()) -> None:
        self.hooks: list[MetricHook] = list(hooks)

    def add(self, hook: MetricHook) -> None:
        self.hooks.append(hook)

    async def __call__(self, envelope: Envelope, call_next: Next) -> CommandResult:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            result = await call_next(envelope)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            outcome = outcome_of(error)
            if error is None and result.replayed:
                outcome = "replayed"
            elapsed = time.perf_counter() - started
            for hook in self.hooks:
                try:
                    hook(envelope.command_type, outcome, elapsed)
                except Exception as exc:  # a metrics bug must not refuse commands
                    _log.warning("metric_hook_failed", error=repr(exc))


# --- refusals before any I/O -----------------------------------------------------------------


class ValidationMiddleware:
    """Field types (``command.invalid``), then the domain's stateless rules."""

    async def __call__(self, envelope: Envelope, call_next: Next) -> CommandResult:
        check_command(envelope.command)
        envelope.route.validate(envelope.command)
        return await call_next(envelope)


#: ``authorize(command, context)`` → allowed? May be async; may raise its own error.
Authorize = Callable[[Any, CommandContext], bool | Awaitable[bool]]


class AuthorizationMiddleware:
    def __init__(self, authorize: Authorize) -> None:
        self.authorize = authorize

    async def __call__(self, envelope: Envelope, call_next: Next) -> CommandResult:
        allowed = self.authorize(envelope.command, envelope.context)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        if not allowed:
            raise PermissionDeniedError(
                f"{envelope.context.user or 'anonymous'} may not {envelope.command_type}"
            )
        return await call_next(envelope)


# --- ids -------------------------------------------------------------------------------------


class TracingMiddleware:
    """A span per command (``command PlaceOrder``), a child of the active span (the HTTP
    request's, a saga step's), so the append and the events' ``traceparent`` hang under it."""

    async def __call__(self, envelope: Envelope, call_next: Next) -> CommandResult:
        with span(
            f"command {envelope.command_type}",
            attributes={"cairn.command.type": envelope.command_type},
        ) as current:
            if current.is_recording():
                current.set_attribute("cairn.stream_id", envelope.stream_id)
            return await call_next(envelope)


class CorrelationMiddleware:
    """Fills the command id (made up when missing), correlation and causation ids (default: the
    command id) and the active trace context into the context every event's metadata comes from.
    """

    async def __call__(self, envelope: Envelope, call_next: Next) -> CommandResult:
        ctx = envelope.context
        given = ctx.command_id is not None and ctx.command_id_given
        command_id = ctx.command_id if ctx.command_id is not None else str(uuid.uuid4())
        ctx = ctx.with_(
            command_id=command_id,
            command_id_given=given,
            correlation_id=ctx.correlation_id or command_id,
            causation_id=ctx.causation_id or command_id,
            traceparent=ctx.traceparent or current_traceparent(),
        )
        return await call_next(envelope.with_context(ctx))


# --- concurrency -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retry with exponential backoff and full jitter."""

    attempts: int = 10
    base_delay: float = 0.002
    max_delay: float = 0.1

    def delay(self, attempt: int) -> float:
        # ``base_delay * 2 ** attempt``: the first retry already waits up to twice the base.
        backoff = Backoff(initial=self.base_delay * 2, maximum=self.max_delay, full_jitter=True)
        return backoff.delay(attempt)


class RetryMiddleware:
    """Re-runs the rest of the pipeline (a fresh load, a fresh decision) when another writer got
    to the stream first. A caller's own precondition (``expected_version``) is never retried:
    its conflict is the answer."""

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()

    async def __call__(self, envelope: Envelope, call_next: Next) -> CommandResult:
        attempt = 0
        while True:
            try:
                return await call_next(envelope)
            except ConcurrencyError as conflict:
                attempt += 1
                if envelope.context.expected_version is not None:
                    raise
                if attempt >= self.policy.attempts:
                    _log.warning(
                        "command_conflict_gave_up",
                        command=envelope.command_type,
                        stream_id=conflict.stream_id,
                        attempts=attempt,
                    )
                    raise
                await asyncio.sleep(self.policy.delay(attempt))


class IdempotencyMiddleware:
    """A command id already handled gets its first result back, with no further effect, even
    after a restart: the command's events have deterministic ids (``uuid5(command id, i)``), so
    finding the first one in the store means the command was handled. The race of two
    concurrent deliveries is settled by the store's idempotent append (same ids, same
    versions), or, when the loser's append fails (conflict, or ids stored elsewhere), by
    looking the winner's events up."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, envelope: Envelope, call_next: Next) -> CommandResult:
        ctx = envelope.context
        if ctx.command_id is None or not ctx.command_id_given:
            return await call_next(envelope)
        # The check (one indexed read) runs while the handler loads the aggregate; the handler
        # awaits it before deciding, so a redelivered command still decides and writes nothing.
        check = asyncio.ensure_future(self.replay(ctx.command_id, envelope.stream_id))
        try:
            return await call_next(replace(envelope, replay=check))
        except (ConcurrencyError, InvalidEventError):
            # A concurrent delivery of the same command may have won the race: its events (our
            # ids) are stored, at versions we did not expect. Then its result is the answer.
            replay = await self.replay(ctx.command_id, envelope.stream_id)
            if replay is not None:
                return replay
            raise
        finally:
            if not check.done():
                check.cancel()
            elif not check.cancelled():
                check.exception()  # retrieved: an error already surfaced through the handler

    async def replay(self, command_id: str, stream_id: str) -> CommandResult | None:
        first = await self.store.read_event(event_id_for(command_id, 0))
        if first is None:
            return None
        if first.stream_id != stream_id:
            raise ConflictError(
                "command.id_reused",
                f"command id {command_id} was already used for a command on {first.stream_id}",
            )
        # A command writes at most a few hundred events (an order of 100 lines); read no more.
        following = await self.store.read_stream(
            stream_id, from_version=first.version, to_version=first.version + MAX_COMMAND_EVENTS
        )
        events = []
        for index, event in enumerate(following):
            if event.id != event_id_for(command_id, index):
                break
            events.append(event)
        if not events:  # the stream is hidden now (soft-deleted): the first event still tells
            events = [first]
        last = events[-1]
        return CommandResult(
            stream_id, last.version, last.position, events, command_id, replayed=True
        )


def default_middleware(
    store: EventStore,
    *,
    authorize: Authorize | None = None,
    metric_hooks: Sequence[MetricHook] = (),
    retry: RetryPolicy | None = None,
) -> list[Middleware]:
    """The standard pipeline (see the module docstring for the order)."""
    chain: list[Middleware] = [
        TracingMiddleware(),
        CorrelationMiddleware(),
        LoggingMiddleware(),
        MetricsMiddleware(metric_hooks),
        ValidationMiddleware(),
    ]
    if authorize is not None:
        chain.append(AuthorizationMiddleware(authorize))
    chain += [RetryMiddleware(retry), IdempotencyMiddleware(store)]
    return chain
