"""Products and stock: ``POST /api/v1/products``, ``POST /api/v1/products/{sku}/stock``
(operator or admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from cairn.api import commands
from cairn.api.deps import RuntimeDep, Staff
from cairn.api.schemas import ProductResult, RegisterProductRequest, ReplenishStockRequest
from cairn.orders.domain import inventory
from cairn.orders.domain.money import Money

router = APIRouter(prefix="/api/v1/products", tags=["products"])

SkuPath = Annotated[str, Path(min_length=1, max_length=64)]
_COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request (problem+json)"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Wrong role"},
    404: {"description": "Unknown product"},
    409: {"description": "Conflict"},
    412: {"description": "If-Match mismatch"},
    413: {"description": "Body too large"},
    422: {"description": "Invalid field or refused by a business rule"},
}


def _product_result(command: Any, result: Any) -> dict[str, Any]:
    return {"sku": command.sku, "version": result.version, "position": result.position}


@router.post("", status_code=201, response_model=ProductResult, responses=_COMMAND_RESPONSES)
async def register_product(
    body: RegisterProductRequest, request: Request, runtime: RuntimeDep, user: Staff
) -> Response:
    """Register a product (ProductRegistered, then StockReplenished for ``initial_stock``)."""

    def build(_: str | None) -> inventory.RegisterProduct:
        return inventory.RegisterProduct(
            sku=body.sku,
            name=body.name,
            unit_price=Money.of(body.price, body.currency),
            initial_stock=body.initial_stock,
        )

    return await commands.execute(request, runtime, user, build, _product_result, status=201)


@router.post("/{sku}/stock", response_model=ProductResult, responses=_COMMAND_RESPONSES)
async def replenish_stock(
    sku: SkuPath,
    body: ReplenishStockRequest,
    request: Request,
    runtime: RuntimeDep,
    user: Staff,
) -> Response:
    """Add stock to a registered product (404 for an unknown SKU)."""

    def build(_: str | None) -> inventory.ReplenishStock:
        return inventory.ReplenishStock(sku=sku, quantity=body.quantity)

    return await commands.execute(request, runtime, user, build, _product_result, status=200)
