"""Sales analytics: ``GET /api/v1/analytics/sales``, ``GET /api/v1/analytics/top-customers``
(operator or admin)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import JSONResponse, Response

from cairn.api import services
from cairn.api.deps import RuntimeDep, Staff
from cairn.api.schemas import MAX_INT

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
Currency = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Wrong role"},
}


@router.get("/sales", responses=_RESPONSES)
async def sales(
    runtime: RuntimeDep,
    user: Staff,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    currency: Currency = None,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Response:
    """Orders and revenue per day (UTC) and currency, oldest day first."""
    await services.wait_for_read_models(runtime, min_position, "analytics", waiter=user.name)
    days = await services.sales_by_day(
        runtime,
        from_=from_.isoformat() if from_ else None,
        to=to.isoformat() if to else None,
        currency=currency,
    )
    return JSONResponse({"days": days})


@router.get("/top-customers", responses=_RESPONSES)
async def top_customers(
    runtime: RuntimeDep,
    user: Staff,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    currency: Currency = None,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Response:
    """Customers by revenue (placed, not cancelled orders), highest first."""
    await services.wait_for_read_models(runtime, min_position, "analytics", waiter=user.name)
    customers = await services.top_customers(runtime, limit=limit, currency=currency)
    return JSONResponse({"customers": customers})
