"""Builders of domain events and commands for the domain specifications."""

from __future__ import annotations

from decimal import Decimal

from cairn.orders.domain import inventory, orders
from cairn.orders.domain.money import Money

ORDER_ID = "3f1c9e1e-0000-4000-8000-000000000001"
MUG = orders.CatalogueEntry("MUG-1", "Mug", Money.of("12.50", "EUR"))
TEA = orders.CatalogueEntry("TEA-1", "Tea", Money.of("3.99", "EUR"))
ADDRESS = orders.ShippingAddress("1 Main St", "Paris", "75001", "FR")


def create_order(*items: orders.OrderItem, **changes: object) -> orders.CreateOrder:
    fields: dict[str, object] = {
        "order_id": ORDER_ID,
        "customer_id": "c-1",
        "customer_name": "Ada",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "shipping_address": ADDRESS,
        "items": tuple(items),
        "order_number": "ORD-2026-000001",
        "products": {"MUG-1": MUG, "TEA-1": TEA},
    }
    fields.update(changes)
    return orders.CreateOrder(**fields)  # type: ignore[arg-type]


def order_created(**changes: object) -> orders.OrderCreated:
    fields: dict[str, object] = {
        "order_id": ORDER_ID,
        "order_number": "ORD-2026-000001",
        "customer_id": "c-1",
        "customer_name": "Ada",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "shipping_address": ADDRESS,
    }
    fields.update(changes)
    return orders.OrderCreated(**fields)  # type: ignore[arg-type]


def item_added(product: orders.CatalogueEntry = MUG, quantity: int = 1) -> orders.ItemAdded:
    return orders.ItemAdded(
        ORDER_ID,
        product.sku,
        product.name,
        quantity,
        product.unit_price.amount,
        product.unit_price.currency,
    )


def placed(*lines: tuple[orders.CatalogueEntry, int]) -> orders.OrderPlaced:
    total = sum((p.unit_price.amount * q for p, q in lines), Decimal("0.00"))
    return orders.OrderPlaced(
        ORDER_ID,
        "tok_ok",
        total,
        "EUR",
        tuple(orders.PlacedItem(p.sku, q, p.unit_price.amount) for p, q in lines),
    )


def draft_with_mug(quantity: int = 2) -> list[orders.OrderEvent]:
    return [order_created(), item_added(MUG, quantity)]


def placed_history() -> list[orders.OrderEvent]:
    return [*draft_with_mug(2), placed((MUG, 2))]


def confirmed_history() -> list[orders.OrderEvent]:
    return [*placed_history(), orders.OrderConfirmed(ORDER_ID, "pay-1", "ship-1")]


def shipped_history() -> list[orders.OrderEvent]:
    return [*confirmed_history(), orders.OrderShipped(ORDER_ID, "ship-1")]


def product_registered(sku: str = "MUG-1") -> inventory.ProductRegistered:
    return inventory.ProductRegistered(sku, "Mug", Decimal("12.50"), "EUR")
