"""The fulfilment saga (SPEC §4) as given(messages).when(message).then(commands, status).

One behaviour per test; the paths follow SPEC §4: the happy path, a decline, out of stock, a
carrier refusal, a step timing out, transient retries exhausted, the saga deadline, a customer
cancelling, redelivery, and the capture on shipping.
"""

from __future__ import annotations

import pytest
from fulfilment_builders import (
    AUTHORIZED,
    BOOKED,
    CAPTURED,
    CONFIRMED,
    DEADLINE,
    ORDER,
    RETRY,
    SAGA,
    SHIPPED,
    cancelled,
    declined,
    failed,
    given,
    out_of_stock,
    placed,
    reserved,
    succeeded,
    undo_all,
    when,
)

from cairn.sagas.engine import Message, SagaStatus

CONFIRMED_ORDER = (placed(("A", 1)), reserved("A"), AUTHORIZED, BOOKED, CONFIRMED)

# --- the happy path --------------------------------------------------------------------------


def test_order_placed_reserves_every_sku() -> None:
    then = when(given(), placed(("A", 1), ("B", 2)))
    assert then.steps == ["reserve:A", "reserve:B"]
    assert then.sends[1].payload == {"order_id": ORDER, "sku": "B", "quantity": 2}
    assert then.status is SagaStatus.RUNNING


def test_payment_is_not_authorised_while_a_sku_is_unreserved() -> None:
    then = when(given(placed(("A", 1), ("B", 1))), reserved("A"))
    assert then.sends == ()


def test_payment_is_authorised_once_every_sku_is_reserved() -> None:
    then = when(given(placed(("A", 1), ("B", 1)), reserved("A")), reserved("B"))
    assert then.steps == ["authorize"]
    assert then.sends[0].payload == {
        "order_id": ORDER,
        "amount": "25.00",
        "currency": "EUR",
        "payment_method": "tok_ok",
    }


def test_an_authorised_payment_books_the_shipment() -> None:
    then = when(given(placed(("A", 1)), reserved("A")), AUTHORIZED)
    assert then.steps == ["create_shipment"]


def test_a_booked_shipment_confirms_the_order() -> None:
    then = when(given(placed(("A", 1)), reserved("A"), AUTHORIZED), BOOKED)
    assert then.steps == ["confirm"]
    assert then.sends[0].payload == {
        "order_id": ORDER,
        "payment_id": "pay-1",
        "shipment_id": "shp-1",
    }


def test_the_confirmed_order_completes_the_saga() -> None:
    then = when(given(*CONFIRMED_ORDER[:-1]), CONFIRMED)
    assert then.sends == ()
    assert then.status is SagaStatus.COMPLETED
    assert then.state.outcome == "confirmed"
    assert SAGA.step(then.state) == "done"


# --- failures: compensation in reverse order, then the order is cancelled --------------------


def test_a_decline_releases_the_stock_then_cancels_with_the_decline_reason() -> None:
    then = when(given(placed(("A", 1), ("B", 1)), reserved("A"), reserved("B")), declined("card"))
    assert then.status is SagaStatus.COMPENSATING
    order, then = undo_all(then)
    assert order == ["release:A", "release:B", "cancel_order"]
    assert then.state.reason == "payment declined: card"


def test_out_of_stock_releases_what_was_reserved_then_cancels_the_order() -> None:
    state = given(placed(("A", 1), ("B", 5)), reserved("A"))
    then = when(state, out_of_stock("B", requested=5, available=1))
    assert then.steps == ["release:A"]
    then = when(then.state, succeeded("release:A"))
    assert then.steps == ["cancel_order"]
    assert then.sends[0].payload == {
        "order_id": ORDER,
        "reason": "insufficient stock of B: requested 5, available 1",
    }


def test_a_compensated_saga_completes_with_outcome_cancelled() -> None:
    state = given(placed(("A", 5)), out_of_stock("A", requested=5, available=1))
    then = when(state, succeeded("cancel_order"))
    assert then.sends == ()
    assert then.status is SagaStatus.COMPLETED
    assert then.state.outcome == "cancelled"


def test_carrier_refusal_compensates_in_reverse_order() -> None:
    state = given(placed(("A", 1), ("B", 1)), reserved("A"), reserved("B"), AUTHORIZED)
    order, then = undo_all(when(state, failed("create_shipment", "refused country ZZ")))
    assert order == ["void", "release:A", "release:B", "cancel_order"]
    assert then.state.reason == "create_shipment failed: refused country ZZ"


def test_a_void_carries_the_authorisation() -> None:
    state = given(placed(("A", 1)), reserved("A"), AUTHORIZED)
    then = when(state, failed("create_shipment", "refused"))
    assert then.sends[0].payload == {
        "order_id": ORDER,
        "authorization_id": "auth-1",
        "amount": "25.00",
        "currency": "EUR",
    }
    assert then.sends[0].compensation


