"""``Mutation``: the REST commands, through the same command bus, checks and error codes.

Each argument set is validated by REST's own pydantic request model, so the same bad input
gets the same code (``app.validation`` naming the field; ``product.not_found``,
``order.not_placeable``… from the domain); a customer acts only on its own orders
(``order.not_found`` for another's, ``auth.forbidden_customer`` when creating for another).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

import strawberry

from cairn.api import order_commands, services
from cairn.api.auth import require_same_customer
from cairn.api.graphql.context import GraphQLContext, context_of
from cairn.api.graphql.types import (
    CommandResult,
    CreateOrderInput,
    ProductResult,
    RegisterProductInput,
    not_found,
)
from cairn.api.graphql.validation import bounded_text, validated
from cairn.api.schemas import (
    AddItemRequest,
    CancelOrderRequest,
    CreateOrderRequest,
    PlaceOrderRequest,
    RegisterProductRequest,
    ReplenishStockRequest,
)
from cairn.application.messages import CommandResult as BusResult
from cairn.observability.logging import current_correlation_id
from cairn.observability.tracing import trace_metadata
from cairn.orders.domain import inventory, orders
from cairn.orders.domain.money import Money


async def _send(context: GraphQLContext, command: object, *, new_stream: bool = False) -> BusResult:
    return await services.dispatch(
        context.runtime,
        command,
        principal=context.principal,
        command_id=None,
        expected_version=None,
        correlation_id=current_correlation_id(),
        metadata=trace_metadata(),
        new_stream=new_stream,
    )


async def _visible_order(context: GraphQLContext, order_id: str) -> str:
    """The order id, once checked: a customer acts only on its own orders (REST's rule)."""
    order_id = bounded_text("orderId", order_id, 100)
    principal = context.principal
    if principal.is_customer:
        owner = await services.order_owner(context.runtime, order_id)
        if owner is None or not principal.can_see_customer(owner):
            raise not_found(order_id)
    return order_id


def _result(order_id: str, result: BusResult) -> CommandResult:
    return CommandResult(
        order_id=strawberry.ID(order_id), version=result.version, position=result.position
    )


def _snake(data: dict[str, Any]) -> dict[str, Any]:
    """A strawberry input as REST's JSON body (``None`` members left out, as if not sent)."""
    return {key: value for key, value in data.items() if value is not None}


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a draft order; a customer only for itself")
    async def create_order(self, info: strawberry.Info, input: CreateOrderInput) -> CommandResult:
        context = context_of(info)
        raw = _snake(asdict(input))
        raw["shipping_address"] = _snake(raw["shipping_address"])
        body = validated(CreateOrderRequest, raw)
        principal = context.principal
        require_same_customer(principal, body.customer_id)
        command = order_commands.create_order(body, body.order_id or str(uuid.uuid4()))
        result = await _send(context, command, new_stream=body.order_id is None)
        created = _result(command.order_id, result)
        created.order_number = next(
            (
                str(e.data.get("order_number"))
                for e in getattr(result, "events", ()) or ()
                if e.type == "OrderCreated"
            ),
            None,
        )
        return created

    @strawberry.mutation(description="Add a catalogue item to a draft order")
    async def add_item(
        self, info: strawberry.Info, order_id: strawberry.ID, sku: strawberry.ID, quantity: int
    ) -> CommandResult:
        context = context_of(info)
        body = validated(AddItemRequest, {"sku": str(sku), "quantity": quantity}, "arguments")
        target = await _visible_order(context, order_id)
        result = await _send(context, order_commands.add_item(target, body.sku, body.quantity))
        return _result(target, result)

    @strawberry.mutation(description="Place a draft order; fulfilment goes on asynchronously")
    async def place_order(
        self, info: strawberry.Info, order_id: strawberry.ID, payment_method: str
    ) -> CommandResult:
        context = context_of(info)
        body = validated(PlaceOrderRequest, {"payment_method": payment_method}, "arguments")
        target = await _visible_order(context, order_id)
        command = order_commands.place_order(target, body.payment_method)
        return _result(target, await _send(context, command))

    @strawberry.mutation(description="Cancel a draft, placed or confirmed order")
    async def cancel_order(
        self, info: strawberry.Info, order_id: strawberry.ID, reason: str | None = None
    ) -> CommandResult:
        context = context_of(info)
        body = validated(CancelOrderRequest, _snake({"reason": reason}), "arguments")
        target = await _visible_order(context, order_id)
        command = orders.CancelOrder(order_id=target, reason=body.reason)
        return _result(target, await _send(context, command))

    @strawberry.mutation(description="Ship a confirmed order (operators and admins)")
    async def ship_order(self, info: strawberry.Info, order_id: strawberry.ID) -> CommandResult:
        context = context_of(info)
        context.staff()
        target = bounded_text("orderId", order_id, 100)
        return _result(target, await _send(context, orders.ShipOrder(order_id=target)))

    @strawberry.mutation(description="Mark a shipped order delivered (operators and admins)")
    async def deliver_order(self, info: strawberry.Info, order_id: strawberry.ID) -> CommandResult:
        context = context_of(info)
        context.staff()
        target = bounded_text("orderId", order_id, 100)
        return _result(target, await _send(context, orders.DeliverOrder(order_id=target)))

    @strawberry.mutation(description="Register a product (operators and admins)")
    async def register_product(
        self, info: strawberry.Info, input: RegisterProductInput
    ) -> ProductResult:
        context = context_of(info)
        context.staff()
        body = validated(RegisterProductRequest, asdict(input))
        command = inventory.RegisterProduct(
            sku=body.sku,
            name=body.name,
            unit_price=Money.of(body.price, body.currency),
            initial_stock=body.initial_stock,
        )
        result = await _send(context, command)
        return ProductResult(
            sku=strawberry.ID(body.sku), version=result.version, position=result.position
        )

    @strawberry.mutation(description="Add stock to a registered product (operators and admins)")
    async def replenish_stock(
        self, info: strawberry.Info, sku: strawberry.ID, quantity: int
    ) -> ProductResult:
        context = context_of(info)
        context.staff()
        target = bounded_text("sku", sku, 64)
        body = validated(ReplenishStockRequest, {"quantity": quantity}, "arguments")
        result = await _send(context, inventory.ReplenishStock(sku=target, quantity=body.quantity))
        return ProductResult(
            sku=strawberry.ID(target), version=result.version, position=result.position
        )
