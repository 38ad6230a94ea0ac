"""One live ``$all`` subscription shared by every GraphQL subscriber: a fan-out by stream id.

A subscriber per store subscription would cost one database reader (and, on PostgreSQL, one
LISTEN connection) per open websocket; here the process follows the log once and hands each
event to the listeners of its stream. The hub starts following the log with its first
listener, stops when the last one leaves, and is closed with the app (:meth:`StreamHub.close`).

No event is lost between "what the stream holds now" and "what comes next": :meth:`listen`
returns only once the pump has fixed the position it follows from (the head at its start), and
registers the listener before the caller reads the stream. Everything at or below that head is
in the caller's read; everything after it reaches the listener. The caller drops what it has
already seen by version.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from cairn.errors import ApplicationError
from cairn.observability.logging import get_logger
from cairn.store.base import EventStore, RecordedEvent

_log = get_logger("cairn.graphql.hub")

#: Events a listener may leave unread before it is dropped (a client that does not read its
#: socket must not make the process hold the log in memory for it).
MAX_BACKLOG = 10_000


def interrupted(reason: str) -> ApplicationError:
    """What a listener gets when the shared subscription failed, the process is stopping or
    the listener fell too far behind: subscribe again."""
    return ApplicationError("subscription.interrupted", reason)


@dataclass(eq=False)
class Listener:
    """The events of one stream, in log order, from the hub's start position on."""

    stream_id: str
    queue: asyncio.Queue[RecordedEvent | ApplicationError] = field(default_factory=asyncio.Queue)

    async def next(self) -> RecordedEvent:
        item = await self.queue.get()
        if isinstance(item, ApplicationError):
            raise item
        return item


class StreamHub:
    """Fan-out of the store's live subscription to :class:`Listener` s, by stream id."""

    def __init__(self, store: EventStore, *, max_backlog: int = MAX_BACKLOG) -> None:
        self.store = store
        self.max_backlog = max_backlog
        self._listeners: dict[str, set[Listener]] = {}
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._closed = False
        #: How many store subscriptions this hub has opened (one, unless one failed).
        self.subscriptions_opened = 0
        #: The last log position handed out (0 before the first event).
        self.position = 0

    @property
    def listener_count(self) -> int:
        return sum(len(group) for group in self._listeners.values())

    @contextlib.asynccontextmanager
    async def listen(self, stream_id: str) -> AsyncIterator[Listener]:
        """A listener of ``stream_id`` for the ``async with`` block (removed on exit)."""
        if self._closed:
            raise interrupted("the server is shutting down")
        listener = Listener(stream_id)
        self._listeners.setdefault(stream_id, set()).add(listener)
        try:
            await self._ensure_started()
            yield listener
        finally:
            self._remove(listener)

    async def close(self) -> None:
        """Stop following the log; open listeners get a ``subscription.interrupted`` error."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_all(interrupted("the server is shutting down"))

    async def _ensure_started(self) -> None:
        async with self._starting:
            if self._task is not None and not self._task.done():
                return
            # The pump follows from the head as it is now; a listener registered before this
            # point reads the stream after it, so nothing falls between the two.
            head = await self.store.head_position()
            self.position = head
            self.subscriptions_opened += 1
            self._task = asyncio.create_task(self._pump(head), name="graphql-stream-hub")

    async def _pump(self, after: int) -> None:
        try:
            async for event in self.store.subscribe(after=after):
                self.position = event.position
                for listener in tuple(self._listeners.get(event.stream_id, ())):
                    if listener.queue.qsize() >= self.max_backlog:
                        self._remove(listener)
                        listener.queue.put_nowait(interrupted("the subscriber fell too far behind"))
                    else:
                        listener.queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store failed: tell every listener, start over on demand
            _log.warning("graphql_hub_failed", error=str(exc))
            self._fail_all(interrupted(f"the live subscription failed: {exc}"))

    def _fail_all(self, error: ApplicationError) -> None:
        listeners = [listener for group in self._listeners.values() for listener in group]
        self._listeners.clear()
        for listener in listeners:
            listener.queue.put_nowait(error)

    def _remove(self, listener: Listener) -> None:
        group = self._listeners.get(listener.stream_id)
        if group is None:
            return
        group.discard(listener)
        if not group:
            del self._listeners[listener.stream_id]
        if not self._listeners and self._task is not None:
            # Nobody listens: stop reading the log (the next listener starts it again, from
            # the head as it is then).
            self._task.cancel()
            self._task = None

    @property
    def following(self) -> bool:
        """Whether the hub follows the log now (it does while anyone listens)."""
        return self._task is not None and not self._task.done()