def test_a_step_that_times_out_cancels_the_order_with_its_stock_released() -> None:
    state = given(placed(("A", 1)), reserved("A"))
    order, then = undo_all(when(state, failed("authorize", "timed out after 5.0 s")))
    assert order == ["release:A", "cancel_order"]
    assert then.state.reason == "authorize failed: timed out after 5.0 s"
    assert then.status is SagaStatus.COMPLETED


def test_a_step_whose_transient_retries_are_exhausted_compensates_like_any_failure() -> None:
    state = given(placed(("A", 1)), reserved("A"))
    then = when(state, failed("authorize", "gateway unavailable", attempts=3))
    assert then.steps == ["release:A"]
    assert then.status is SagaStatus.COMPENSATING


def test_the_deadline_compensates_and_waits_for_steps_in_flight() -> None:
    state = given(placed(("A", 1)), reserved("A"))
    then = when(state, DEADLINE)
    assert then.steps == ["release:A"]
    then = when(then.state, succeeded("release:A"))
    assert then.sends == ()  # the authorisation has not answered yet
    assert SAGA.step(then.state) == "awaiting:authorize"


def test_the_deadline_times_the_saga_out_once_in_flight_steps_have_answered() -> None:
    state = given(placed(("A", 1)), reserved("A"), DEADLINE, succeeded("release:A"))
    then = when(state, failed("authorize", "timeout"))
    assert then.steps == ["cancel_order"]
    assert then.sends[0].payload["reason"] == "saga deadline exceeded"
    then = when(then.state, succeeded("cancel_order"))
    assert then.status is SagaStatus.TIMED_OUT


def test_a_stale_deadline_is_ignored() -> None:
    state = given(*CONFIRMED_ORDER)
    then = when(state, DEADLINE)
    assert then.sends == ()
    assert then.state == state


def test_a_compensation_that_keeps_failing_leaves_the_saga_failed() -> None:
    state = given(placed(("A", 1)), reserved("A"), declined("no"))
    then = when(state, failed("release:A", "db down", compensation=True))
    assert then.sends == ()
    assert then.status is SagaStatus.FAILED
    assert then.state.failed_step == "release:A"


def test_a_retry_resumes_the_failed_compensation() -> None:
    state = given(
        placed(("A", 1)),
        reserved("A"),
        declined("no"),
        failed("release:A", "db down", compensation=True),
    )
    then = when(state, RETRY)
    assert then.status is SagaStatus.COMPENSATING
    then = when(then.state, succeeded("release:A"))
    assert then.steps == ["cancel_order"]


def test_a_retry_of_a_saga_that_has_not_failed_is_ignored() -> None:
    state = given(placed(("A", 1)), reserved("A"))
    assert when(state, RETRY).state == state


# --- the customer cancelling -----------------------------------------------------------------


def test_a_customer_cancel_mid_saga_compensates_without_cancelling_the_order_again() -> None:
    state = given(placed(("A", 1)), reserved("A"), AUTHORIZED)
    order, then = undo_all(when(state, cancelled("changed my mind")))
    assert order == ["void", "release:A"]
    then = when(then.state, failed("create_shipment", "order cancelled"))  # was in flight
    assert then.sends == ()  # no cancel_order: the customer already cancelled it
    assert then.status is SagaStatus.COMPLETED
    assert then.state.reason == "changed my mind"


def test_customer_cancel_of_a_confirmed_order_undoes_everything_but_not_the_order() -> None:
    state = given(*CONFIRMED_ORDER)
    order, then = undo_all(when(state, cancelled("changed my mind", "confirmed")))
    assert order == ["cancel_shipment", "void", "release:A"]
    assert then.status is SagaStatus.COMPLETED
    assert then.state.outcome == "cancelled"


def test_a_late_success_during_compensation_is_undone_too() -> None:
    state = given(placed(("A", 1), ("B", 1)), reserved("A"), cancelled("bye"))
    then = when(state, succeeded("release:A"))
    assert then.sends == ()  # B's reservation is still in flight: wait for it
    then = when(then.state, reserved("B"))
    assert then.steps == ["release:B"]
    then = when(then.state, succeeded("release:B"))
    assert then.sends == ()  # the customer already cancelled the order
    assert then.status is SagaStatus.COMPLETED


def test_the_event_of_its_own_cancel_order_after_completion_changes_nothing() -> None:
    state = given(
        placed(("A", 1)),
        reserved("A"),
        declined("no"),
        succeeded("release:A"),
        succeeded("cancel_order"),
    )
    then = when(state, cancelled("payment declined: no"))
    assert then.sends == ()
    assert then.state == state


