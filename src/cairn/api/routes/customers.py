"""Customers: ``GET /api/v1/customers/{id}/summary`` and seed 004's
``GET /api/v1/customers/{id}/orders`` (a customer sees only its own)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import JSONResponse, Response

from cairn.api import services
from cairn.api.deps import AnyUser, RuntimeDep
from cairn.api.problems import ProblemError
from cairn.api.routes.orders import list_orders
from cairn.api.schemas import MAX_INT

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])
CustomerId = Annotated[str, Path(min_length=1, max_length=100)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    404: {"description": "Unknown customer (or another customer's)"},
}


@router.get("/{customer_id}/summary", responses=_RESPONSES)
async def customer_summary(
    customer_id: CustomerId,
    runtime: RuntimeDep,
    user: AnyUser,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Response:
    """Orders, total spent and last order date of one customer."""
    if not user.can_see_customer(customer_id):
        raise ProblemError(404, "customer.not_found", f"customer {customer_id!r} not found")
    await services.wait_for_read_models(runtime, min_position, "customers", waiter=user.name)
    summary = await services.customer_summary(runtime, customer_id)
    if summary is None:
        raise ProblemError(404, "customer.not_found", f"customer {customer_id!r} has no orders")
    return JSONResponse(summary)


@router.get(
    "/{customer_id}/orders", responses={**_RESPONSES, 403: {"description": "Another customer"}}
)
async def customer_orders(
    customer_id: CustomerId,
    runtime: RuntimeDep,
    user: AnyUser,
    status: Annotated[str | None, Query(max_length=20)] = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Response:
    """Seed 004's path for ``GET /api/v1/orders?customer_id=``: the customer's orders, newest
    first, with the same filters, paging and rules (another customer's list is 403)."""
    return await list_orders(
        runtime,
        user,
        customer_id=customer_id,
        status=status,
        from_=from_,
        to=to,
        cursor=cursor,
        limit=limit,
        min_position=min_position,
    )
