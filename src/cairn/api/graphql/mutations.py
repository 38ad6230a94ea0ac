"""``Mutation``: the REST commands, through the same command bus, checks and error codes.

Each argument set is validated by REST's own pydantic request model, so the same bad input
gets the same code (``app.validation`` naming the field; ``product.not_found``,
``order.not_placeable``… from the domain); a customer acts only on its own orders
(``order.not_found`` for another's, ``auth.forbidden_customer`` when creating for another).

Every mutation takes REST's two headers as arguments (a document may hold several mutations,
so they belong to each, not to the request): ``idempotencyKey`` (``Idempotency-Key``: a retry
with the same key and arguments gets the first result, ``replayed: true``, and writes nothing;
the same key with other arguments is ``app.idempotency_key_reused``) and, on an existing
stream, ``expectedVersion`` (``If-Match``: another version is ``store.concurrency``). Keys are
the caller's, shared with REST and gRPC (``cairn.api.commands.once``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import strawberry

from cairn.api import commands, order_commands, services
from cairn.api.auth import require_same_customer
from cairn.api.graphql.context import GraphQLContext, context_of
from cairn.api.graphql.types import (
    CommandResult,
    CreateOrderInput,
    ProductResult,
    RegisterProductInput,
    not_found,
)
from cairn.api.graphql.validation import bounded_text, non_negative, validated
from cairn.api.idempotency import StoredResponse
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

IdempotencyKey = Annotated[
    str | None,
    strawberry.argument(
        description="REST's Idempotency-Key: a retry with the same key and arguments gets the "
        "first result (replayed: true) and writes nothing"
    ),
]
ExpectedVersion = Annotated[
    int | None,
    strawberry.argument(
        description="REST's If-Match: the stream version the command expects; another is "
        "refused (store.concurrency)"
    ),
]
Answer = TypeVar("Answer", CommandResult, ProductResult)


async def _command(
    context: GraphQLContext,
    mutation: str,
    arguments: Mapping[str, Any],
    build: Callable[[str | None], object],
    respond: Callable[[Any, BusResult], dict[str, Any]],
    answer: type[Answer],
    *,
    idempotency_key: str | None,
    expected_version: int | None = None,
    new_stream: bool = False,
) -> Answer:
    """Dispatch ``build(entity_id)`` and answer ``answer(**respond(command, result))``; with an
    ``idempotency_key``, once per key (``entity_id`` and the command id derive from it), the
    ``arguments`` of ``mutation`` being the request a reused key is compared with."""
    expected = non_negative("expectedVersion", expected_version)

    async def run(command_id: str | None, entity_id: str | None) -> dict[str, Any]:
        command = build(entity_id)
        result = await services.dispatch(
            context.runtime,
            command,
            principal=context.principal,
            command_id=command_id,
            expected_version=expected,
            correlation_id=current_correlation_id(),
            metadata=trace_metadata(),
            new_stream=new_stream,
        )
        return respond(command, result)

    key = commands.checked_idempotency_key(idempotency_key)
    if key is None:
        return answer(**await run(None, None))
    request = json.dumps(
        ["graphql", mutation, arguments, expected], sort_keys=True, separators=(",", ":")
    )
    request_hash = hashlib.sha256(request.encode("utf-8", "surrogatepass")).hexdigest()

    async def attempt(command_id: str, entity_id: str) -> StoredResponse:
        fields = await run(command_id, entity_id)
        return StoredResponse(request_hash, 200, json.dumps(fields).encode(), {})

    stored, replayed = await commands.once(
        context.runtime, context.principal, key, request_hash, attempt
    )
    return answer(**json.loads(stored.body), replayed=replayed)


async def _on_order(
    context: GraphQLContext,
    mutation: str,
    target: str,
    arguments: Mapping[str, Any],
    build: Callable[[], object],
    idempotency_key: str | None,
    expected_version: int | None,
) -> CommandResult:
    """:func:`_command` for a command on the existing order ``target``."""
    return await _command(
        context,
        mutation,
        {"order_id": target, **arguments},
        lambda _: build(),
        order_commands.order_result,
        CommandResult,
        idempotency_key=idempotency_key,
        expected_version=expected_version,
    )


async def _staff_on_order(
    info: strawberry.Info,
    mutation: str,
    order_id: str,
    command: Callable[..., object],
    idempotency_key: str | None,
    expected_version: int | None,
) -> CommandResult:
    """An operator's command with no argument but the order (``command(order_id=…)``)."""
    context = context_of(info)
    context.staff()
    target = bounded_text("orderId", order_id, 100)
    return await _on_order(
        context,
        mutation,
        target,
        {},
        lambda: command(order_id=target),
        idempotency_key,
        expected_version,
    )


def _product_result(command: Any, result: BusResult) -> dict[str, Any]:
    return {"sku": command.sku, "version": result.version, "position": result.position}


async def _visible_order(context: GraphQLContext, order_id: str) -> str:
    """The order id, once checked: a customer acts only on its own orders (REST's rule)."""
    order_id = bounded_text("orderId", order_id, 100)
    principal = context.principal
    if principal.is_customer:
        owner = await services.order_owner(context.runtime, order_id)
        if owner is None or not principal.can_see_customer(owner):
            raise not_found(order_id)
    return order_id