# --- after confirmation: shipping ------------------------------------------------------------


def test_shipping_captures_the_payment_and_commits_stock_without_reopening() -> None:
    then = when(given(*CONFIRMED_ORDER), SHIPPED)
    assert then.steps == ["capture", "commit:A"]
    assert then.sends[0].payload["authorization_id"] == "auth-1"
    assert then.status is SagaStatus.COMPLETED
    assert SAGA.step(then.state) == "shipped"


def test_the_captured_payment_is_recorded_and_the_saga_stays_completed() -> None:
    then = when(given(*CONFIRMED_ORDER, SHIPPED), CAPTURED)
    assert then.sends == ()
    assert then.state.captured
    assert then.status is SagaStatus.COMPLETED


def test_a_failed_capture_after_shipping_compensates_nothing() -> None:
    state = given(*CONFIRMED_ORDER, SHIPPED)
    then = when(state, failed("capture", "gateway down"))
    assert then.sends == ()
    assert then.state == state


def test_a_cancel_after_shipping_undoes_nothing() -> None:
    state = given(*CONFIRMED_ORDER, SHIPPED)
    then = when(state, cancelled("too late", "shipped"))
    assert then.sends == ()
    assert then.status is SagaStatus.COMPLETED


# --- redelivery and messages the saga does not care about ------------------------------------


@pytest.mark.parametrize(
    "history",
    [
        (placed(("A", 1)),),
        (placed(("A", 1)), reserved("A")),
        CONFIRMED_ORDER[:3],
        CONFIRMED_ORDER[:4],
        CONFIRMED_ORDER,
        (*CONFIRMED_ORDER, SHIPPED),
        (*CONFIRMED_ORDER, SHIPPED, CAPTURED),
        (placed(("A", 1)), reserved("A"), declined("no")),
        (placed(("A", 1)), reserved("A"), declined("no"), succeeded("release:A")),
    ],
    ids=lambda h: h[-1].type if isinstance(h[-1], Message) else "",
)
def test_a_redelivered_message_is_a_no_op(history: tuple[Message, ...]) -> None:
    state = given(*history)
    then = when(state, history[-1])
    assert then.sends == ()
    assert then.state == state


def test_messages_before_order_placed_are_ignored() -> None:
    then = when(given(), reserved("A"))
    assert then.sends == ()
    assert then.state == SAGA.initial_state()


def test_an_event_the_saga_does_not_know_changes_nothing() -> None:
    state = given(placed(("A", 1)))
    then = when(state, Message(id="x", type="ProductRegistered", data={"sku": "A"}))
    assert then.sends == ()
    assert then.state == state


def test_events_of_other_orders_do_not_route_to_a_saga() -> None:
    assert SAGA.route(Message(id="1", type="ProductRegistered", data={"sku": "A"})) is None
    assert SAGA.route(reserved("A")) == ORDER


def test_only_order_placed_starts_a_saga() -> None:
    assert SAGA.starts(placed(("A", 1)))
    assert not SAGA.starts(reserved("A"))


# --- the stored state --------------------------------------------------------------------------


def test_state_survives_a_dump_and_load() -> None:
    state = given(placed(("A", 1), ("B", 2)), reserved("A"), cancelled("x"))
    assert SAGA.load(SAGA.dump(state)) == state


def test_the_stored_state_keeps_its_json_shape() -> None:
    """Rows written before the state was typed load, and dump back to the same JSON."""
    stored = {
        "status": "compensating",
        "step": "undo:release:A",
        "order_id": ORDER,
        "payment_method": "tok_ok",
        "total": "25.00",
        "currency": "EUR",
        "items": [["A", 1], ["B", 2]],
        "reserved": ["A"],
        "authorization_id": None,
        "captured": False,
        "tracking_number": None,
        "shipment_id": None,
        "payment_id": None,
        "confirmed": False,
        "shipped": False,
        "order_cancelled": True,
        "awaiting": ["reserve:B"],
        "to_undo": [],
        "undoing": "release:A",
        "reason": "x",
        "timed_out": False,
        "outcome": None,
        "failed_step": None,
        "undone": [],
    }
    state = SAGA.load(stored)
    assert state.status is SagaStatus.COMPENSATING
    assert SAGA.dump(state) == stored
    assert SAGA.dump(given(placed(("A", 1), ("B", 2)), reserved("A"), cancelled("x"))) == stored


def test_a_state_not_yet_started_is_stored_as_new() -> None:
    stored = SAGA.dump(SAGA.initial_state())
    assert (stored["status"], stored["step"]) == ("new", "new")
    assert SAGA.load(stored) == SAGA.initial_state()
