"""The order fulfilment saga (SPEC §4), as a pure workflow.

Forward: ``OrderPlaced`` → reserve each SKU → authorise the payment → create the shipment →
confirm the order (status ``completed``). A failure (reservation failed, payment declined, a step
that failed after its retries, the carrier refusing, the saga's deadline, the customer
cancelling) compensates the completed steps one at a time in reverse order — cancel the
shipment, void (or refund) the payment, release the stock — and then cancels the order with the
reason (unless the customer already did). Outcome: ``completed`` (data.outcome ``cancelled``),
or ``timed_out`` when the deadline caused it; a compensation that cannot finish leaves the saga
``failed`` until an operator retries it.

Once completed the saga still reacts, without leaving ``completed``: ``OrderShipped`` captures the
payment and commits the stock; ``OrderCancelled`` of a confirmed order compensates as above.

A forward step advances on the event its command recorded (``InventoryReserved``,
``PaymentAuthorized``…); a compensation advances on the engine's ``StepSucceeded`` (undoing
something already undone records no event, but still succeeds).

Forward steps still in flight when compensation starts are waited for: a late success gets its
own compensation, so nothing is left reserved, authorised or booked.

This module is the saga as the engine sees it: it decodes each :class:`~cairn.sagas.engine.Message`
into a typed input (the order domain's event, or the engine's own message) and stores the state
as JSON; the state machine itself is :mod:`cairn.orders.fulfilment_workflow`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from cairn.orders.domain import codec
from cairn.orders.fulfilment_workflow import (
    AUTHORIZE,
    CANCEL_ORDER,
    CANCEL_SHIPMENT,
    CAPTURE,
    COMMIT,
    CONFIRM,
    CREATE_SHIPMENT,
    REFUND,
    RELEASE,
    RESERVE,
    VOID,
    Fulfilment,
    FulfilmentInput,
    transition,
)
from cairn.sagas.engine import (
    Message,
    SagaDefinition,
    SagaStatus,
    Transition,
    engine_message,
)

__all__ = [
    "AUTHORIZE",
    "CANCEL_ORDER",
    "CANCEL_SHIPMENT",
    "CAPTURE",
    "COMMIT",
    "CONFIRM",
    "CREATE_SHIPMENT",
    "EVENTS",
    "REFUND",
    "RELEASE",
    "RESERVE",
    "VOID",
    "Fulfilment",
    "FulfilmentSaga",
    "decode",
]

#: Events the saga listens to (all carry ``order_id``).
EVENTS: Final = frozenset(
    {
        "OrderPlaced",
        "InventoryReserved",
        "InventoryReservationFailed",
        "PaymentAuthorized",
        "PaymentDeclined",
        "PaymentCaptured",
        "ShipmentCreated",
        "OrderConfirmed",
        "OrderShipped",
        "OrderCancelled",
    }
)

#: How a state that ``OrderPlaced`` has not started yet (``status`` ``None``) is stored.
_NEW: Final = "new"


def decode(message: Message) -> FulfilmentInput | None:
    """The typed input ``message`` carries, or ``None`` if it is nothing the saga reacts to.

    Events are decoded by the order domain's codec (the runner hands over upcast, current-schema
    payloads), so the state machine reads fields, not dictionary keys."""
    if message.type in EVENTS:
        event: FulfilmentInput = codec.decode_event(message.type, message.data)
        return event
    return engine_message(message)


class FulfilmentSaga(SagaDefinition[Fulfilment]):
    type: ClassVar[str] = "fulfilment"
    #: A fulfilment saga runs for an order: operators see its key as ``order_id`` (SPEC §10).
    key_field: ClassVar[str] = "order_id"

    def route(self, message: Message) -> str | None:
        if message.type not in EVENTS:
            return None
        order_id = message.data.get("order_id")
        return order_id if isinstance(order_id, str) and order_id else None

    def starts(self, message: Message) -> bool:
        return message.type == "OrderPlaced"

    def initial_state(self) -> Fulfilment:
        return Fulfilment()

    def handle(self, state: Fulfilment, message: Message) -> Transition[Fulfilment]:
        received = decode(message)
        if received is None:
            return Transition(state)
        return transition(state, received)

    def status(self, state: Fulfilment) -> SagaStatus:
        return SagaStatus.RUNNING if state.status is None else state.status

    def step(self, state: Fulfilment) -> str:
        return state.step

    def dump(self, state: Fulfilment) -> dict[str, Any]:
        return {
            "status": _NEW if state.status is None else state.status.value,
            "step": state.step,
            "order_id": state.order_id,
            "payment_method": state.payment_method,
            "total": state.total,
            "currency": state.currency,
            "items": [[sku, qty] for sku, qty in state.items],
            "reserved": sorted(state.reserved),
            "authorization_id": state.authorization_id,
            "captured": state.captured,
            "tracking_number": state.tracking_number,
            "shipment_id": state.shipment_id,
            "payment_id": state.payment_id,
            "confirmed": state.confirmed,
            "shipped": state.shipped,
            "order_cancelled": state.order_cancelled,
            "awaiting": sorted(state.awaiting),
            "to_undo": list(state.to_undo),
            "undoing": state.undoing,
            "reason": state.reason,
            "timed_out": state.timed_out,
            "outcome": state.outcome,
            "failed_step": state.failed_step,
            "undone": list(state.undone),
        }

    def load(self, data: Mapping[str, Any]) -> Fulfilment:
        return Fulfilment(
            status=None if data["status"] == _NEW else SagaStatus(data["status"]),
            step=data["step"],
            order_id=data["order_id"],
            payment_method=data["payment_method"],
            total=data["total"],
            currency=data["currency"],
            items=tuple((str(sku), int(qty)) for sku, qty in data["items"]),
            reserved=frozenset(data["reserved"]),
            authorization_id=data["authorization_id"],
            captured=data["captured"],
            tracking_number=data["tracking_number"],
            shipment_id=data["shipment_id"],
            payment_id=data["payment_id"],
            confirmed=data["confirmed"],
            shipped=data["shipped"],
            order_cancelled=data["order_cancelled"],
            awaiting=frozenset(data["awaiting"]),
            to_undo=tuple(data["to_undo"]),
            undoing=data["undoing"],
            reason=data["reason"],
            timed_out=data["timed_out"],
            outcome=data["outcome"],
            failed_step=data["failed_step"],
            undone=tuple(data.get("undone", ())),
        )
