"""The fulfilment saga's effects: how each step it sends is carried out.

A step calls the adapter (gateway or carrier) with the step's command id as idempotency key, then
dispatches the domain command that records the answer (``AuthorizePayment`` with the
authorisation id or the decline reason, ``CreateShipment`` with the tracking number…) with the
same command id, so a re-run after a crash is recognised at both ends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from cairn.application.repository import Repository
from cairn.errors import DomainError, PermanentAdapterError
from cairn.orders import fulfilment as f
from cairn.orders.adapters.carrier import Carrier
from cairn.orders.adapters.payment_gateway import PaymentGateway
from cairn.orders.domain.ids import payment_id_for, shipment_id_for
from cairn.orders.domain.inventory import CommitStock, ReleaseStock, ReserveStock
from cairn.orders.domain.money import Money
from cairn.orders.domain.orders import CancelOrder, ConfirmOrder, OrderDetails
from cairn.orders.domain.payments import (
    AuthorizePayment,
    CapturePayment,
    RefundPayment,
    VoidPayment,
)
from cairn.orders.domain.shipping import CancelShipment, CreateShipment
from cairn.sagas.engine import Effect, StepContext
from cairn.store.base import EventStore


class Dispatch(Protocol):
    """Sends one domain command on behalf of a step (command id = ``step.command_id``).

    ``new_stream``: the command starts its aggregate's stream (a payment, a shipment), so on
    the step's first run the handler decides on the initial state without reading the stream
    first; should the stream exist after all, the append's expected version refuses it and
    the handler reads and decides again (:func:`cairn.application.handlers.handle`)."""

    def __call__(
        self, command: object, step: StepContext, *, new_stream: bool = False
    ) -> Awaitable[Any]: ...


class FulfilmentEffects:
    def __init__(
        self,
        *,
        dispatch: Dispatch,
        store: EventStore,
        gateway: PaymentGateway,
        carrier: Carrier,
        orders: Repository[Any, Any, Any],
    ) -> None:
        self._dispatch = dispatch
        self._store = store
        self._orders = orders
        self._gateway = gateway
        self._carrier = carrier

    def table(self) -> Mapping[str, Effect]:
        return {
            f.RESERVE: self.reserve,
            f.AUTHORIZE: self.authorize,
            f.CREATE_SHIPMENT: self.create_shipment,
            f.CONFIRM: self.confirm,
            f.RELEASE: self.release,
            f.VOID: self.void,
            f.REFUND: self.refund,
            f.CANCEL_SHIPMENT: self.cancel_shipment,
            f.CANCEL_ORDER: self.cancel_order,
            f.CAPTURE: self.capture,
            f.COMMIT: self.commit,
        }

    async def reserve(self, step: StepContext) -> None:
        p = step.payload
        await self._dispatch(ReserveStock(p["sku"], p["order_id"], int(p["quantity"])), step)

    async def authorize(self, step: StepContext) -> None:
        p = step.payload
        order_id = str(p["order_id"])
        amount = Decimal(str(p["amount"]))
        answer = await self._gateway.authorize(
            idempotency_key=step.command_id,
            payment_id=payment_id_for(order_id),
            amount=amount,
            currency=str(p["currency"]),
            payment_method=str(p["payment_method"]),
        )
        command = AuthorizePayment(
            order_id=order_id,
            amount=Money(amount, str(p["currency"])),
            payment_method=str(p["payment_method"]),
            authorization_id=answer.authorization_id if answer.approved else None,
            decline_reason=None if answer.approved else (answer.reason or "declined"),
        )
        await self._dispatch(command, step, new_stream=True)

    async def create_shipment(self, step: StepContext) -> None:
        order_id = str(step.payload["order_id"])
        booking = await self._carrier.create_shipment(
            idempotency_key=step.command_id,
            shipment_id=shipment_id_for(order_id),
            order_id=order_id,
            address=await self._shipping_address(order_id),
        )
        await self._dispatch(
            CreateShipment(order_id, booking.carrier, booking.tracking_number),
            step,
            new_stream=True,
        )

    async def _shipping_address(self, order_id: str) -> Mapping[str, Any]:
        """The address the order was created with. An address never changes, so the order's
        state cached in this process (the command side's, just used to place it) serves
        without a read; else the order's first event is read and opened. Forgetting the
        customer evicts the cached state in the forgetting process (:mod:`.forgetting`)."""
        stream_id = self._orders.aggregate.stream_id(order_id)
        cached = self._orders.peek(stream_id)
        details = getattr(cached.state, "order", None) if cached is not None else None
        if isinstance(details, OrderDetails):
            return dataclasses.asdict(details.shipping_address)
        for event in await self._store.read_stream(stream_id, to_version=1):
            if event.type == "OrderCreated":
                address = event.data.get("shipping_address")
                if isinstance(address, Mapping):
                    return address
        raise PermanentAdapterError(f"order {order_id} has no shipping address")

    async def confirm(self, step: StepContext) -> None:
        p = step.payload
        order_id = str(p["order_id"])
        await self._dispatch(
            ConfirmOrder(
                order_id,
                str(p.get("payment_id") or payment_id_for(order_id)),
                str(p.get("shipment_id") or shipment_id_for(order_id)),
            ),
            step,
        )

    async def release(self, step: StepContext) -> None:
        p = step.payload
        await self._dispatch(ReleaseStock(p["sku"], p["order_id"]), step)

    async def commit(self, step: StepContext) -> None:
        p = step.payload
        await self._dispatch(CommitStock(p["sku"], p["order_id"]), step)

    async def void(self, step: StepContext) -> None:
        p = step.payload
        order_id = str(p["order_id"])
        await self._gateway.void(
            idempotency_key=step.command_id,
            payment_id=payment_id_for(order_id),
            authorization_id=str(p["authorization_id"]),
        )
        await self._dispatch(VoidPayment(order_id), step)

    async def refund(self, step: StepContext) -> None:
        p = step.payload
        order_id = str(p["order_id"])
        await self._gateway.refund(
            idempotency_key=step.command_id,
            payment_id=payment_id_for(order_id),
            authorization_id=str(p["authorization_id"]),
            amount=Decimal(str(p["amount"])),
            currency=str(p["currency"]),
        )
        await self._dispatch(RefundPayment(order_id), step)

    async def capture(self, step: StepContext) -> None:
        p = step.payload
        order_id = str(p["order_id"])
        await self._gateway.capture(
            idempotency_key=step.command_id,
            payment_id=payment_id_for(order_id),
            authorization_id=str(p["authorization_id"]),
            amount=Decimal(str(p["amount"])),
            currency=str(p["currency"]),
        )
        await self._dispatch(CapturePayment(order_id), step)

    async def cancel_shipment(self, step: StepContext) -> None:
        p = step.payload
        order_id = str(p["order_id"])
        await self._carrier.cancel_shipment(
            idempotency_key=step.command_id,
            shipment_id=shipment_id_for(order_id),
            tracking_number=str(p["tracking_number"]),
        )
        await self._dispatch(CancelShipment(order_id, str(p.get("reason", ""))), step)

    async def cancel_order(self, step: StepContext) -> None:
        p = step.payload
        try:
            await self._dispatch(CancelOrder(str(p["order_id"]), str(p.get("reason", ""))), step)
        except DomainError as exc:
            # The customer (or an earlier run of this step) got there first: the goal holds.
            if exc.code != "order.already_cancelled":
                raise
