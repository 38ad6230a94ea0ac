"""``cairn.v1.EventStore``: the event log over gRPC, for the admin role.

``SubscribeAll`` is the store's own ``subscribe`` (catch up in batches of ``read_all``, then
follow live appends: LISTEN/NOTIFY on PostgreSQL, a short poll on SQLite), one ``Event`` message
per event. Flow control is gRPC's: each message is handed to the transport by awaiting it (the
generator is not resumed until the previous message was accepted, and HTTP/2 flow control stops
accepting when the client does not read), so a slow client holds at most one batch of events in
this process, never an unbounded queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

from cairn.api.problems import ProblemError
from cairn.api.runtime import Runtime
from cairn.api.schemas import MAX_INT
from cairn.json_text import compact
from cairn.rpc import auth
from cairn.rpc.calls import server_stream
from cairn.store.base import RecordedEvent
from cairn.v1 import event_store_pb2 as pb
from cairn.v1 import event_store_pb2_grpc

if TYPE_CHECKING:
    from cairn.rpc.errors import Context

SERVICE: Final = "cairn.v1.EventStore"
#: Events read from the store at a time, and so the most a slow client can hold here.
BATCH_SIZE: Final = 500
MAX_STREAM_ID: Final = 255

_Event = pb.Event


def event_message(event: RecordedEvent) -> pb.Event:
    """One ``Event`` message (``data_json`` and ``metadata_json`` as JSON objects)."""
    return _Event(
        id=str(event.id),
        stream_id=event.stream_id,
        type=event.type,
        version=event.version,
        position=event.position,
        data_json=compact(event.data),
        metadata_json=compact(event.metadata),
        recorded_at=event.recorded_at.isoformat(),
        schema_version=event.schema_version,
    )


async def _close(iterator: AsyncIterator[RecordedEvent]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def _bounded(name: str, value: int, low: int) -> int:
    if not low <= value <= MAX_INT:
        raise ProblemError(
            422, "app.validation", f"invalid request: {name}: must be from {low} to {MAX_INT}"
        )
    return value


class EventStoreService(event_store_pb2_grpc.EventStoreServicer):
    def __init__(self, runtime: Runtime, *, batch_size: int = BATCH_SIZE) -> None:
        self.runtime = runtime
        self.batch_size = batch_size

    @server_stream(f"{SERVICE}/ReadStream")
    async def ReadStream(
        self, request: pb.ReadStreamRequest, context: Context
    ) -> AsyncIterator[pb.Event]:
        auth.admin(self.runtime, context)
        stream_id = request.stream_id
        if not 1 <= len(stream_id) <= MAX_STREAM_ID:
            raise ProblemError(
                422,
                "app.validation",
                f"invalid request: stream_id: 1 to {MAX_STREAM_ID} characters",
            )
        first = (
            _bounded("from_version", request.from_version, 1)
            if request.HasField("from_version")
            else 1
        )
        last = (
            _bounded("to_version", request.to_version, 1)
            if request.HasField("to_version")
            else None
        )
        # A page at a time, so a long stream is never all in memory at once; up to the version
        # the stream had when the call began (a truncated stream has no early versions left, so
        # a short page does not mean the end).
        head = await self.runtime.store.stream_version(stream_id)
        end = head if last is None else min(head, last)
        while first <= end:
            upto = min(first + self.batch_size - 1, end)
            events = await self.runtime.store.read_stream(
                stream_id, from_version=first, to_version=upto
            )
            for event in events:
                yield event_message(event)
            first = upto + 1

    @server_stream(f"{SERVICE}/SubscribeAll")
    async def SubscribeAll(
        self, request: pb.SubscribeAllRequest, context: Context
    ) -> AsyncIterator[pb.Event]:
        auth.admin(self.runtime, context)
        after = _bounded("after", request.after, 0) if request.HasField("after") else 0
        # Closed explicitly when the client goes away, so a LISTEN waiter or a read in flight
        # does not linger until the garbage collector finds the generator.
        subscription = self.runtime.store.subscribe(after, batch_size=self.batch_size)
        try:
            async for event in subscription:
                yield event_message(event)
        finally:
            await _close(subscription)
