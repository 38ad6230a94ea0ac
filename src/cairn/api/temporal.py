"""Orders as they were: fold the order stream up to a version or an instant (SPEC §7
``?version=N`` / ``?as_of=``). Answered from the events, never from the read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn.orders.domain import orders
from cairn.orders.domain.codec import decode_event
from cairn.store.base import EventStore, RecordedEvent


def order_view(state: orders.OrderState, events: list[RecordedEvent]) -> dict[str, Any] | None:
    """The order view of SPEC §10 for a folded state (``None`` for no order)."""
    if isinstance(state, orders.NoOrder) or not events:
        return None
    details = state.order
    reason = state.reason if isinstance(state, orders.CancelledOrder) else None
    return {
        "order_id": details.order_id,
        "order_number": details.order_number,
        "customer_id": details.customer_id,
        "customer_name": details.customer_name,
        "customer_email": details.customer_email,
        "status": state.status,
        "currency": details.currency,
        "items": [
            {
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price.amount),
                "line_total": str(line.line_total.amount),
            }
            for line in details.lines
        ],
        "total": str(details.total.amount),
        "cancellation_reason": reason,
        "shipping_address": {
            "line1": details.shipping_address.line1,
            "line2": details.shipping_address.line2,
            "city": details.shipping_address.city,
            "postal_code": details.shipping_address.postal_code,
            "country": details.shipping_address.country,
        },
        "version": events[-1].version,
        "position": events[-1].position,
        "created_at": events[0].recorded_at.isoformat(),
        "updated_at": events[-1].recorded_at.isoformat(),
    }


def fold_order(events: list[RecordedEvent]) -> orders.OrderState:
    state = orders.initial_state()
    for event in events:
        state = orders.evolve(state, decode_event(event.type, event.data))
    return state


async def order_at(
    store: EventStore,
    order_id: str,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
) -> dict[str, Any] | None:
    """The order at stream ``version`` or as it was at ``as_of`` (``None`` if it did not exist
    yet)."""
    events = await store.read_stream(orders.stream_id(order_id), to_version=version, until=as_of)
    return order_view(fold_order(events), events)


async def order_history(store: EventStore, order_id: str) -> list[dict[str, Any]]:
    events = await store.read_stream(orders.stream_id(order_id))
    return [
        {
            "type": e.type,
            "version": e.version,
            "position": e.position,
            "data": e.data,
            "recorded_at": e.recorded_at.isoformat(),
            "metadata": e.metadata,
        }
        for e in events
    ]
