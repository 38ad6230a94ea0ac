"""Inventory read model: ``GET /api/v1/inventory/{sku}``, ``GET /api/v1/inventory``
(operator or admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import JSONResponse, Response

from cairn.api import services
from cairn.api.deps import RuntimeDep, Staff
from cairn.api.problems import ProblemError
from cairn.api.schemas import MAX_INT

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Wrong role"},
    404: {"description": "Unknown SKU"},
    503: {"description": "Read model behind min_position"},
}


@router.get("", responses=_RESPONSES)
async def list_inventory(
    runtime: RuntimeDep,
    user: Staff,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Response:
    """Every SKU in order; ``next_after`` pages on."""
    await services.wait_for_read_models(runtime, min_position, "inventory", waiter=user.name)
    items = await services.list_inventory(runtime, after=after, limit=limit)
    next_after = items[-1]["sku"] if len(items) == limit else None
    return JSONResponse({"inventory": items, "next_after": next_after})


@router.get("/{sku}", responses=_RESPONSES)
async def get_inventory(
    sku: Annotated[str, Path(min_length=1, max_length=64)],
    runtime: RuntimeDep,
    user: Staff,
    min_position: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> Response:
    """On hand, reserved and available units of one SKU."""
    await services.wait_for_read_models(runtime, min_position, "inventory", waiter=user.name)
    item = await services.get_inventory(runtime, sku)
    if item is None:
        raise ProblemError(404, "product.not_found", f"product {sku!r} does not exist")
    headers = {"ETag": f'"{item["version"]}"'} if "version" in item else {}
    return JSONResponse(item, headers=headers)
