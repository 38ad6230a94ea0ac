"""Orders: commands (create, items, place, cancel, ship, deliver) and queries (one order, as it
was at a version or an instant, its history, lists with cursor pagination, search).

Customers act on and see only their own orders: another customer's order is a 404, exactly like
an order that does not exist.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import JSONResponse, Response

from cairn.api import commands, order_commands, services, temporal
from cairn.api.auth import Principal, Role, require_same_customer
from cairn.api.deps import AnyUser, RuntimeDep, Staff
from cairn.api.problems import ProblemError
from cairn.api.schemas import (
    MAX_INT,
    AddItemRequest,
    CancelOrderRequest,
    CreatedOrderResult,
    CreateOrderRequest,
    EmptyRequest,
    OrderResult,
    OrderView,
    PlaceOrderRequest,
)
from cairn.errors import DomainError
from cairn.orders.domain import orders

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])

OrderId = Annotated[str, Path(min_length=1, max_length=100)]
SkuPath = Annotated[str, Path(min_length=1, max_length=64)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request (problem+json)"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Wrong role or another customer"},
    404: {"description": "Unknown order or SKU"},
    409: {"description": "Conflict"},
    412: {"description": "If-Match mismatch"},
    413: {"description": "Body too large"},
    422: {"description": "Invalid field or refused by a business rule"},
}


# --- commands --------------------------------------------------------------------------------


@router.post("", status_code=201, response_model=CreatedOrderResult, responses=_RESPONSES)
async def create_order(
    body: CreateOrderRequest, request: Request, runtime: RuntimeDep, user: AnyUser
) -> Response:
    """Create a draft order (with its first items); a customer creates only its own orders."""
    require_same_customer(user, body.customer_id)

    def build(derived: str | None) -> orders.CreateOrder:
        return order_commands.create_order(body, body.order_id or derived or str(uuid.uuid4()))

    # Without a client-chosen id the order's id is minted here: there is no stream to read.
    return await commands.execute(
        request,
        runtime,
        user,
        build,
        order_commands.created_result,
        status=201,
        new_stream=body.order_id is None,
    )


@router.post("/{order_id}/items", response_model=OrderResult, responses=_RESPONSES)
async def add_item(
    order_id: OrderId,
    body: AddItemRequest,
    request: Request,
    runtime: RuntimeDep,
    user: AnyUser,
) -> Response:
    """Add a catalogue item (its price comes from the catalogue) to a draft order."""
    await order_commands.ensure_visible(runtime, user, order_id)
    return await commands.execute(
        request,
        runtime,
        user,
        lambda _: order_commands.add_item(order_id, body.sku, body.quantity),
        order_commands.order_result,
        status=200,
    )


@router.delete("/{order_id}/items/{sku}", response_model=OrderResult, responses=_RESPONSES)
async def remove_item(
    order_id: OrderId, sku: SkuPath, request: Request, runtime: RuntimeDep, user: AnyUser
) -> Response:
    """Remove a whole line from a draft order (404 when the SKU is not on it)."""
    await order_commands.ensure_visible(runtime, user, order_id)
    try:
        return await commands.execute(
            request,
            runtime,
            user,
            lambda _: orders.RemoveItem(order_id=order_id, sku=sku),
            order_commands.order_result,
            status=200,
        )
    except DomainError as exc:
        if exc.code == "order.item_not_found":  # the path names a line that does not exist
            raise ProblemError(404, exc.code, exc.message, sku=sku) from None
        raise


@router.post("/{order_id}/place", status_code=202, response_model=OrderResult, responses=_RESPONSES)
async def place_order(
    order_id: OrderId,
    request: Request,
    runtime: RuntimeDep,
    user: AnyUser,
    body: Annotated[PlaceOrderRequest | None, Body()] = None,
) -> Response:
    """Place a draft order; fulfilment (stock, payment, shipment) continues asynchronously."""
    await order_commands.ensure_visible(runtime, user, order_id)
    method = (body or PlaceOrderRequest()).payment_method
    return await commands.execute(
        request,
        runtime,
        user,
        lambda _: order_commands.place_order(order_id, method),
        order_commands.order_result,
        status=202,
    )


@router.post("/{order_id}/cancel", response_model=OrderResult, responses=_RESPONSES)
async def cancel_order(
    order_id: OrderId,
    request: Request,
    runtime: RuntimeDep,
    user: AnyUser,
    body: Annotated[CancelOrderRequest | None, Body()] = None,
) -> Response:
    """Cancel a draft, placed or confirmed order (never after shipping)."""
    await order_commands.ensure_visible(runtime, user, order_id)
    reason = (body or CancelOrderRequest()).reason
    return await commands.execute(
        request,
        runtime,
        user,
        lambda _: order_commands.cancel_order(order_id, reason),
        order_commands.order_result,
        status=200,
    )


@router.post("/{order_id}/ship", response_model=OrderResult, responses=_RESPONSES)
async def ship_order(
    order_id: OrderId,
    request: Request,
    runtime: RuntimeDep,
    user: Staff,
    body: Annotated[EmptyRequest | None, Body()] = None,
) -> Response:
    """Ship a confirmed order (operator or admin); the payment is captured."""
    await order_commands.ensure_visible(runtime, user, order_id)
    return await commands.execute(
        request,
        runtime,
        user,
        lambda _: orders.ShipOrder(order_id=order_id),
        order_commands.order_result,
        status=200,
    )


@router.post("/{order_id}/deliver", response_model=OrderResult, responses=_RESPONSES)
async def deliver_order(
    order_id: OrderId,
    request: Request,
    runtime: RuntimeDep,
    user: Staff,
    body: Annotated[EmptyRequest | None, Body()] = None,
) -> Response:
    """Mark a shipped order delivered (operator or admin)."""
    await order_commands.ensure_visible(runtime, user, order_id)
    return await commands.execute(
        request,
        runtime,
        user,
        lambda _: orders.DeliverOrder(order_id=order_id),
        order_commands.order_result,
        status=200,
    )


# --- queries ---------------------------------------------------------------------------------


def _customer_filter(user: Principal, customer_id: str | None) -> str | None:
    if user.role is not Role.CUSTOMER:
        return customer_id
    if customer_id is not None and customer_id != user.customer_id:
        raise ProblemError(403, "auth.forbidden_customer", "customers see only their own orders")
    return user.customer_id


@router.get("", responses=_RESPONSES)
async def list_orders(
    runtime: RuntimeDep,
    user: AnyUser,
    customer_id: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Response:
    """Orders newest first, filtered; ``next_cursor`` fetches the next page."""
    await services.wait_for_read_models(runtime, min_position, waiter=user.name)
    page = await services.list_orders(
        runtime,
        customer_id=_customer_filter(user, customer_id),
        status=status,
        created_from=from_,
        created_to=to,
        cursor=cursor,
        limit=limit,
    )
    return JSONResponse(page)


#: Every status an order can have (SPEC §3), for ``/orders/status/{status}``.
STATUSES = tuple(status for status in orders.TRANSITIONS if status != "none")


@router.get("/status/{status}", responses=_RESPONSES)
async def orders_by_status(
    status: Annotated[str, Path(min_length=1, max_length=20)],
    runtime: RuntimeDep,
    user: AnyUser,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Response:
    """Seed 004's path for ``GET /api/v1/orders?status=``: the same list, the same rules (a
    customer sees its own orders); a status that does not exist is 404."""
    if status not in STATUSES:
        raise ProblemError(
            404,
            "order.unknown_status",
            f"no order status {status!r} (one of {', '.join(STATUSES)})",
        )
    return await list_orders(
        runtime,
        user,
        customer_id=None,
        status=status,
        from_=from_,
        to=to,
        cursor=cursor,
        limit=limit,
        min_position=min_position,
    )


@router.get("/search", responses=_RESPONSES)
async def search_orders(
    runtime: RuntimeDep,
    user: AnyUser,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Response:
    """Full-text search over order number, customer, SKUs and item names."""
    await services.wait_for_read_models(runtime, min_position, waiter=user.name)
    results = await services.search_orders(
        runtime, q, limit=limit, customer_id=_customer_filter(user, None)
    )
    return JSONResponse({"query": q, "orders": results})


@router.get("/{order_id}", response_model=OrderView, responses=_RESPONSES)
async def get_order(
    order_id: OrderId,
    runtime: RuntimeDep,
    user: AnyUser,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
    as_of: Annotated[datetime | None, Query()] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
) -> Response:
    """The order (read model); ``?version=N`` or ``?as_of=`` answer from the events."""
    if version is not None or as_of is not None:
        if as_of is not None and as_of.tzinfo is None:
            raise ProblemError(
                422, "app.validation", "as_of needs a time zone (e.g. 2026-01-01T12:00:00Z)"
            )
        view = await temporal.order_at(
            runtime.container.query_bus, order_id, version=version, as_of=as_of
        )
    else:
        await services.wait_for_read_models(runtime, min_position, waiter=user.name)
        view = await services.get_order(runtime, order_id)
    if view is None or not user.can_see_customer(view.get("customer_id")):
        raise order_commands.order_not_found(order_id)
    return JSONResponse(view, headers={"ETag": f'"{view["version"]}"'})


@router.get("/{order_id}/history", responses=_RESPONSES)
async def order_history(
    order_id: OrderId,
    runtime: RuntimeDep,
    user: AnyUser,
    limit: Annotated[int, Query(ge=1, le=MAX_INT)] = 100,
    after_version: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> Response:
    """The order's events, oldest first, a page at a time: at most ``limit`` (up to
    ``CAIRN_HISTORY_MAX_PAGE``) after ``after_version``; ``next_after_version`` is set when more
    remain."""
    largest = runtime.settings.history_max_page
    if limit > largest:
        raise ProblemError(422, "app.validation", f"limit must be at most {largest}")
    # One more than the page: whether more remain, without a second read.
    events = await temporal.order_history(
        runtime.container.query_bus, order_id, after_version=after_version, limit=limit + 1
    )
    more = len(events) > limit
    events = events[:limit]
    if after_version == 0:
        owner = events[0]["data"].get("customer_id") if events else None
        exists = bool(events)
    else:  # a later page: the owner is on the order's first event
        owner = await services.order_owner(runtime, order_id)
        exists = owner is not None
    if not exists or not user.can_see_customer(owner):
        raise order_commands.order_not_found(order_id)
    body: dict[str, Any] = {"order_id": order_id, "events": events}
    body["next_after_version"] = events[-1]["version"] if more else None
    headers = {"ETag": f'"{events[-1]["version"]}"'} if events and not more else {}
    return JSONResponse(body, headers=headers)
