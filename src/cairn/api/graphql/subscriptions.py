"""``Subscription.orderStatusChanged``: one message per status change of an order, live.

Driven by the event log, not by polling a table: the process's one :class:`StreamHub` follows
``$all`` and hands this subscription the order's events. First comes the order's current
status (from its stream), then every status change after it, in order, none skipped or merged
(each is its own event); the subscription completes after ``delivered`` or ``cancelled``.
Subscribing to an order the caller cannot see (or that does not exist) is an error,
``order.not_found``, as REST's 404.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from cairn.api.graphql.context import context_of
from cairn.api.graphql.types import OrderStatusChange, not_found
from cairn.api.graphql.validation import bounded_text
from cairn.orders.domain import orders
from cairn.store.base import RecordedEvent

#: The status each order event leaves the order in (SPEC §3); other events change no status.
STATUS_AFTER: dict[str, str] = {
    "OrderCreated": "draft",
    "OrderPlaced": "placed",
    "OrderConfirmed": "confirmed",
    "OrderShipped": "shipped",
    "OrderDelivered": "delivered",
    "OrderCancelled": "cancelled",
}
FINAL = frozenset({"delivered", "cancelled"})


def _change(order_id: str, event: RecordedEvent) -> OrderStatusChange:
    return OrderStatusChange(
        order_id=strawberry.ID(order_id),
        status=STATUS_AFTER[event.type],
        version=event.version,
        position=event.position,
        recorded_at=event.recorded_at.isoformat(),
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The order's status now, then each change; completes when it is final"
    )
    async def order_status_changed(
        self, info: strawberry.Info, order_id: strawberry.ID
    ) -> AsyncGenerator[OrderStatusChange, None]:
        context = context_of(info)
        principal = context.principal
        target = bounded_text("orderId", order_id, 100)
        stream = orders.stream_id(target)
        async with context.hub.listen(stream) as listener:
            # Read after listening: what the read misses, the listener has (see hub.py).
            events = await context.runtime.store.read_stream(stream)
            if not events or not principal.can_see_customer(events[0].data.get("customer_id")):
                raise not_found(target)
            current = [e for e in events if e.type in STATUS_AFTER]
            seen = events[-1].version
            if current:
                change = _change(target, current[-1])
                yield change
                if change.status in FINAL:
                    return
            while True:
                event = await listener.next()
                if event.version <= seen:
                    continue
                seen = event.version
                if event.type not in STATUS_AFTER:
                    continue
                change = _change(target, event)
                yield change
                if change.status in FINAL:
                    return
