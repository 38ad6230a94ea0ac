"""The fulfilment workflow as given(messages).when(message).then(commands, status)."""

from __future__ import annotations

from typing import Any

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


def msg(type_: str, **data: Any) -> Message:
    return Message(id=f"{type_}-{len(data)}", type=type_, data={"order_id": ORDER, **data})


def placed(*items: tuple[str, int], token: str = "tok_ok") -> Message:
    return msg(
        "OrderPlaced",
        payment_method=token,
        total="25.00",
        currency="EUR",
        items=[{"sku": s, "quantity": q, "unit_price": "12.50"} for s, q in items],
    )


RESERVED_A = msg("InventoryReserved", sku="A", quantity=1)
RESERVED_B = msg("InventoryReserved", sku="B", quantity=1)
AUTHORIZED = msg(
    "PaymentAuthorized",
    payment_id="pay-1",
    authorization_id="auth-1",
    amount="25.00",
    currency="EUR",
)
SHIPPED_BOOKED = msg("ShipmentCreated", shipment_id="shp-1", carrier="c", tracking_number="T1")
CONFIRMED = msg("OrderConfirmed", payment_id="pay-1", shipment_id="shp-1")


def given(*messages: Message) -> Fulfilment:
    state = SAGA.initial_state()
    for m in messages:
        state = SAGA.evolve(state, m)
    return state


def when(state: Fulfilment, message: Message) -> tuple[list[Send], Fulfilment]:
    return SAGA.decide(message, state), SAGA.evolve(state, message)


def steps(sends: list[Send]) -> list[str]:
    return [s.step for s in sends]


def ok(step: str) -> Message:
    return Message(id=f"ok-{step}", type=STEP_SUCCEEDED, data={"step": step, "compensation": True})


def test_order_placed_reserves_every_sku() -> None:
    sends, state = when(given(), placed(("A", 1), ("B", 2)))
    assert steps(sends) == ["reserve:A", "reserve:B"]
    assert sends[1].payload == {"order_id": ORDER, "sku": "B", "quantity": 2}
    assert SAGA.status(state) is SagaStatus.RUNNING


def test_payment_is_authorised_only_once_every_sku_is_reserved() -> None:
    state = given(placed(("A", 1), ("B", 1)))
    sends, state = when(state, RESERVED_A)
    assert sends == []
    sends, _ = when(state, RESERVED_B)
    assert steps(sends) == ["authorize"]
    assert sends[0].payload["payment_method"] == "tok_ok"


def test_authorised_payment_books_the_shipment_then_confirms_the_order() -> None:
    state = given(placed(("A", 1)), RESERVED_A)
    sends, state = when(state, AUTHORIZED)
    assert steps(sends) == ["create_shipment"]
    sends, state = when(state, SHIPPED_BOOKED)
    assert steps(sends) == ["confirm"]
    assert sends[0].payload["shipment_id"] == "shp-1"
    sends, state = when(state, CONFIRMED)
    assert sends == []
    assert SAGA.status(state) is SagaStatus.COMPLETED


def test_a_failed_reservation_releases_what_was_reserved_then_cancels_the_order() -> None:
    state = given(placed(("A", 1), ("B", 5)), RESERVED_A)
    sends, state = when(state, msg("InventoryReservationFailed", sku="B", requested=5, available=1))
    assert steps(sends) == ["release:A"]
    assert SAGA.status(state) is SagaStatus.COMPENSATING
    sends, state = when(state, ok("release:A"))
    assert steps(sends) == ["cancel_order"]
    assert "insufficient stock of B" in sends[0].payload["reason"]
    sends, state = when(state, ok("cancel_order"))
    assert sends == []
    assert SAGA.status(state) is SagaStatus.COMPLETED
    assert state.outcome == "cancelled"


def test_a_decline_releases_stock_and_cancels_with_the_decline_reason() -> None:
    state = given(placed(("A", 1)), RESERVED_A)
    sends, state = when(state, msg("PaymentDeclined", reason="card declined"))
    assert steps(sends) == ["release:A"]
    _, state = when(state, ok("release:A"))
    assert state.reason == "payment declined: card declined"


def test_carrier_refusal_compensates_in_reverse_order() -> None:
    state = given(placed(("A", 1), ("B", 1)), RESERVED_A, RESERVED_B, AUTHORIZED)
    failure = Message(
        id="f",
        type=STEP_FAILED,
        data={"step": "create_shipment", "error": "refused ZZ", "compensation": False},
    )
    order: list[str] = []
    sends, state = when(state, failure)
    while sends:
        assert len(sends) == 1
        order.append(sends[0].step)
        sends, state = when(state, ok(sends[0].step))
    assert order == ["void", "release:A", "release:B", "cancel_order"]