def _snake(data: dict[str, Any]) -> dict[str, Any]:
    """A strawberry input as REST's JSON body (``None`` members left out, as if not sent)."""
    return {key: value for key, value in data.items() if value is not None}


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a draft order; a customer only for itself")
    async def create_order(
        self,
        info: strawberry.Info,
        input: CreateOrderInput,
        idempotency_key: IdempotencyKey = None,
    ) -> CommandResult:
        context = context_of(info)
        raw = _snake(asdict(input))
        raw["shipping_address"] = _snake(raw["shipping_address"])
        body = validated(CreateOrderRequest, raw)
        require_same_customer(context.principal, body.customer_id)
        # Without a client-chosen id the order's id is minted here (derived from the
        # idempotency key when there is one): there is no stream to read.
        return await _command(
            context,
            "createOrder",
            body.model_dump(mode="json"),
            lambda derived: order_commands.create_order(
                body, body.order_id or derived or str(uuid.uuid4())
            ),
            order_commands.created_result,
            CommandResult,
            idempotency_key=idempotency_key,
            new_stream=body.order_id is None,
        )

    @strawberry.mutation(description="Add a catalogue item to a draft order")
    async def add_item(
        self,
        info: strawberry.Info,
        order_id: strawberry.ID,
        sku: strawberry.ID,
        quantity: int,
        idempotency_key: IdempotencyKey = None,
        expected_version: ExpectedVersion = None,
    ) -> CommandResult:
        context = context_of(info)
        body = validated(AddItemRequest, {"sku": str(sku), "quantity": quantity}, "arguments")
        target = await _visible_order(context, order_id)
        return await _on_order(
            context,
            "addItem",
            target,
            body.model_dump(mode="json"),
            lambda: order_commands.add_item(target, body.sku, body.quantity),
            idempotency_key,
            expected_version,
        )

    @strawberry.mutation(description="Place a draft order; fulfilment goes on asynchronously")
    async def place_order(
        self,
        info: strawberry.Info,
        order_id: strawberry.ID,
        payment_method: str,
        idempotency_key: IdempotencyKey = None,
        expected_version: ExpectedVersion = None,
    ) -> CommandResult:
        context = context_of(info)
        body = validated(PlaceOrderRequest, {"payment_method": payment_method}, "arguments")
        target = await _visible_order(context, order_id)
        return await _on_order(
            context,
            "placeOrder",
            target,
            body.model_dump(mode="json"),
            lambda: order_commands.place_order(target, body.payment_method),
            idempotency_key,
            expected_version,
        )

    @strawberry.mutation(description="Cancel a draft, placed or confirmed order")
    async def cancel_order(
        self,
        info: strawberry.Info,
        order_id: strawberry.ID,
        reason: str | None = None,
        idempotency_key: IdempotencyKey = None,
        expected_version: ExpectedVersion = None,
    ) -> CommandResult:
        context = context_of(info)
        body = validated(CancelOrderRequest, _snake({"reason": reason}), "arguments")
        target = await _visible_order(context, order_id)
        return await _on_order(
            context,
            "cancelOrder",
            target,
            body.model_dump(mode="json"),
            lambda: order_commands.cancel_order(target, body.reason),
            idempotency_key,
            expected_version,
        )

    @strawberry.mutation(description="Ship a confirmed order (operators and admins)")
    async def ship_order(
        self,
        info: strawberry.Info,
        order_id: strawberry.ID,
        idempotency_key: IdempotencyKey = None,
        expected_version: ExpectedVersion = None,
    ) -> CommandResult:
        return await _staff_on_order(
            info, "shipOrder", order_id, orders.ShipOrder, idempotency_key, expected_version
        )

    @strawberry.mutation(description="Mark a shipped order delivered (operators and admins)")
    async def deliver_order(
        self,
        info: strawberry.Info,
        order_id: strawberry.ID,
        idempotency_key: IdempotencyKey = None,
        expected_version: ExpectedVersion = None,
    ) -> CommandResult:
        return await _staff_on_order(
            info, "deliverOrder", order_id, orders.DeliverOrder, idempotency_key, expected_version
        )

    @strawberry.mutation(description="Register a product (operators and admins)")
    async def register_product(
        self,
        info: strawberry.Info,
        input: RegisterProductInput,
        idempotency_key: IdempotencyKey = None,
    ) -> ProductResult:
        context = context_of(info)
        context.staff()
        body = validated(RegisterProductRequest, asdict(input))
        return await _command(
            context,
            "registerProduct",
            body.model_dump(mode="json"),
            lambda _: inventory.RegisterProduct(
                sku=body.sku,
                name=body.name,
                unit_price=Money.of(body.price, body.currency),
                initial_stock=body.initial_stock,
            ),
            _product_result,
            ProductResult,
            idempotency_key=idempotency_key,
        )

    @strawberry.mutation(description="Add stock to a registered product (operators and admins)")
    async def replenish_stock(
        self,
        info: strawberry.Info,
        sku: strawberry.ID,
        quantity: int,
        idempotency_key: IdempotencyKey = None,
        expected_version: ExpectedVersion = None,
    ) -> ProductResult:
        context = context_of(info)
        context.staff()
        target = bounded_text("sku", sku, 64)
        body = validated(ReplenishStockRequest, {"quantity": quantity}, "arguments")
        return await _command(
            context,
            "replenishStock",
            {"sku": target, **body.model_dump(mode="json")},
            lambda _: inventory.ReplenishStock(sku=target, quantity=body.quantity),
            _product_result,
            ProductResult,
            idempotency_key=idempotency_key,
            expected_version=expected_version,
        )
