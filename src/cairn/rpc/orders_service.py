"""``cairn.v1.Orders``: the REST order endpoints over gRPC, through the same application layer.

A request message becomes the REST body's dict, is validated by the same pydantic model
(``cairn.api.schemas``: a bad field is ``INVALID_ARGUMENT`` naming it), becomes the same command
(``cairn.api.order_commands``) and goes through the same command bus (``services.dispatch``);
queries read the same read model (``services.get_order``), ``min_position`` included. Customers
act on and see only their own orders, exactly as over REST.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message

from cairn.api import commands, control_chars, order_commands, services
from cairn.api.auth import Principal, require_same_customer
from cairn.api.idempotency import StoredResponse
from cairn.api.problems import ProblemError
from cairn.api.runtime import Runtime
from cairn.api.schemas import (
    MAX_INT,
    AddItemRequest,
    CancelOrderRequest,
    CreateOrderRequest,
    PlaceOrderRequest,
)
from cairn.observability.logging import current_correlation_id
from cairn.observability.tracing import trace_metadata
from cairn.rpc import auth
from cairn.rpc.calls import unary
from cairn.v1 import orders_pb2 as pb
from cairn.v1 import orders_pb2_grpc

if TYPE_CHECKING:
    from cairn.rpc.errors import Context

SERVICE = "cairn.v1.Orders"
M = TypeVar("M", bound=Message)
MAX_ORDER_ID = 100


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` unless a string in them holds a control character (SPEC §12; 400 over
    REST, ``INVALID_ARGUMENT`` here), named like ``request.customer_name``."""
    where = control_chars.in_document(fields, "request")
    if where is not None:
        raise ProblemError(
            400, control_chars.CODE, f"{where} holds a control character", location=where
        )
    return fields


def _order_id(value: str) -> str:
    """The ``order_id`` of a request on an existing order: what REST's path accepts."""
    if not 1 <= len(value) <= MAX_ORDER_ID:
        raise ProblemError(
            422, "app.validation", f"invalid request: order_id: 1 to {MAX_ORDER_ID} characters"
        )
    _checked({"order_id": value})
    return value


def _expected_version(
    request: pb.AddItemRequest | pb.PlaceOrderRequest | pb.CancelOrderRequest,
) -> int | None:
    """The request's ``expected_version`` (REST's ``If-Match``), if it has one."""
    if not request.HasField("expected_version"):
        return None
    value = request.expected_version
    if not 0 <= value <= MAX_INT:
        raise ProblemError(422, "app.validation", "invalid request: expected_version: out of range")
    return value


def _create_body(request: pb.CreateOrderRequest) -> CreateOrderRequest:
    fields: dict[str, Any] = {
        "customer_id": request.customer_id,
        "customer_name": request.customer_name,
        "customer_email": request.customer_email,
        "currency": request.currency,
        "items": [{"sku": i.sku, "quantity": i.quantity} for i in request.items],
    }
    if request.HasField("order_id"):
        fields["order_id"] = request.order_id
    if request.HasField("shipping_address"):
        address = request.shipping_address
        fields["shipping_address"] = {
            "line1": address.line1,
            "line2": address.line2 if address.HasField("line2") else None,
            "city": address.city,
            "postal_code": address.postal_code,
            "country": address.country,
        }
    return CreateOrderRequest.model_validate(_checked(fields))


