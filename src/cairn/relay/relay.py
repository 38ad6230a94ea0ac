"""The relay: ``$all`` → broker, at least once, in position order (SPEC §6).

The store is the outbox. The relay reads ``$all`` after its own checkpoint, publishes each batch
(pipelined) and saves the checkpoint only once the broker has confirmed the batch, so a crash or
an outage at any point re-publishes at most the unconfirmed tail, and never skips an event::

    acquire lease ─▶ load checkpoint ─▶ read batch ─▶ publish + await confirms
          ▲                                 ▲                 │
          │                                 └─ save checkpoint ◀┘  (only if the lease is held)
          └──────── back off 0.1 s → 5 s, reconnect ◀── any error

The broker is called through a circuit breaker (:mod:`cairn.breakers`): connecting and sending
are bounded in time, so an unreachable broker shows as ``backing_off`` with its last error
within seconds (not after the client library's own retries), and while the breaker is open the
relay fails fast instead of reconnecting on every back-off. Each state change is logged once.

One publisher at a time: the relay holds ``lease_for(database_url, "relay")`` and checks it is
still held before every checkpoint write, so a worker that lost its lease stops instead of
writing beside the new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from opentelemetry.trace import Span, SpanKind

from cairn.backoff import Backoff
from cairn.breakers import Breaker, Breakers
from cairn.errors import LeaseLostError, PublishError
from cairn.leases import Lease
from cairn.observability.logging import get_logger
from cairn.observability.tracing import batch_span
from cairn.relay.brokers import Publisher
from cairn.relay.checkpoints import CheckpointStore
from cairn.relay.cloudevents import OutgoingMessage
from cairn.store.base import EventStore, RecordedEvent

log = get_logger("cairn.relay")

#: ``standby``: another worker holds the relay lease; this one waits to take over.
RelayState = Literal["running", "backing_off", "standby", "stopped"]

DEFAULT_BATCH_SIZE: Final = 1000

#: ``messaging.system`` of each publisher kind (OpenTelemetry messaging conventions).
_MESSAGING_SYSTEMS: Final = {"nats": "nats", "amqp": "rabbitmq", "redis": "redis"}


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """What ``/api/v1/admin/health`` and ``/metrics`` show about the relay."""

    state: RelayState
    #: Published (and confirmed) up to this ``$all`` position.
    position: int
    #: Events in ``$all`` after ``position``.
    lag_events: int
    #: Age of the oldest unpublished event (0 when caught up).
    lag_seconds: float
    last_error: str | None
    broker: str
    topic: str
    #: Events confirmed by the broker since this relay started.
    published: int
    #: Whether this process holds the relay lease.
    owner: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Relay:
    """Publishes the store's ``$all`` log to one broker. Build it with :func:`build_relay`."""

    def __init__(
        self,
        store: EventStore,
        publisher: Publisher,
        checkpoints: CheckpointStore,
        lease: Lease,
        *,
        name: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        lease_retry: float = 1.0,
        idle_wait: float = 1.0,
        pipeline_depth: int = 2,
        breaker: Breaker | None = None,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.checkpoints = checkpoints
        self.lease = lease
        self.name = name or f"{publisher.kind}:{publisher.topic}"
        self.batch_size = batch_size
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.lease_retry = lease_retry
        self.idle_wait = idle_wait
        self.pipeline_depth = max(1, pipeline_depth)
        self.breaker = breaker or Breakers().get("broker")
        self._state: RelayState = "stopped"
        self._position = 0
        self._published = 0
        self._last_error: str | None = None
        self._connected = False
        self._closed = False
        self._backoff = Backoff(initial=backoff_initial, maximum=backoff_max)
        self._failures = 0  # in a row; the next delay grows with it
        self._run_task: asyncio.Task[None] | None = None

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish forever: catch up, follow the log, survive outages. Cancel (or
        :meth:`close`) to stop."""
        self._run_task = asyncio.current_task()
        try:
            while not self._closed:
                try:
                    await self._become_owner()
                    if not self._connected:
                        await self.breaker.call(self.publisher.connect)
                        self._connected = True
                    self._set_state("running")
                    await self._pump()
                except asyncio.CancelledError:
                    raise
                except LeaseLostError as exc:
                    self._note_error(exc)
                    log.warning("relay %s: %s", self.name, self._last_error)
                    await self._disconnect()
                    await self.lease.release()
                except Exception as exc:
                    self._note_error(exc)
                    self._set_state("backing_off")
                    await self._disconnect()
                    self._failures += 1
                    await asyncio.sleep(self._backoff.delay(self._failures))
        finally:
            self._set_state("stopped")
            await self._disconnect()
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def _become_owner(self) -> None:
        if self.lease.held and await self.lease.still_held():
            return
        while not await self.lease.try_acquire():
            self._set_state("standby")
            await asyncio.sleep(self.lease_retry)
        # Load after taking the lease: the previous owner may have moved it until it died.
        self._position = await self.checkpoints.load(self.name)
        log.info("relay %s owns the lease; resuming after position %d", self.name, self._position)

    async def _pump(self) -> None:
        # Up to ``pipeline_depth`` batches are in flight: the next batch is read, encoded and
        # written while the broker confirms the previous one. Confirmations are settled (and the
        # checkpoint saved) strictly oldest first, so it still never passes an unconfirmed event.
        inflight: deque[tuple[asyncio.Future[None], list[RecordedEvent]]] = deque()
        read_after = self._position
        try:
            while not self._closed:
                batch: list[RecordedEvent] = []
                if len(inflight) < self.pipeline_depth:
                    batch = await self.store.read_all(after=read_after, limit=self.batch_size)
                if batch:
                    messages = [OutgoingMessage.from_event(event) for event in batch]
                    try:
                        with self._publish_span(batch):
                            confirmation = await self.breaker.call(
                                functools.partial(self.publisher.send, messages)
                            )
                    except PublishError as exc:
                        while inflight:
                            await self._settle_oldest(inflight)
                        if exc.confirmed:
                            await self._save(batch[exc.confirmed - 1].position, exc.confirmed)
                        raise
                    inflight.append((confirmation, batch))
                    read_after = batch[-1].position
                    # Already confirmed (Redis replies are the confirmation): save it now, so a
                    # crash re-publishes as little as possible.
                    while inflight and inflight[0][0].done():
                        await self._settle_oldest(inflight)
                elif inflight:
                    await self._settle_oldest(inflight)
                else:
                    self._set_state("running")
                    await self.store.wait_for_append(self._position, timeout=self.idle_wait)
        finally:
            for confirmation, _ in inflight:
                confirmation.cancel()
                if confirmation.done() and not confirmation.cancelled():
                    confirmation.exception()  # retrieved: superseded by the error being raised

    def _publish_span(self, batch: list[RecordedEvent]) -> AbstractContextManager[Span]:
        """``publish <topic>`` (a producer span, messaging conventions) around handing a batch
        to the broker, in the trace of its events (links when it spans several). The messages
        keep each event's own ``traceparent`` in their headers and CloudEvent."""
        publisher = self.publisher
        attributes: dict[str, str | int] = {
            "messaging.system": _MESSAGING_SYSTEMS.get(publisher.kind, publisher.kind),
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "messaging.destination.name": publisher.topic,
            "messaging.batch.message_count": len(batch),
        }
        if len(batch) == 1:
            attributes["messaging.message.id"] = str(batch[0].id)
        return batch_span(
            f"publish {publisher.topic}",
            (event.metadata for event in batch),
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )

    async def _settle_oldest(
        self, inflight: deque[tuple[asyncio.Future[None], list[RecordedEvent]]]
    ) -> None:
        confirmation, batch = inflight.popleft()
        try:
            await confirmation
        except PublishError as exc:
            if exc.confirmed:
                await self._save(batch[exc.confirmed - 1].position, exc.confirmed)
            raise
        await self._save(batch[-1].position, len(batch))
        self._set_state("running")

    async def _save(self, position: int, count: int) -> None:
        # The broker has these events whatever happens next; but the checkpoint row is the
        # owner's alone. Writing it after losing the lease could move it backwards under the new
        # owner (or forwards past what the new owner has not yet confirmed).
        if not await self.lease.still_held():
            raise LeaseLostError("relay lease lost; another worker publishes now")
        await self.checkpoints.save(self.name, position)
        self._position = position
        self._published += count
        self._failures = 0

    def _note_error(self, exc: BaseException) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}"

    def _set_state(self, state: RelayState) -> None:
        """Move to ``state``, with one log line when it is a change (not one per retry)."""
        if state == self._state:
            return
        previous, self._state = self._state, state
        if state == "backing_off":
            log.warning("relay %s: %s -> backing_off: %s", self.name, previous, self._last_error)
        else:
            log.info("relay %s: %s -> %s", self.name, previous, state)

    async def _disconnect(self) -> None:
        self._connected = False
        with contextlib.suppress(Exception):
            await self.publisher.close()

    # -- observing ----------------------------------------------------------------------------

    @property
    def state(self) -> RelayState:
        return self._state

    @property
    def position(self) -> int:
        """Confirmed up to here (as far as this process knows)."""
        return self._position

    async def status(self) -> RelayStatus:
        """Current state and lag. Lag is measured against the store; if the store cannot be
        read, the lag fields are 0 and ``last_error`` says why. A relay that does not own the
        lease (standing by, or built and never run in this process) shows the owner's position:
        the durable checkpoint."""
        lag_events = 0
        lag_seconds = 0.0
        last_error = self._last_error
        position = self._position
        if not self.lease.held and self._state in ("standby", "stopped"):
            with contextlib.suppress(Exception):
                position = await self.checkpoints.load(self.name)
        try:
            head = await self.store.head_position()
            lag_events = max(head - position, 0)
            if lag_events:
                oldest = await self.store.read_all(after=position, limit=1)
                if oldest:
                    age = datetime.now(UTC) - oldest[0].recorded_at
                    lag_seconds = max(age.total_seconds(), 0.0)
        except Exception as exc:
            last_error = f"status: {type(exc).__name__}: {exc}"
        return RelayStatus(
            state=self._state,
            position=position,
            lag_events=lag_events,
            lag_seconds=round(lag_seconds, 3),
            last_error=last_error,
            broker=self.publisher.describe(),
            topic=self.publisher.topic,
            published=self._published,
            owner=self.lease.held,
        )

    async def wait_until(self, position: int, timeout: float = 30.0) -> None:
        """Return once everything up to ``position`` is confirmed (tests, benchmarks, CLI)."""
        deadline = time.monotonic() + timeout
        while self._position < position:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"relay at {self._position}, not {position}, after {timeout:g} s "
                    f"(state {self._state}, last error {self._last_error})"
                )
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Stop a running :meth:`run` (its task is cancelled and awaited) and release the
        broker connection, the checkpoint connection and the lease. Idempotent."""
        self._closed = True
        task = self._run_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.wait([task])  # (does not re-raise the task's cancellation here)
        self._set_state("stopped")
        await self._disconnect()
        with contextlib.suppress(Exception):
            await self.lease.release()
        await self.checkpoints.close()
