"""Order numbers: one per-year counter stream, numbers reserved in blocks as demand grows.

A number is the version an ``OrderNumberAllocated`` event gets in ``ordernumbers-<year>``
(appended with expected_version=ANY): unique across processes without a retry loop, and the
same rule for every event ever written there, so processes of older releases, which append
one event per order, can share the stream during a rolling upgrade.

Appending one event per order cost each ``CreateOrder`` a transaction of its own (the order's
append is another): about a seventh of the appends of an order's whole life, saga included.
So a process that is creating orders quickly reserves several numbers in one append (one
event each, as before) and hands out the spare ones from memory, the hi/lo scheme Marten uses
for numeric ids. The block is as large as the requests of the last
:data:`DEMAND_WINDOW` seconds, up to :data:`MAX_BLOCK`: at a trickle every append still
allocates one number, in order, for the order that asked; under load one append serves a
few dozen orders. Numbers stay unique; what a process reserved and did not hand out before it
stopped is never used (gaps, like those of a create that failed after its number), and two
busy processes hand out numbers that interleave out of creation order.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from cairn.store.base import ANY, EventStore, NewEvent

#: A block holds as many numbers as were asked for in this many seconds before it…
DEMAND_WINDOW = 0.25
#: …and never more than this: what a stopping process can leave unused.
MAX_BLOCK = 32


def counter_stream(year: int) -> str:
    return f"ordernumbers-{year}"


class OrderNumbers:
    """The numbers one process hands out. One per event store (:func:`order_numbers_of`)."""

    def __init__(self, store: EventStore, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._monotonic = monotonic
        self._spare: dict[int, deque[int]] = {}
        self._asked: deque[float] = deque(maxlen=MAX_BLOCK)
        self._refill = asyncio.Lock()

    async def next(
        self, year: int, order_id: str, event_id: uuid.UUID, metadata: dict[str, Any]
    ) -> int:
        """A number of ``year`` nobody else gets. ``event_id`` and ``metadata`` go on the event
        of a number allocated for this order alone; ``event_id`` derives from the command id,
        so a re-delivered command appending it again gets the same number back."""
        self._asked.append(self._monotonic())
        spare = self._spare.setdefault(year, deque())
        if not spare:
            async with self._refill:
                if not spare:
                    return await self._reserve(year, order_id, event_id, metadata, spare)
        return spare.popleft()

    async def _reserve(
        self,
        year: int,
        order_id: str,
        event_id: uuid.UUID,
        metadata: dict[str, Any],
        spare: deque[int],
    ) -> int:
        size = self._demand()
        if size == 1:
            events = [_allocated(year, order_id, metadata, event_id)]
        else:
            # Fresh ids all round: a re-delivered batch must never be recognised as an earlier
            # one of another size (its versions would not be these numbers).
            events = [_allocated(year, order_id, metadata, uuid.uuid4())]
            events += [_allocated(year, None, metadata, uuid.uuid4()) for _ in range(size - 1)]
        result = await self._store.append(counter_stream(year), events, ANY)
        first = result.version - len(events) + 1
        spare.extend(range(first + 1, result.version + 1))
        return first

    def _demand(self) -> int:
        since = self._monotonic() - DEMAND_WINDOW
        return max(1, sum(1 for at in self._asked if at >= since))


def _allocated(
    year: int, order_id: str | None, metadata: dict[str, Any], event_id: uuid.UUID
) -> NewEvent:
    return NewEvent(
        "OrderNumberAllocated", {"order_id": order_id, "year": year}, metadata, id=event_id
    )


_BY_STORE: weakref.WeakKeyDictionary[EventStore, OrderNumbers] = weakref.WeakKeyDictionary()


def order_numbers_of(store: EventStore) -> OrderNumbers:
    """The allocator of ``store``: spare numbers belong to the process's store, whichever of
    its buses asks (and go with it)."""
    numbers = _BY_STORE.get(store)
    if numbers is None:
        numbers = _BY_STORE[store] = OrderNumbers(store)
    return numbers
