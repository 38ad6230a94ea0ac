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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final

from cairn.sagas.engine import (
    DEADLINE_EXPIRED,
    RETRY_REQUESTED,
    STEP_FAILED,
    STEP_SUCCEEDED,
    Message,
    SagaDefinition,
    SagaStatus,
    Send,
)

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


@dataclass(frozen=True, slots=True)
class Fulfilment:
    """The saga's state. ``status`` follows SagaStatus; ``step`` is where it is."""

    status: str = "new"
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


_STATUS = {s.value: s for s in SagaStatus}


class FulfilmentSaga(SagaDefinition[Fulfilment]):
    type: ClassVar[str] = "fulfilment"

    def route(self, message: Message) -> str | None:
        if message.type not in EVENTS:
            return None
        order_id = message.data.get("order_id")
        return order_id if isinstance(order_id, str) and order_id else None

    def starts(self, message: Message) -> bool:
        return message.type == "OrderPlaced"

    def initial_state(self) -> Fulfilment:
        return Fulfilment()

    def decide(self, message: Message, state: Fulfilment) -> list[Send]:
        return transition(state, message)[1]

    def evolve(self, state: Fulfilment, message: Message) -> Fulfilment:
        return transition(state, message)[0]

    def status(self, state: Fulfilment) -> SagaStatus:
        return _STATUS.get(state.status, SagaStatus.RUNNING)

    def step(self, state: Fulfilment) -> str:
        return state.step

    def dump(self, state: Fulfilment) -> dict[str, Any]:
        return {
            "status": state.status,
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
            status=data["status"],
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


# --- the state machine -----------------------------------------------------------------------

Result = tuple[Fulfilment, list[Send]]


def transition(state: Fulfilment, message: Message) -> Result:
    """The whole workflow: (state, message) → (next state, commands to send)."""
    d = message.data
    kind = message.type
    if kind == "OrderPlaced":
        return _placed(state, d)
    if state.status == "new":
        return state, []
    if kind == "InventoryReserved":
        sku = str(d["sku"])
        if sku in state.reserved or sku not in dict(state.items):
            return state, []
        state = replace(
            state, reserved=state.reserved | {sku}, awaiting=state.awaiting - {f"reserve:{sku}"}
        )
        if state.status == "running":
            if all(s in state.reserved for s, _ in state.items):
                return _send_forward(state, "authorize_payment", _authorize(state))
            return state, []
        if state.status in ("compensating", "failed"):
            return _advance(replace(state, to_undo=(f"release:{sku}", *state.to_undo)))
        return state, []
    if kind == "InventoryReservationFailed":
        sku = str(d["sku"])
        state = replace(state, awaiting=state.awaiting - {f"reserve:{sku}"})
        reason = (
            f"insufficient stock of {sku}: requested {d.get('requested')},"
            f" available {d.get('available')}"
        )
        return _fail(state, reason)
    if kind == "PaymentAuthorized":
        if state.authorization_id is not None:
            return state, []
        state = replace(
            state,
            authorization_id=str(d["authorization_id"]),
            payment_id=str(d["payment_id"]),
            awaiting=state.awaiting - {"authorize"},
        )
        if state.status == "running":
            return _send_forward(
                state,
                "create_shipment",
                Send("create_shipment", CREATE_SHIPMENT, {"order_id": state.order_id}),
            )
        if state.status in ("compensating", "failed"):
            return _advance(replace(state, to_undo=("void", *state.to_undo)))
        return state, []
    if kind == "PaymentDeclined":
        state = replace(state, awaiting=state.awaiting - {"authorize"})
        return _fail(state, f"payment declined: {d.get('reason', '')}")
    if kind == "ShipmentCreated":
        if state.tracking_number is not None:
            return state, []
        state = replace(
            state,
            tracking_number=str(d["tracking_number"]),
            shipment_id=str(d["shipment_id"]),
            awaiting=state.awaiting - {"create_shipment"},
        )
        if state.status == "running":
            return _send_forward(
                state,
                "confirm_order",
                Send(
                    "confirm",
                    CONFIRM,
                    {
                        "order_id": state.order_id,
                        "payment_id": state.payment_id,
                        "shipment_id": state.shipment_id,
                    },
                ),
            )
        if state.status in ("compensating", "failed"):
            return _advance(replace(state, to_undo=("cancel_shipment", *state.to_undo)))
        return state, []
    if kind == "OrderConfirmed":
        state = replace(state, confirmed=True, awaiting=state.awaiting - {"confirm"})
        if state.status == "running":
            return replace(state, status="completed", step="done", outcome="confirmed"), []
        return _advance(state)
    if kind == "OrderShipped":
        if state.shipped:
            return state, []
        state = replace(state, shipped=True, step="shipped")
        sends = [
            Send(f"commit:{sku}", COMMIT, {"order_id": state.order_id, "sku": sku})
            for sku, _ in state.items
        ]
        if state.authorization_id is not None:
            sends.insert(0, Send("capture", CAPTURE, _payment_payload(state)))
        return state, sends
    if kind == "PaymentCaptured":
        return replace(state, captured=True), []
    if kind == "OrderCancelled":
        if state.order_cancelled:
            return state, []  # our own cancel_order (its success may be applied first)
        state = replace(state, order_cancelled=True)
        if (
            state.status in ("running", "completed")
            and state.outcome != "cancelled"
            and (not state.shipped)
        ):
            return _compensate(state, str(d.get("reason") or "cancelled by the customer"))
        return state, []
    if kind == STEP_SUCCEEDED:
        step = str(d.get("step"))
        if d.get("compensation") and step == state.undoing:
            if step == "cancel_order":
                state = replace(state, order_cancelled=True)
            return _advance(replace(state, undoing=None, undone=(*state.undone, step)))
        return state, []
    if kind == STEP_FAILED:
        return _step_failed(state, d)
    if kind == DEADLINE_EXPIRED:
        if state.status != "running":
            return state, []  # stale: the saga finished or is already compensating
        return _compensate(replace(state, timed_out=True), "saga deadline exceeded")
    if kind == RETRY_REQUESTED:
        if state.status != "failed":
            return state, []
        return replace(
            state, status="compensating", failed_step=None, step=f"undo:{state.undoing}"
        ), []
    return state, []


def _placed(state: Fulfilment, d: Mapping[str, Any]) -> Result:
    if state.status != "new":
        return state, []
    items = tuple((str(i["sku"]), int(i["quantity"])) for i in d.get("items", []))
    state = replace(
        state,
        status="running",
        step="reserve_inventory",
        order_id=str(d["order_id"]),
        payment_method=str(d.get("payment_method", "")),
        total=str(d.get("total", "0")),
        currency=str(d.get("currency", "")),
        items=items,
        awaiting=frozenset(f"reserve:{sku}" for sku, _ in items),
    )
    return state, [
        Send(f"reserve:{sku}", RESERVE, {"order_id": state.order_id, "sku": sku, "quantity": qty})
        for sku, qty in items
    ]


def _authorize(state: Fulfilment) -> Send:
    return Send(
        "authorize",
        AUTHORIZE,
        {
            "order_id": state.order_id,
            "amount": state.total,
            "currency": state.currency,
            "payment_method": state.payment_method,
        },
    )


def _payment_payload(state: Fulfilment) -> dict[str, Any]:
    return {
        "order_id": state.order_id,
        "authorization_id": state.authorization_id,
        "amount": state.total,
        "currency": state.currency,
    }


def _send_forward(state: Fulfilment, step: str, send: Send) -> Result:
    return replace(state, step=step, awaiting=state.awaiting | {send.step}), [send]


def _fail(state: Fulfilment, reason: str) -> Result:
    if state.status == "running":
        return _compensate(state, reason)
    if state.status in ("compensating", "failed"):
        return _advance(state)
    return state, []


def _step_failed(state: Fulfilment, d: Mapping[str, Any]) -> Result:
    step = str(d.get("step"))
    error = str(d.get("error"))
    if d.get("compensation"):
        if step == state.undoing:
            return replace(state, status="failed", failed_step=step, step=f"undo:{step}"), []
        return state, []
    if step in ("capture",) or step.startswith("commit:"):
        return state, []  # after shipping: visible in the history, nothing to compensate
    state = replace(state, awaiting=state.awaiting - {step})
    return _fail(state, f"{step} failed: {error}")


def _compensate(state: Fulfilment, reason: str) -> Result:
    """Start undoing, newest completed step first."""
    undo: list[str] = []
    if state.tracking_number is not None:
        undo.append("cancel_shipment")
    if state.authorization_id is not None:
        undo.append("refund" if state.captured else "void")
    undo.extend(f"release:{sku}" for sku, _ in state.items if sku in state.reserved)
    state = replace(state, status="compensating", reason=reason, to_undo=tuple(undo))
    return _advance(state)


def _advance(state: Fulfilment) -> Result:
    """Run the next compensation, or finish once nothing is left in flight."""
    if state.status not in ("compensating",) or state.undoing is not None:
        return state, []
    if state.to_undo:
        step, rest = state.to_undo[0], state.to_undo[1:]
        state = replace(state, to_undo=rest, undoing=step, step=f"undo:{step}")
        return state, [_undo_send(state, step)]
    if state.awaiting:
        return replace(state, step="awaiting:" + ",".join(sorted(state.awaiting))), []
    if not state.order_cancelled:
        state = replace(state, undoing="cancel_order", step="undo:cancel_order")
        return state, [
            Send(
                "cancel_order",
                CANCEL_ORDER,
                {"order_id": state.order_id, "reason": state.reason or ""},
                compensation=True,
            )
        ]
    status = "timed_out" if state.timed_out else "completed"
    return replace(state, status=status, step="cancelled", outcome="cancelled"), []


def _undo_send(state: Fulfilment, step: str) -> Send:
    if step.startswith("release:"):
        sku = step.split(":", 1)[1]
        return Send(step, RELEASE, {"order_id": state.order_id, "sku": sku}, compensation=True)
    if step == "void":
        return Send(step, VOID, _payment_payload(state), compensation=True)
    if step == "refund":
        return Send(step, REFUND, _payment_payload(state), compensation=True)
    return Send(
        step,
        CANCEL_SHIPMENT,
        {
            "order_id": state.order_id,
            "shipment_id": state.shipment_id,
            "tracking_number": state.tracking_number,
            "reason": state.reason or "",
        },
        compensation=True,
    )
