"""The fulfilment saga's state machine (SPEC §4): pure, typed, one function per reaction.

:func:`transition` takes the saga's state and one decoded input — an order-domain event or one
of the engine's own messages — and returns the next state together with the commands to send.
It is a ``match`` over the closed :data:`FulfilmentInput` union ending in ``assert_never``, so a
new input cannot be forgotten; each case hands over to a small ``_on_…`` reaction.

Two helpers carry the rules every reaction shares:

- :func:`_compensate` turns a failure into the list of compensations, newest completed step
  first (cancel the shipment, void or refund the payment, release each SKU);
- :func:`_advance` runs them one at a time, waits for forward steps still in flight (a late
  success is queued for undoing by :func:`_forward_or_undo`), then cancels the order and
  settles the saga as ``completed`` (outcome ``cancelled``) or ``timed_out``.

Everything here is a function of its arguments: no clock, no ids, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeAlias, assert_never

from cairn.orders.domain.inventory import InventoryReservationFailed, InventoryReserved
from cairn.orders.domain.orders import OrderCancelled, OrderConfirmed, OrderPlaced, OrderShipped
from cairn.orders.domain.payments import PaymentAuthorized, PaymentCaptured, PaymentDeclined
from cairn.orders.domain.shipping import ShipmentCreated
from cairn.sagas.engine import (
    DeadlineExpired,
    EngineMessage,
    RetryRequested,
    SagaStatus,
    Send,
    StepFailed,
    StepSucceeded,
    Transition,
)

# Step kinds (each is run by an effect in cairn.orders.fulfilment_effects).
RESERVE = "reserve_stock"
AUTHORIZE = "authorize_payment"
CREATE_SHIPMENT = "create_shipment"
CONFIRM = "confirm_order"
RELEASE = "release_stock"
VOID = "void_payment"
REFUND = "refund_payment"
CANCEL_SHIPMENT = "cancel_shipment"
CANCEL_ORDER = "cancel_order"
CAPTURE = "capture_payment"
COMMIT = "commit_stock"

#: The order-domain events the saga reacts to (all carry ``order_id``).
FulfilmentEvent: TypeAlias = (
    OrderPlaced
    | InventoryReserved
    | InventoryReservationFailed
    | PaymentAuthorized
    | PaymentDeclined
    | PaymentCaptured
    | ShipmentCreated
    | OrderConfirmed
    | OrderShipped
    | OrderCancelled
)
#: Everything :func:`transition` accepts.
FulfilmentInput: TypeAlias = FulfilmentEvent | EngineMessage

#: Statuses in which compensation is under way (``failed``: stuck on one, awaiting a retry).
_UNDOING: Final = frozenset({SagaStatus.COMPENSATING, SagaStatus.FAILED})


@dataclass(frozen=True, slots=True)
class Fulfilment:
    """The saga's state. ``status`` is ``None`` until ``OrderPlaced`` starts it (stored as
    ``"new"``); ``step`` is a short human name of where it is."""

    status: SagaStatus | None = None
    step: str = "new"
    order_id: str = ""
    payment_method: str = ""
    total: str = "0"
    currency: str = ""
    #: (sku, quantity) per order line.
    items: tuple[tuple[str, int], ...] = ()
    reserved: frozenset[str] = frozenset()
    authorization_id: str | None = None
    captured: bool = False
    tracking_number: str | None = None
    shipment_id: str | None = None
    payment_id: str | None = None
    confirmed: bool = False
    shipped: bool = False
    order_cancelled: bool = False
    #: Forward steps sent and not yet answered.
    awaiting: frozenset[str] = frozenset()
    #: Compensations still to run, next first; ``undoing`` is the one in flight.
    to_undo: tuple[str, ...] = ()
    undoing: str | None = None
    reason: str | None = None
    timed_out: bool = False
    outcome: str | None = None
    #: Failed compensation, while the saga is ``failed``.
    failed_step: str | None = None
    undone: tuple[str, ...] = field(default=())


def transition(state: Fulfilment, received: FulfilmentInput) -> Transition[Fulfilment]:
    """The whole workflow: (state, input) → (next state, commands to send)."""
    if state.status is None and not isinstance(received, OrderPlaced):
        return Transition(state)  # only OrderPlaced starts a saga
    match received:
        case OrderPlaced():
            return _on_placed(state, received)
        case InventoryReserved():
            return _on_reserved(state, received)
        case InventoryReservationFailed():
            return _on_reservation_failed(state, received)
        case PaymentAuthorized():
            return _on_authorized(state, received)
        case PaymentDeclined():
            state = replace(state, awaiting=state.awaiting - {"authorize"})
            return _fail(state, f"payment declined: {received.reason}")
        case PaymentCaptured():
            return Transition(replace(state, captured=True))
        case ShipmentCreated():
            return _on_shipment_created(state, received)
        case OrderConfirmed():
            return _on_confirmed(state)
        case OrderShipped():
            return _on_shipped(state)
        case OrderCancelled():
            return _on_order_cancelled(state, received)
        case StepSucceeded():
            return _on_step_succeeded(state, received)
        case StepFailed():
            return _on_step_failed(state, received)
        case DeadlineExpired():
            return _on_deadline(state)
        case RetryRequested():
            return _on_retry(state)
        case _:
            assert_never(received)


# --- forward: reserve → authorise → ship → confirm ------------------------------------------


def _on_placed(state: Fulfilment, placed: OrderPlaced) -> Transition[Fulfilment]:
    """Start: reserve every line at once (reservations are independent of each other)."""
    if state.status is not None:
        return Transition(state)  # redelivered
    items = tuple((item.sku, item.quantity) for item in placed.items)
    state = replace(
        state,
        status=SagaStatus.RUNNING,
        step="reserve_inventory",
        order_id=placed.order_id,
        payment_method=placed.payment_method,
        total=str(placed.total),
        currency=placed.currency,
        items=items,
        awaiting=frozenset(f"reserve:{sku}" for sku, _ in items),
    )
    sends = tuple(
        Send(f"reserve:{sku}", RESERVE, {"order_id": state.order_id, "sku": sku, "quantity": qty})
        for sku, qty in items
    )
    return Transition(state, sends)


def _on_reserved(state: Fulfilment, reserved: InventoryReserved) -> Transition[Fulfilment]:
    """One SKU is held; the payment is authorised only once every SKU is."""
    sku = reserved.sku
    if sku in state.reserved or sku not in dict(state.items):
        return Transition(state)  # redelivered, or not ours
    state = replace(
        state, reserved=state.reserved | {sku}, awaiting=state.awaiting - {f"reserve:{sku}"}
    )
    return _forward_or_undo(state, f"release:{sku}", _authorize_once_all_reserved)


def _authorize_once_all_reserved(state: Fulfilment) -> Transition[Fulfilment]:
    if all(sku in state.reserved for sku, _ in state.items):
        return _send_forward(state, "authorize_payment", _authorize(state))
    return Transition(state)


def _on_reservation_failed(
    state: Fulfilment, failed: InventoryReservationFailed
) -> Transition[Fulfilment]:
    state = replace(state, awaiting=state.awaiting - {f"reserve:{failed.sku}"})
    reason = (
        f"insufficient stock of {failed.sku}: requested {failed.requested},"
        f" available {failed.available}"
    )
    return _fail(state, reason)


def _on_authorized(state: Fulfilment, authorized: PaymentAuthorized) -> Transition[Fulfilment]:
    """The payment is held: book the shipment."""
    if state.authorization_id is not None:
        return Transition(state)  # redelivered
    state = replace(
        state,
        authorization_id=authorized.authorization_id,
        payment_id=authorized.payment_id,
        awaiting=state.awaiting - {"authorize"},
    )
    return _forward_or_undo(state, "void", _create_shipment)


def _create_shipment(state: Fulfilment) -> Transition[Fulfilment]:
    send = Send("create_shipment", CREATE_SHIPMENT, {"order_id": state.order_id})
    return _send_forward(state, "create_shipment", send)


def _on_shipment_created(state: Fulfilment, created: ShipmentCreated) -> Transition[Fulfilment]:
    """The carrier booked it: confirm the order."""
    if state.tracking_number is not None:
        return Transition(state)  # redelivered
    state = replace(
        state,
        tracking_number=created.tracking_number,
        shipment_id=created.shipment_id,
        awaiting=state.awaiting - {"create_shipment"},
    )
    return _forward_or_undo(state, "cancel_shipment", _confirm)


def _confirm(state: Fulfilment) -> Transition[Fulfilment]:
    payload = {
        "order_id": state.order_id,
        "payment_id": state.payment_id,
        "shipment_id": state.shipment_id,
    }
    return _send_forward(state, "confirm_order", Send("confirm", CONFIRM, payload))


def _on_confirmed(state: Fulfilment) -> Transition[Fulfilment]:
    """The saga's goal: ``completed``. (Confirmed while compensating — the confirm was in flight
    — it only stops being awaited.)"""
    state = replace(state, confirmed=True, awaiting=state.awaiting - {"confirm"})
    if state.status is SagaStatus.RUNNING:
        done = replace(state, status=SagaStatus.COMPLETED, step="done", outcome="confirmed")
        return Transition(done)
    return _advance(state)


def _forward_or_undo(
    state: Fulfilment, undo: str, forward: Callable[[Fulfilment], Transition[Fulfilment]]
) -> Transition[Fulfilment]:
    """A forward step succeeded: go on while running; once compensating, it succeeded late and
    is undone too (``undo`` first: it is the newest), so nothing stays reserved or booked."""
    if state.status is SagaStatus.RUNNING:
        return forward(state)
    if state.status in _UNDOING:
        return _advance(replace(state, to_undo=(undo, *state.to_undo)))
    return Transition(state)


def _send_forward(state: Fulfilment, step: str, send: Send) -> Transition[Fulfilment]:
    return Transition(replace(state, step=step, awaiting=state.awaiting | {send.step}), (send,))


def _authorize(state: Fulfilment) -> Send:
    payload = {
        "order_id": state.order_id,
        "amount": state.total,
        "currency": state.currency,
        "payment_method": state.payment_method,
    }
    return Send("authorize", AUTHORIZE, payload)


def _payment_payload(state: Fulfilment) -> dict[str, Any]:
    return {
        "order_id": state.order_id,
        "authorization_id": state.authorization_id,
        "amount": state.total,
        "currency": state.currency,
    }


# --- after the goal: shipping ----------------------------------------------------------------


def _on_shipped(state: Fulfilment) -> Transition[Fulfilment]:
    """Capture the payment and commit the stock. These are sends of a finished saga: the status
    stays as it is (SPEC §4: the capture does not keep the saga running)."""
    if state.shipped:
        return Transition(state)  # redelivered
    state = replace(state, shipped=True, step="shipped")
    commits = tuple(
        Send(f"commit:{sku}", COMMIT, {"order_id": state.order_id, "sku": sku})
        for sku, _ in state.items
    )
    if state.authorization_id is None:
        return Transition(state, commits)
    return Transition(state, (Send("capture", CAPTURE, _payment_payload(state)), *commits))


# --- failures and the engine's messages ------------------------------------------------------


def _on_order_cancelled(state: Fulfilment, cancelled: OrderCancelled) -> Transition[Fulfilment]:
    """The customer cancelled: undo what was done, unless it is too late (shipped) or the saga
    already wound down. Our own ``cancel_order`` lands here too, and changes nothing more."""
    if state.order_cancelled:
        return Transition(state)  # ours (its success may be applied first), or redelivered
    state = replace(state, order_cancelled=True)
    reopenable = state.status in (SagaStatus.RUNNING, SagaStatus.COMPLETED)
    if reopenable and state.outcome != "cancelled" and not state.shipped:
        return _compensate(state, cancelled.reason or "cancelled by the customer")
    return Transition(state)


def _on_step_succeeded(state: Fulfilment, succeeded: StepSucceeded) -> Transition[Fulfilment]:
    """The compensation in flight is done: run the next one."""
    step = succeeded.step
    if not succeeded.compensation or step != state.undoing:
        return Transition(state)  # redelivered, or not a compensation
    if step == "cancel_order":
        state = replace(state, order_cancelled=True)
    return _advance(replace(state, undoing=None, undone=(*state.undone, step)))


def _on_step_failed(state: Fulfilment, failed: StepFailed) -> Transition[Fulfilment]:
    """A compensation that fails for good parks the saga as ``failed`` (an operator retries
    it); a forward step that fails for good is a failure like a decline."""
    step = failed.step
    if failed.compensation:
        if step != state.undoing:
            return Transition(state)
        return Transition(
            replace(state, status=SagaStatus.FAILED, failed_step=step, step=f"undo:{step}")
        )
    if step == "capture" or step.startswith("commit:"):
        return Transition(state)  # after shipping: visible in the history, nothing to compensate
    state = replace(state, awaiting=state.awaiting - {step})
    return _fail(state, f"{step} failed: {failed.error}")


def _on_deadline(state: Fulfilment) -> Transition[Fulfilment]:
    if state.status is not SagaStatus.RUNNING:
        return Transition(state)  # stale: the saga finished or is already compensating
    return _compensate(replace(state, timed_out=True), "saga deadline exceeded")


def _on_retry(state: Fulfilment) -> Transition[Fulfilment]:
    """Resume compensation where it failed; the runner re-runs the failed step itself."""
    if state.status is not SagaStatus.FAILED:
        return Transition(state)
    resumed = replace(
        state, status=SagaStatus.COMPENSATING, failed_step=None, step=f"undo:{state.undoing}"
    )
    return Transition(resumed)


# --- compensation ----------------------------------------------------------------------------


def _fail(state: Fulfilment, reason: str) -> Transition[Fulfilment]:
    """A step failed: compensate if running; if already compensating, the failed step was one
    being waited for, so compensation may now go on."""
    if state.status is SagaStatus.RUNNING:
        return _compensate(state, reason)
    if state.status in _UNDOING:
        return _advance(state)
    return Transition(state)


def _compensate(state: Fulfilment, reason: str) -> Transition[Fulfilment]:
    """Start undoing, newest completed step first."""
    undo: list[str] = []
    if state.tracking_number is not None:
        undo.append("cancel_shipment")
    if state.authorization_id is not None:
        undo.append("refund" if state.captured else "void")
    undo.extend(f"release:{sku}" for sku, _ in state.items if sku in state.reserved)
    state = replace(state, status=SagaStatus.COMPENSATING, reason=reason, to_undo=tuple(undo))
    return _advance(state)


def _advance(state: Fulfilment) -> Transition[Fulfilment]:
    """Run the next compensation, or finish once nothing is left in flight. One at a time: each
    waits for the previous one to succeed, so the order of undoing is the order of the list."""
    if state.status is not SagaStatus.COMPENSATING or state.undoing is not None:
        return Transition(state)
    if state.to_undo:
        step, rest = state.to_undo[0], state.to_undo[1:]
        state = replace(state, to_undo=rest, undoing=step, step=f"undo:{step}")
        return Transition(state, (_undo_send(state, step),))
    if state.awaiting:
        return Transition(replace(state, step="awaiting:" + ",".join(sorted(state.awaiting))))
    if not state.order_cancelled:
        state = replace(state, undoing="cancel_order", step="undo:cancel_order")
        payload = {"order_id": state.order_id, "reason": state.reason or ""}
        return Transition(state, (Send("cancel_order", CANCEL_ORDER, payload, compensation=True),))
    status = SagaStatus.TIMED_OUT if state.timed_out else SagaStatus.COMPLETED
    return Transition(replace(state, status=status, step="cancelled", outcome="cancelled"))


def _undo_send(state: Fulfilment, step: str) -> Send:
    """The command that undoes ``step`` (a name from :func:`_compensate`)."""
    payload: Mapping[str, Any]
    match step.split(":", 1):
        case ["release", sku]:
            return Send(step, RELEASE, {"order_id": state.order_id, "sku": sku}, compensation=True)
        case ["void"]:
            return Send(step, VOID, _payment_payload(state), compensation=True)
        case ["refund"]:
            return Send(step, REFUND, _payment_payload(state), compensation=True)
        case ["cancel_shipment"]:
            payload = {
                "order_id": state.order_id,
                "shipment_id": state.shipment_id,
                "tracking_number": state.tracking_number,
                "reason": state.reason or "",
            }
            return Send(step, CANCEL_SHIPMENT, payload, compensation=True)
        case _:
            raise ValueError(f"no compensation named {step!r}")