class OrdersService(orders_pb2_grpc.OrdersServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def _command(
        self,
        context: Context,
        principal: Principal,
        request: Message,
        build: Callable[[str | None], object],
        respond: Callable[[Any, Any], dict[str, Any]],
        answer: type[M],
        *,
        expected_version: int | None = None,
        new_stream: bool = False,
    ) -> M:
        """Dispatch ``build(entity_id)`` and answer ``answer(**respond(command, result))``.
        With ``idempotency-key`` metadata (REST's ``Idempotency-Key``), a retry of the same
        request gets the first answer and writes nothing (trailer ``idempotent-replayed``)."""

        async def run(command_id: str | None, entity_id: str | None) -> M:
            command = build(entity_id)
            result = await services.dispatch(
                self.runtime,
                command,
                principal=principal,
                command_id=command_id,
                expected_version=expected_version,
                correlation_id=current_correlation_id(),
                metadata=trace_metadata(),
                new_stream=new_stream,
            )
            return answer(**respond(command, result))

        key = commands.checked_idempotency_key(auth.metadata_value(context, "idempotency-key"))
        if key is None:
            return await run(None, None)
        # The method is part of the request: a key reused for another method is refused.
        name = request.DESCRIPTOR.full_name
        request_hash = hashlib.sha256(
            name.encode() + b"\x1f" + request.SerializeToString(deterministic=True)
        ).hexdigest()

        async def attempt(command_id: str, entity_id: str) -> StoredResponse:
            response = await run(command_id, entity_id)
            return StoredResponse(request_hash, 200, response.SerializeToString(), {})

        stored, replayed = await commands.once(self.runtime, principal, key, request_hash, attempt)
        if replayed:
            context.set_trailing_metadata((("idempotent-replayed", "true"),))
        return answer.FromString(stored.body)

    @unary(f"{SERVICE}/CreateOrder")
    async def CreateOrder(
        self, request: pb.CreateOrderRequest, context: Context
    ) -> pb.CreateOrderResponse:
        principal = auth.caller(self.runtime, context)
        body = _create_body(request)
        require_same_customer(principal, body.customer_id)
        # Without a client-chosen id the order's id is minted here (derived from the
        # idempotency key when there is one): there is no stream to read.
        return await self._command(
            context,
            principal,
            request,
            lambda derived: order_commands.create_order(
                body, body.order_id or derived or str(uuid.uuid4())
            ),
            order_commands.created_result,
            pb.CreateOrderResponse,
            new_stream=body.order_id is None,
        )

    @unary(f"{SERVICE}/AddItem")
    async def AddItem(
        self, request: pb.AddItemRequest, context: Context
    ) -> pb.OrderCommandResponse:
        principal = auth.caller(self.runtime, context)
        order_id = _order_id(request.order_id)
        body = AddItemRequest.model_validate(
            _checked({"sku": request.sku, "quantity": request.quantity})
        )
        await order_commands.ensure_visible(self.runtime, principal, order_id)
        return await self._command(
            context,
            principal,
            request,
            lambda _: order_commands.add_item(order_id, body.sku, body.quantity),
            order_commands.order_result,
            pb.OrderCommandResponse,
            expected_version=_expected_version(request),
        )

    @unary(f"{SERVICE}/PlaceOrder")
    async def PlaceOrder(
        self, request: pb.PlaceOrderRequest, context: Context
    ) -> pb.OrderCommandResponse:
        principal = auth.caller(self.runtime, context)
        order_id = _order_id(request.order_id)
        fields = (
            {"payment_method": request.payment_method} if request.HasField("payment_method") else {}
        )
        body = PlaceOrderRequest.model_validate(_checked(fields))
        await order_commands.ensure_visible(self.runtime, principal, order_id)
        return await self._command(
            context,
            principal,
            request,
            lambda _: order_commands.place_order(order_id, body.payment_method),
            order_commands.order_result,
            pb.OrderCommandResponse,
            expected_version=_expected_version(request),
        )

    @unary(f"{SERVICE}/CancelOrder")
    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: Context
    ) -> pb.OrderCommandResponse:
        principal = auth.caller(self.runtime, context)
        order_id = _order_id(request.order_id)
        body = CancelOrderRequest.model_validate(_checked({"reason": request.reason}))
        await order_commands.ensure_visible(self.runtime, principal, order_id)
        return await self._command(
            context,
            principal,
            request,
            lambda _: order_commands.cancel_order(order_id, body.reason),
            order_commands.order_result,
            pb.OrderCommandResponse,
            expected_version=_expected_version(request),
        )

    @unary(f"{SERVICE}/GetOrder")
    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.Order:
        principal = auth.caller(self.runtime, context)
        order_id = _order_id(request.order_id)
        min_position = request.min_position if request.HasField("min_position") else None
        if min_position is not None and not 0 <= min_position <= MAX_INT:
            raise ProblemError(422, "app.validation", "invalid request: min_position: out of range")
        await services.wait_for_read_models(self.runtime, min_position, waiter=principal.name)
        view = await services.get_order(self.runtime, order_id)
        if view is None or not principal.can_see_customer(view.get("customer_id")):
            raise order_commands.order_not_found(order_id)
        return _order_message(view)


def _order_message(view: dict[str, Any]) -> pb.Order:
    """The REST order view as an ``Order`` message (only the fields the message has)."""
    return pb.Order(
        order_id=view["order_id"],
        order_number=view.get("order_number") or "",
        customer_id=view.get("customer_id") or "",
        status=view["status"],
        currency=view.get("currency") or "",
        items=[
            pb.OrderLine(
                sku=line["sku"],
                name=line.get("name") or "",
                quantity=int(line["quantity"]),
                unit_price=str(line["unit_price"]),
                line_total=str(line["line_total"]),
            )
            for line in view.get("items", ())
        ],
        total=str(view.get("total") or "0"),
        cancellation_reason=view.get("cancellation_reason"),
        version=int(view["version"]),
        created_at=view.get("created_at") or "",
        updated_at=view.get("updated_at") or "",
        position=int(view.get("position") or 0),
    )