def test_customer_cancel_of_a_confirmed_order_undoes_everything_but_not_the_order() -> None:
    state = given(placed(("A", 1)), RESERVED_A, AUTHORIZED, SHIPPED_BOOKED, CONFIRMED)
    sends, state = when(
        state, msg("OrderCancelled", reason="changed my mind", previous_status="confirmed")
    )
    order = []
    while sends:
        order.append(sends[0].step)
        sends, state = when(state, ok(sends[0].step))
    assert order == ["cancel_shipment", "void", "release:A"]
    assert SAGA.status(state) is SagaStatus.COMPLETED


def test_a_late_success_during_compensation_is_undone_too() -> None:
    state = given(placed(("A", 1), ("B", 1)), RESERVED_A, msg("OrderCancelled", reason="bye"))
    sends, state = when(state, ok("release:A"))
    assert sends == []  # B's reservation is still in flight: wait for it
    sends, state = when(state, RESERVED_B)
    assert steps(sends) == ["release:B"]
    sends, state = when(state, ok("release:B"))
    assert sends == []  # the customer already cancelled the order
    assert SAGA.status(state) is SagaStatus.COMPLETED


def test_the_deadline_times_the_saga_out_once_in_flight_steps_have_answered() -> None:
    state = given(placed(("A", 1)), RESERVED_A)
    sends, state = when(state, Message(id="d", type=DEADLINE_EXPIRED, data={}))
    assert steps(sends) == ["release:A"]
    sends, state = when(state, ok("release:A"))
    assert sends == []  # the authorisation has not answered yet
    no_answer = Message(
        id="f",
        type=STEP_FAILED,
        data={"step": "authorize", "error": "timeout", "compensation": False},
    )
    sends, state = when(state, no_answer)
    assert steps(sends) == ["cancel_order"]
    _, state = when(state, ok("cancel_order"))
    assert SAGA.status(state) is SagaStatus.TIMED_OUT


def test_a_stale_deadline_is_ignored() -> None:
    state = given(placed(("A", 1)), RESERVED_A, AUTHORIZED, SHIPPED_BOOKED, CONFIRMED)
    sends, after = when(state, Message(id="d", type=DEADLINE_EXPIRED, data={}))
    assert sends == []
    assert after == state


def test_a_compensation_that_keeps_failing_leaves_the_saga_failed_until_retried() -> None:
    state = given(placed(("A", 1)), RESERVED_A, msg("PaymentDeclined", reason="no"))
    failure = Message(
        id="f",
        type=STEP_FAILED,
        data={"step": "release:A", "error": "db down", "compensation": True},
    )
    _, state = when(state, failure)
    assert SAGA.status(state) is SagaStatus.FAILED
    _, state = when(state, Message(id="r", type=RETRY_REQUESTED, data={}))
    assert SAGA.status(state) is SagaStatus.COMPENSATING
    sends, state = when(state, ok("release:A"))
    assert steps(sends) == ["cancel_order"]


def test_shipping_captures_the_payment_and_commits_stock_without_reopening() -> None:
    state = given(placed(("A", 1)), RESERVED_A, AUTHORIZED, SHIPPED_BOOKED, CONFIRMED)
    sends, state = when(state, msg("OrderShipped", shipment_id="shp-1"))
    assert steps(sends) == ["capture", "commit:A"]
    assert sends[0].payload["authorization_id"] == "auth-1"
    assert SAGA.status(state) is SagaStatus.COMPLETED


def test_state_survives_a_dump_and_load() -> None:
    state = given(placed(("A", 1), ("B", 2)), RESERVED_A, msg("OrderCancelled", reason="x"))
    assert SAGA.load(SAGA.dump(state)) == state


def test_events_of_other_orders_do_not_route_to_a_saga() -> None:
    assert SAGA.route(Message(id="1", type="ProductRegistered", data={"sku": "A"})) is None
    assert SAGA.route(RESERVED_A) == ORDER


def test_the_event_of_its_own_cancel_order_after_completion_changes_nothing() -> None:
    state = given(
        placed(("A", 1)),
        RESERVED_A,
        msg("PaymentDeclined", reason="no"),
        ok("release:A"),
        ok("cancel_order"),
    )
    assert SAGA.status(state) is SagaStatus.COMPLETED
    sends, after = when(state, msg("OrderCancelled", reason="payment declined: no"))
    assert sends == []
    assert after == state
