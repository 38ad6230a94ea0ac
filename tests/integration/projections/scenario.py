"""Events shaped exactly as docs/events.md, appended straight to the store (no domain import)."""

from __future__ import annotations

import uuid
from typing import Any

from cairn.store.base import EventStore, NewEvent


async def register_product(
    store: EventStore, sku: str, name: str, price: str, stock: int = 0
) -> int:
    events = [
        NewEvent(
            "ProductRegistered", {"sku": sku, "name": name, "unit_price": price, "currency": "EUR"}
        )
    ]
    if stock:
        events.append(NewEvent("StockReplenished", {"sku": sku, "quantity": stock}))
    return (await store.append(f"inventory-{sku}", events)).position


async def inventory_event(store: EventStore, type_: str, sku: str, **data: Any) -> int:
    return (
        await store.append(f"inventory-{sku}", [NewEvent(type_, {"sku": sku, **data})])
    ).position


async def create_order(
    store: EventStore,
    customer_id: str = "c-1",
    *,
    number: int = 1,
    name: str = "Ada Lovelace",
    email: str = "ada@example.com",
    items: list[tuple[str, str, int, str]] = (),  # type: ignore[assignment]
    order_id: str | None = None,
) -> str:
    """OrderCreated + one ItemAdded per (sku, name, quantity, unit_price)."""
    order_id = order_id or str(uuid.uuid4())
    events = [
        NewEvent(
            "OrderCreated",
            {
                "order_id": order_id,
                "order_number": f"ORD-2026-{number:06d}",
                "customer_id": customer_id,
                "customer_name": name,
                "customer_email": email,
                "currency": "EUR",
                "shipping_address": {
                    "line1": "1 Main St",
                    "city": "Paris",
                    "postal_code": "75001",
                    "country": "FR",
                },
            },
        )
    ]
    for sku, item_name, quantity, price in items:
        events.append(item_added(order_id, sku, item_name, quantity, price))
    await store.append(f"order-{order_id}", events)
    return order_id


def item_added(order_id: str, sku: str, name: str, quantity: int, price: str) -> NewEvent:
    return NewEvent(
        "ItemAdded",
        {
            "order_id": order_id,
            "sku": sku,
            "name": name,
            "quantity": quantity,
            "unit_price": price,
            "currency": "EUR",
        },
        schema_version=2,
    )


async def order_event(store: EventStore, order_id: str, type_: str, **data: Any) -> int:
    result = await store.append(
        f"order-{order_id}", [NewEvent(type_, {"order_id": order_id, **data})]
    )
    return result.position


async def place(store: EventStore, order_id: str, total: str) -> int:
    return await order_event(
        store,
        order_id,
        "OrderPlaced",
        payment_method="tok_ok",
        total=total,
        currency="EUR",
        items=[],
    )
