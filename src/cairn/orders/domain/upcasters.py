"""Upcasters of the order domain's events: one pure function per schema step.

Stored events are never rewritten; these run on every read of an old payload
(``cairn.orders.codec.domain_upcasters`` registers them with the store).

ItemAdded v1 → v2
    v1 (before multi-currency and product names on the order) stored
    ``{"order_id", "sku", "quantity", "price"}`` with ``price`` a JSON number, in EUR: every v1
    order was a EUR order. v2 is ``{"order_id", "sku", "name", "quantity", "unit_price",
    "currency"}`` with ``unit_price`` a decimal string. The number is read through its shortest
    repr (``19.99`` stays ``"19.99"``) and quantized to cents, half to even, which is what the
    v1 system displayed; ``name`` was not recorded and becomes ``""``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

Payload = dict[str, Any]

#: The currency of every order recorded before ItemAdded v2.
V1_CURRENCY: Final = "EUR"


def item_added_v1_to_v2(data: Payload) -> Payload:
    price = data["price"]
    if isinstance(price, bool) or not isinstance(price, int | float | str):
        raise ValueError(f"ItemAdded v1 price {price!r} is not a number")
    unit_price = Decimal(str(price)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return {
        "order_id": data["order_id"],
        "sku": data["sku"],
        "name": "",
        "quantity": data["quantity"],
        "unit_price": str(unit_price),
        "currency": V1_CURRENCY,
    }


#: ``(event type, from version, step)``: each step turns ``from version`` into the next.
STEPS: Final[tuple[tuple[str, int, Callable[[Payload], Payload]], ...]] = (
    ("ItemAdded", 1, item_added_v1_to_v2),
)
