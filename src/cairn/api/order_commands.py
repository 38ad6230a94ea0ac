"""The order commands as every transport sends them (REST routes, gRPC's ``cairn.v1.Orders``):
built from the validated request models of ``schemas.py``, answered in one shape, behind one
visibility rule. A transport parses and authenticates; what a command *is* lives here once.

Customers act on and see only their own orders: another customer's order is a 404 (gRPC:
``NOT_FOUND``), exactly like an order that does not exist, so its existence is not confirmed.
"""

from __future__ import annotations

from typing import Any

from cairn.api import services
from cairn.api.auth import Principal
from cairn.api.problems import ProblemError
from cairn.api.runtime import Runtime
from cairn.api.schemas import CreateOrderRequest
from cairn.orders.domain import orders


def order_not_found(order_id: str) -> ProblemError:
    return ProblemError(404, "order.not_found", f"order {order_id} does not exist")


async def ensure_visible(runtime: Runtime, principal: Principal, order_id: str) -> None:
    """For a customer: 404 unless the order exists and is theirs. (Staff need no check here:
    a command on an order that does not exist is refused by the domain with a 404.)"""
    if not principal.is_customer:
        return
    owner = await services.order_owner(runtime, order_id)
    if owner is None or not principal.can_see_customer(owner):
        raise order_not_found(order_id)


def create_order(body: CreateOrderRequest, order_id: str) -> orders.CreateOrder:
    """``CreateOrder`` for ``body``, with the order id the transport chose (the body's own, one
    derived from an idempotency key, or a new UUID)."""
    address = body.shipping_address
    return orders.CreateOrder(
        order_id=order_id,
        customer_id=body.customer_id,
        customer_name=body.customer_name,
        customer_email=body.customer_email,
        currency=body.currency,
        shipping_address=orders.ShippingAddress(
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            postal_code=address.postal_code,
            country=address.country.upper(),
        ),
        items=tuple(orders.OrderItem(i.sku, i.quantity) for i in body.items),
    )


def add_item(order_id: str, sku: str, quantity: int) -> orders.AddItem:
    return orders.AddItem(order_id=order_id, sku=sku, quantity=quantity)


def place_order(order_id: str, payment_method: str) -> orders.PlaceOrder:
    return orders.PlaceOrder(order_id=order_id, payment_method=payment_method)


def cancel_order(order_id: str, reason: str) -> orders.CancelOrder:
    return orders.CancelOrder(order_id=order_id, reason=reason)


def order_result(command: Any, result: Any) -> dict[str, Any]:
    """``{"order_id", "version", "position"}``: what a command on an order answers."""
    return {"order_id": command.order_id, "version": result.version, "position": result.position}


def created_result(command: Any, result: Any) -> dict[str, Any]:
    """``order_result`` and the new order's ``order_number`` (allocated by the handler)."""
    number = command.order_number
    for event in getattr(result, "events", ()) or ():
        if event.type == "OrderCreated":
            number = event.data.get("order_number", number)
    return {
        "order_id": command.order_id,
        "order_number": number,
        "version": result.version,
        "position": result.position,
    }
