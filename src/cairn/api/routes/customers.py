"""Customer summary: ``GET /api/v1/customers/{id}/summary`` (a customer sees only its own)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import JSONResponse, Response

from cairn.api import services
from cairn.api.deps import AnyUser, RuntimeDep
from cairn.api.problems import ProblemError
from cairn.api.schemas import MAX_INT

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    404: {"description": "Unknown customer (or another customer's)"},
}


@router.get("/{customer_id}/summary", responses=_RESPONSES)
async def customer_summary(
    customer_id: Annotated[str, Path(min_length=1, max_length=100)],
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
