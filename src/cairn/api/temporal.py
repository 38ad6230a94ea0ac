"""Orders as they were (SPEC §7 ``?version=N`` / ``?as_of=``) and their history, asked of the
query bus (:mod:`cairn.orders.queries`): answered from the events, never from the read model.
This module only shapes the answers as the API's views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn.application.bus import QueryBus
from cairn.errors import NotFoundError
from cairn.orders.domain import orders
from cairn.orders.queries import AggregateView, GetOrder, GetStreamHistory
from cairn.store.base import RecordedEvent


def order_view(found: AggregateView) -> dict[str, Any]:
    """The order view of SPEC §10 for an order's state and stream facts."""
    state = found.state
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
        "version": found.version,
        "position": found.position,
        "created_at": _iso(found.created_at),
        "updated_at": _iso(found.updated_at),
    }


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None


async def order_at(
    bus: QueryBus,
    order_id: str,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
) -> dict[str, Any] | None:
    """The order now, at stream ``version`` or as it was at ``as_of`` (``None`` if it did not
    exist yet)."""
    try:
        found: AggregateView = await bus.ask(GetOrder(order_id, as_of=as_of, version=version))
    except NotFoundError:
        return None
    return order_view(found)


async def order_history(
    bus: QueryBus, order_id: str, *, after_version: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    """The order's events after ``after_version``, oldest first, at most ``limit``."""
    events: list[RecordedEvent] = await bus.ask(
        GetStreamHistory(orders.stream_id(order_id), after_version=after_version, limit=limit)
    )
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
