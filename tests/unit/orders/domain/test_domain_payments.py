"""Payment: one per order, the gateway's answer recorded; given / when / then."""

from decimal import Decimal

import pytest

from cairn.decider.testing import given
from cairn.orders.domain import payments as p
from cairn.orders.domain.ids import payment_id_for
from cairn.orders.domain.money import Money

ORDER = "order-1"
PID = payment_id_for(ORDER)
AMOUNT = Money.of("25.00", "EUR")
AUTHORIZED = p.PaymentAuthorized(PID, ORDER, Decimal("25.00"), "EUR", "auth-1")
CAPTURED = p.PaymentCaptured(PID, ORDER, Decimal("25.00"), "EUR")


def authorize(**changes: object) -> p.AuthorizePayment:
    fields: dict[str, object] = {
        "order_id": ORDER,
        "amount": AMOUNT,
        "payment_method": "tok_ok",
        "authorization_id": "auth-1",
    }
    fields.update(changes)
    return p.AuthorizePayment(**fields)  # type: ignore[arg-type]


def test_the_payment_id_is_derived_from_the_order_id() -> None:
    assert payment_id_for(ORDER) == payment_id_for(ORDER)
    assert payment_id_for(ORDER) != payment_id_for("order-2")


def test_an_approved_authorization_is_recorded() -> None:
    given(p.decider).when(authorize()).then([AUTHORIZED])


def test_a_declined_authorization_is_recorded() -> None:
    state = (
        given(p.decider)
        .when(authorize(authorization_id=None, decline_reason="declined"))
        .then([p.PaymentDeclined(PID, ORDER, Decimal("25.00"), "EUR", "declined")])
    )
    assert state.status == "declined"


def test_exactly_one_gateway_outcome_is_recorded() -> None:
    given(p.decider).when(authorize(decline_reason="x")).then_fails("payment.outcome_invalid")
    given(p.decider).when(authorize(authorization_id=None)).then_fails("payment.outcome_invalid")


def test_a_payment_must_be_positive() -> None:
    given(p.decider).when(authorize(amount=Money.of("0", "EUR"))).then_fails(
        "payment.amount_invalid"
    )


def test_a_payment_is_authorized_at_most_once() -> None:
    given(p.decider, [AUTHORIZED]).when(authorize()).then_fails("payment.already_authorized")


def test_a_declined_payment_is_not_authorized_later() -> None:
    declined = p.PaymentDeclined(PID, ORDER, Decimal("25.00"), "EUR", "declined")
    given(p.decider, [declined]).when(authorize()).then_fails("payment.already_declined")


def test_capturing_takes_the_authorized_amount() -> None:
    given(p.decider, [AUTHORIZED]).when(p.CapturePayment(ORDER)).then([CAPTURED])


def test_capturing_twice_is_refused() -> None:
    given(p.decider, [AUTHORIZED, CAPTURED]).when(p.CapturePayment(ORDER)).then_fails(
        "payment.already_captured"
    )


def test_a_voided_payment_cannot_be_captured() -> None:
    history = [AUTHORIZED, p.PaymentVoided(PID, ORDER)]
    given(p.decider, history).when(p.CapturePayment(ORDER)).then_fails("payment.voided")


def test_voiding_releases_the_authorization() -> None:
    state = (
        given(p.decider, [AUTHORIZED])
        .when(p.VoidPayment(ORDER))
        .then([p.PaymentVoided(PID, ORDER)])
    )
    assert state.status == "voided"


def test_voiding_twice_is_a_harmless_no_op() -> None:
    given(p.decider, [AUTHORIZED, p.PaymentVoided(PID, ORDER)]).when(p.VoidPayment(ORDER)).then([])


def test_a_captured_payment_cannot_be_voided() -> None:
    given(p.decider, [AUTHORIZED, CAPTURED]).when(p.VoidPayment(ORDER)).then_fails(
        "payment.already_captured"
    )


@pytest.mark.parametrize(
    "command", [p.CapturePayment(ORDER), p.VoidPayment(ORDER), p.RefundPayment(ORDER)]
)
def test_commands_on_a_missing_payment_are_not_found(command: p.PaymentCommand) -> None:
    given(p.decider).when(command).then_fails("payment.not_found")


def test_a_full_refund_by_default() -> None:
    given(p.decider, [AUTHORIZED, CAPTURED]).when(p.RefundPayment(ORDER)).then(
        [p.PaymentRefunded(PID, ORDER, Decimal("25.00"), "EUR")]
    )


def test_partial_refunds_never_exceed_the_capture() -> None:
    partial = p.PaymentRefunded(PID, ORDER, Decimal("20.00"), "EUR")
    given(p.decider, [AUTHORIZED, CAPTURED, partial]).when(
        p.RefundPayment(ORDER, Money.of("5.01", "EUR"))
    ).then_fails("payment.refund_invalid")
    given(p.decider, [AUTHORIZED, CAPTURED, partial]).when(
        p.RefundPayment(ORDER, Money.of("5.00", "EUR"))
    ).then([p.PaymentRefunded(PID, ORDER, Decimal("5.00"), "EUR")])


def test_only_a_captured_payment_is_refunded() -> None:
    given(p.decider, [AUTHORIZED]).when(p.RefundPayment(ORDER)).then_fails(
        "payment.invalid_transition"
    )
