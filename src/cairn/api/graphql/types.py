"""The object and input types of SPEC §14, in its names, built from the read side's views.

``Order`` (keyed by ``id``) and ``Product`` (keyed by ``sku``) are Apollo Federation entities:
a gateway resolves references to them through ``_entities``, with the same visibility rules as
``order`` and ``product`` (another customer's order is ``null``).
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from cairn.api import temporal
from cairn.api.graphql.context import context_of
from cairn.api.problems import ProblemError

View = dict[str, Any]


@strawberry.federation.type(keys=["sku"])
class Product:
    """A catalogue entry and its stock (operators and admins; REST's ``/inventory``)."""

    sku: strawberry.ID
    name: str
    price: str = strawberry.field(description="The catalogue unit price, a decimal string")
    currency: str
    available: int
    on_hand: int
    reserved: int
    version: int

    @classmethod
    def from_view(cls, view: View) -> Product:
        return cls(
            sku=strawberry.ID(str(view["sku"])),
            name=str(view.get("name") or ""),
            price=str(view.get("price") or "0"),
            currency=str(view.get("currency") or ""),
            available=int(view["available"]),
            on_hand=int(view["on_hand"]),
            reserved=int(view["reserved"]),
            version=int(view["version"]),
        )

    @classmethod
    async def resolve_reference(cls, info: strawberry.Info, sku: strawberry.ID) -> Product | None:
        return await load_product(info, str(sku))


async def load_product(info: strawberry.Info, sku: str) -> Product | None:
    context = context_of(info)
    context.staff()
    view = await context.loaders.products.load(sku)
    return None if view is None else Product.from_view(view)


@strawberry.type
class OrderLine:
    sku: strawberry.ID
    name: str
    quantity: int
    unit_price: str
    line_total: str

    @strawberry.field(description="The catalogue entry (operators and admins)")
    async def product(self, info: strawberry.Info) -> Product | None:
        return await load_product(info, str(self.sku))


@strawberry.type
class OrderEvent:
    type: str
    version: int
    position: int
    recorded_at: str
    data: JSON


@strawberry.federation.type(keys=["id"])
class Order:
    id: strawberry.ID
    order_number: str
    customer_id: strawberry.ID
    status: str = strawberry.field(
        description="draft, placed, confirmed, shipped, delivered, cancelled"
    )
    currency: str
    total: str
    version: int
    position: int = strawberry.field(description="The log position of the order's last event")
    cancellation_reason: str | None
    created_at: str | None
    updated_at: str | None
    items: list[OrderLine]

    @strawberry.field(
        description="The order's events, oldest first (at most CAIRN_HISTORY_MAX_PAGE)"
    )
    async def history(self, info: strawberry.Info) -> list[OrderEvent]:
        runtime = context_of(info).runtime
        events = await temporal.order_history(
            runtime.container.query_bus, str(self.id), limit=runtime.settings.history_max_page
        )
        return [
            OrderEvent(
                type=e["type"],
                version=e["version"],
                position=e["position"],
                recorded_at=e["recorded_at"],
                data=e["data"],
            )
            for e in events
        ]

    @classmethod
    def from_view(cls, view: View) -> Order:
        return cls(
            id=strawberry.ID(str(view["order_id"])),
            order_number=str(view["order_number"]),
            customer_id=strawberry.ID(str(view["customer_id"])),
            status=str(view["status"]),
            currency=str(view["currency"]),
            total=str(view["total"]),
            version=int(view["version"]),
            position=int(view.get("position") or 0),
            cancellation_reason=view.get("cancellation_reason"),
            created_at=view.get("created_at"),
            updated_at=view.get("updated_at"),
            items=[
                OrderLine(
                    sku=strawberry.ID(str(line["sku"])),
                    name=str(line.get("name") or ""),
                    quantity=int(line["quantity"]),
                    unit_price=str(line["unit_price"]),
                    line_total=str(line["line_total"]),
                )
                for line in view.get("items", ())
            ],
        )

    @classmethod
    async def resolve_reference(cls, info: strawberry.Info, id: strawberry.ID) -> Order | None:
        return await load_order(info, str(id))


async def load_order(info: strawberry.Info, order_id: str) -> Order | None:
    """The order if it exists and the caller may see it, else None (as REST's 404)."""
    context = context_of(info)
    principal = context.principal
    view = await context.loaders.orders.load(order_id)
    if view is None or not principal.can_see_customer(view.get("customer_id")):
        return None
    return Order.from_view(view)


@strawberry.type
class OrderConnection:
    nodes: list[Order]
    end_cursor: str | None
    has_next_page: bool


_REPLAYED = "the stored result of this idempotencyKey's first use: nothing was written now"


@strawberry.type
class CommandResult:
    order_id: strawberry.ID | None
    version: int
    position: int
    order_number: str | None = None
    replayed: bool = strawberry.field(default=False, description=_REPLAYED)


@strawberry.type
class ProductResult:
    sku: strawberry.ID
    version: int
    position: int
    replayed: bool = strawberry.field(default=False, description=_REPLAYED)


@strawberry.type
class Amount:
    currency: str
    amount: str


@strawberry.type
class CustomerSummary:
    customer_id: strawberry.ID
    customer_name: str | None
    order_count: int
    total_spent: list[Amount] = strawberry.field(description="Per currency")
    last_order_at: str | None

    @classmethod
    def from_view(cls, view: View) -> CustomerSummary:
        return cls(
            customer_id=strawberry.ID(str(view["customer_id"])),
            customer_name=view.get("customer_name"),
            order_count=int(view["orders"]),
            total_spent=[Amount(currency=c, amount=a) for c, a in view["total_spent"].items()],
            last_order_at=view.get("last_order_at"),
        )


@strawberry.type
class OrderStatusChange:
    order_id: strawberry.ID
    status: str
    version: int
    position: int
    recorded_at: str = strawberry.field(description="When the change was recorded (ISO 8601)")


@strawberry.input
class ShippingAddressInput:
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str


@strawberry.input
class OrderItemInput:
    sku: strawberry.ID
    quantity: int


@strawberry.input(description="Mirrors the body of POST /api/v1/orders, in camelCase")
class CreateOrderInput:
    customer_id: strawberry.ID
    customer_name: str
    customer_email: str
    currency: str
    shipping_address: ShippingAddressInput
    items: list[OrderItemInput] = strawberry.field(default_factory=list)
    order_id: strawberry.ID | None = strawberry.field(
        default=None, description="A client-chosen UUID (a new one by default)"
    )


@strawberry.input(description="Mirrors the body of POST /api/v1/products")
class RegisterProductInput:
    sku: strawberry.ID
    name: str
    price: str
    currency: str
    initial_stock: int = 0


def not_found(order_id: str) -> ProblemError:
    return ProblemError(404, "order.not_found", f"order {order_id} does not exist")
