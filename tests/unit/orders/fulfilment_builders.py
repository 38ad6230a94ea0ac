"""Messages of one order's fulfilment saga, as the runner delivers them, and a given/when/then.

Events are the order domain's dataclasses encoded by its codec, so the saga decodes exactly what
a store would hand it; engine messages carry the fields the runner writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cairn.orders.domain import codec
from cairn.orders.domain.inventory import InventoryReservationFailed, InventoryReserved
from cairn.orders.domain.orders import (
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
    PlacedItem,
)
from cairn.orders.domain.payments import PaymentAuthorized, PaymentCaptured, PaymentDeclined
from cairn.orders.domain.shipping import ShipmentCreated
from cairn.orders.fulfilment import Fulfilment, FulfilmentSaga
from cairn.sagas.engine import (
    DEADLINE_EXPIRED,
    RETRY_REQUESTED,
    STEP_FAILED,
    STEP_SUCCEEDED,
    Message,
    SagaStatus,
    Send,
)

SAGA = FulfilmentSaga()
ORDER = "6b0f0f4e-2a36-4a0c-8a55-1f7d0a8f0a01"
PAYMENT = "pay-1"
SHIPMENT = "shp-1"


def event(e: object) -> Message:
    name, data = codec.encode_event(e)
    return Message(id=f"{name}-{sorted(data.items())!r}", type=name, data=data)


def placed(*items: tuple[str, int], token: str = "tok_ok") -> Message:
    lines = tuple(PlacedItem(sku, qty, Decimal("12.50")) for sku, qty in items)
    return event(OrderPlaced(ORDER, token, Decimal("25.00"), "EUR", lines))


def reserved(sku: str, quantity: int = 1) -> Message:
    return event(InventoryReserved(sku, ORDER, quantity))


def out_of_stock(sku: str, requested: int, available: int) -> Message:
    return event(InventoryReservationFailed(sku, ORDER, requested, available, "insufficient"))


AUTHORIZED = event(PaymentAuthorized(PAYMENT, ORDER, Decimal("25.00"), "EUR", "auth-1"))
CAPTURED = event(PaymentCaptured(PAYMENT, ORDER, Decimal("25.00"), "EUR"))
BOOKED = event(ShipmentCreated(SHIPMENT, ORDER, "fake", "T1"))
CONFIRMED = event(OrderConfirmed(ORDER, PAYMENT, SHIPMENT))
SHIPPED = event(OrderShipped(ORDER, SHIPMENT))
DEADLINE = Message(id="deadline", type=DEADLINE_EXPIRED, data={})
RETRY = Message(id="retry", type=RETRY_REQUESTED, data={})


def declined(reason: str) -> Message:
    return event(PaymentDeclined(PAYMENT, ORDER, Decimal("25.00"), "EUR", reason))


def cancelled(reason: str, previous_status: str = "placed") -> Message:
    return event(OrderCancelled(ORDER, reason, previous_status))


def succeeded(step: str, *, compensation: bool = True) -> Message:
    data = {"step": step, "kind": "k", "compensation": compensation, "attempts": 1}
    return Message(id=f"ok-{step}", type=STEP_SUCCEEDED, data=data)


def failed(step: str, error: str, *, compensation: bool = False, attempts: int = 3) -> Message:
    data = {
        "step": step,
        "kind": "k",
        "error": error,
        "compensation": compensation,
        "attempts": attempts,
    }
    return Message(id=f"failed-{step}", type=STEP_FAILED, data=data)


def given(*history: Message) -> Fulfilment:
    """The state after ``history``, each message handled once."""
    state = SAGA.initial_state()
    for message in history:
        state = SAGA.handle(state, message).state
    return state


@dataclass(frozen=True)
class Then:
    """The outcome of one message: what was sent and where the saga is."""

    sends: tuple[Send, ...]
    state: Fulfilment

    @property
    def steps(self) -> list[str]:
        return [send.step for send in self.sends]

    @property
    def status(self) -> SagaStatus:
        return SAGA.status(self.state)


def when(state: Fulfilment, message: Message) -> Then:
    transition = SAGA.handle(state, message)
    return Then(transition.sends, transition.state)


def undo_all(then: Then) -> tuple[list[str], Then]:
    """Answer each compensation with its success until nothing more is sent; the compensations
    in the order they were sent (one at a time: each waits for the previous one)."""
    order: list[str] = []
    while then.sends:
        assert len(then.sends) == 1, then.steps
        order.append(then.sends[0].step)
        then = when(then.state, succeeded(then.sends[0].step))
    return order, then
