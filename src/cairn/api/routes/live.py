"""The ``$all`` log live, as server-sent events (role ``admin``; the console's Streams tail).

``GET /api/v1/admin/events/live?after=N`` sends every event after ``N`` (by default: the last
``backlog`` events, none unless asked), then each new one as it is appended, fed by the store's
``subscribe``. Each message is ``id: <position>``, ``event: <type>`` and ``data: <the event as
JSON>`` (the shape of ``GET /api/v1/admin/events``). A comment line every ``HEARTBEAT`` seconds
keeps proxies from closing an idle stream. A stream ends after ``max_seconds``, and at once when
the server stops: the client reconnects with ``after`` = the last id it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from cairn.api.deps import Admin, RuntimeDep
from cairn.api.routes.admin import event_json
from cairn.api.schemas import MAX_INT
from cairn.store.base import EventStore, RecordedEvent

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

HEARTBEAT = 15.0
#: Events a subscriber reads from the store per round trip.
_BATCH = 500
#: Line ends (the specification allows any of CRLF, CR and LF; plain LF is the shortest).
_SEP = "\n"


def _message(event: RecordedEvent) -> ServerSentEvent:
    data = json.dumps(event_json(event), separators=(",", ":"), default=str)
    return ServerSentEvent(data=data, event=event.type, id=str(event.position), sep=_SEP)


async def _stream(
    store: EventStore, after: int, max_seconds: float
) -> AsyncIterator[ServerSentEvent]:
    """The log after ``after``, live, until ``max_seconds`` have passed (an idle log included:
    the wait for the next event is bounded by what is left)."""
    deadline = time.monotonic() + max_seconds
    events = store.subscribe(after, batch_size=_BATCH)
    pending: asyncio.Task[RecordedEvent] | None = None
    try:
        while (left := deadline - time.monotonic()) > 0:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=left)
            if not done:
                break
            event = pending.result()
            pending = None
            yield _message(event)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        await events.aclose()  # type: ignore[attr-defined]


# Not in the OpenAPI document: a stream that never ends is no operation a generated client (or
# the schema fuzzer) can call and wait for; docs/console.md describes it.
@router.get("/events/live", response_class=EventSourceResponse, include_in_schema=False)
async def live_events(
    runtime: RuntimeDep,
    _: Admin,
    after: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
    backlog: Annotated[int, Query(ge=0, le=1000)] = 0,
    max_seconds: Annotated[float, Query(gt=0, le=3600)] = 300.0,
) -> Response:
    """``$all`` as server-sent events: the events after ``after`` (default: the last
    ``backlog`` events before the head), then live. Reconnect with ``after`` = the last ``id``
    received."""
    if after is None:
        after = max(await runtime.store.head_position() - backlog, 0)
    # sse-starlette: a comment every HEARTBEAT seconds, the stream ended when the client goes
    # away, and when the server stops (uvicorn waits for open responses otherwise).
    return EventSourceResponse(
        _stream(runtime.store, after, max_seconds),
        ping=HEARTBEAT,
        sep=_SEP,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
