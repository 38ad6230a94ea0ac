"""Request and response models (pydantic v2, strict: no silent coercion of types).

Amounts are decimal strings, quantities positive integers up to 1,000,000, ids bounded strings,
``country`` any two letters (only the carrier refuses addresses). The domain re-checks every
rule; these models make bad input a 422 problem naming the field before anything runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_QUANTITY = 1_000_000

Quantity = Annotated[int, Field(strict=True, gt=0, le=MAX_QUANTITY)]
Stock = Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY)]
Sku = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Id = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$"),
]
Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=500)]
OptionalText = Annotated[str, StringConstraints(strict=True, max_length=500)]
Amount = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{1,15}(\.[0-9]{1,6})?$")]
Currency = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z]{2}$")]
Email = Annotated[str, StringConstraints(strict=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
PaymentMethod = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100)]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class RegisterProductRequest(_Request):
    sku: Sku
    name: Text
    price: Amount
    currency: Currency
    initial_stock: Stock = 0


class ReplenishStockRequest(_Request):
    quantity: Quantity


class ShippingAddressModel(_Request):
    line1: Text
    line2: OptionalText | None = None
    city: Text
    postal_code: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=20)]
    country: Country


class ItemRequest(_Request):
    sku: Sku
    quantity: Quantity


class CreateOrderRequest(_Request):
    order_id: (
        Annotated[
            str,
            StringConstraints(
                strict=True,
                pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            ),
        ]
        | None
    ) = Field(default=None, description="Client-chosen UUID (a new one by default).")
    customer_id: Id
    customer_name: Text
    customer_email: Email
    currency: Currency
    shipping_address: ShippingAddressModel
    items: Annotated[list[ItemRequest], Field(max_length=100)] = []


class AddItemRequest(_Request):
    sku: Sku
    quantity: Quantity


class PlaceOrderRequest(_Request):
    payment_method: PaymentMethod = "tok_ok"


class CancelOrderRequest(_Request):
    reason: OptionalText = ""


class EmptyRequest(_Request):
    pass


class CommandResult(BaseModel):
    """What every command answers: the stream's new version and the log position."""

    version: int
    position: int


class ProductResult(CommandResult):
    sku: str


class OrderResult(CommandResult):
    order_id: str


class CreatedOrderResult(OrderResult):
    order_number: str


class OrderLineView(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: str
    line_total: str


class OrderView(BaseModel):
    order_id: str
    order_number: str
    customer_id: str
    status: str
    currency: str
    items: list[OrderLineView]
    total: str
    cancellation_reason: str | None = None
    version: int
    created_at: str | None = None
    updated_at: str | None = None
    model_config = ConfigDict(extra="allow")


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None


#: Largest integer a query parameter may carry (positions, versions): what a signed 64-bit
#: database column holds, with room to spare.
MAX_INT = 2**62
