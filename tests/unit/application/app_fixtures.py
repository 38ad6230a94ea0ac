"""Shared builders for the application-layer specifications (memory store)."""

from __future__ import annotations

import uuid

from cairn.application import CommandBus
from cairn.orders.codec import domain_upcasters
from cairn.orders.domain import inventory, orders
from cairn.orders.domain.money import Money
from cairn.store import EventStore, open_store

ADDRESS = orders.ShippingAddress("1 Main St", "Paris", "75001", "FR")


async def memory_store() -> EventStore:
    return await open_store("memory://", upcasters=domain_upcasters())


def new_order(order_id: str | None = None, *items: orders.OrderItem) -> orders.CreateOrder:
    return orders.CreateOrder(
        order_id or str(uuid.uuid4()),
        "c-1",
        "Ada",
        "ada@example.com",
        "EUR",
        ADDRESS,
        tuple(items),
        year=2026,
    )


async def register_mug(bus: CommandBus, stock: int = 10, price: str = "12.50") -> None:
    await bus.dispatch(inventory.RegisterProduct("MUG-1", "Mug", Money.of(price, "EUR"), stock))
