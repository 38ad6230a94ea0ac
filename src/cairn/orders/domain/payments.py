"""Payment: one stream per order's payment (``payment-<payment_id>``, id derived from the order).

The gateway is an adapter outside the domain: whoever calls it (the fulfilment saga) records
its answer with AuthorizePayment, carrying either ``authorization_id`` or ``decline_reason``.
A payment is authorised at most once; voiding an already voided payment is a harmless no-op
(compensations may be repeated).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, assert_never

from cairn.decider import FunctionDecider
from cairn.errors import DomainError, NotFoundError
from cairn.orders.domain.common import check_id, check_text
from cairn.orders.domain.ids import payment_id_for
from cairn.orders.domain.money import Money

# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizePayment:
    order_id: str
    amount: Money
    payment_method: str
    #: The gateway's answer: exactly one of these is set.
    authorization_id: str | None = None
    decline_reason: str | None = None

    @property
    def payment_id(self) -> str:
        return payment_id_for(self.order_id)


@dataclass(frozen=True, slots=True)
class CapturePayment:
    order_id: str

    @property
    def payment_id(self) -> str:
        return payment_id_for(self.order_id)


@dataclass(frozen=True, slots=True)
class VoidPayment:
    order_id: str

    @property
    def payment_id(self) -> str:
        return payment_id_for(self.order_id)


@dataclass(frozen=True, slots=True)
class RefundPayment:
    order_id: str
    #: ``None`` refunds whatever is left of the captured amount.
    amount: Money | None = None

    @property
    def payment_id(self) -> str:
        return payment_id_for(self.order_id)


PaymentCommand = AuthorizePayment | CapturePayment | VoidPayment | RefundPayment

# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentAuthorized:
    payment_id: str
    order_id: str
    amount: Decimal
    currency: str
    authorization_id: str


@dataclass(frozen=True, slots=True)
class PaymentDeclined:
    payment_id: str
    order_id: str
    amount: Decimal
    currency: str
    reason: str


@dataclass(frozen=True, slots=True)
class PaymentCaptured:
    payment_id: str
    order_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class PaymentVoided:
    payment_id: str
    order_id: str


@dataclass(frozen=True, slots=True)
class PaymentRefunded:
    payment_id: str
    order_id: str
    amount: Decimal
    currency: str


PaymentEvent = (
    PaymentAuthorized | PaymentDeclined | PaymentCaptured | PaymentVoided | PaymentRefunded
)

# --- state -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoPayment:
    status: ClassVar[str] = "none"


@dataclass(frozen=True, slots=True)
class AuthorizedPayment:
    status: ClassVar[str] = "authorized"
    payment_id: str
    order_id: str
    amount: Money
    authorization_id: str


@dataclass(frozen=True, slots=True)
class DeclinedPayment:
    status: ClassVar[str] = "declined"
    payment_id: str
    order_id: str
    amount: Money
    reason: str


@dataclass(frozen=True, slots=True)
class CapturedPayment:
    status: ClassVar[str] = "captured"
    payment_id: str
    order_id: str
    amount: Money
    refunded: Money

    @property
    def refundable(self) -> Money:
        return self.amount - self.refunded


@dataclass(frozen=True, slots=True)
class VoidedPayment:
    status: ClassVar[str] = "voided"
    payment_id: str
    order_id: str
    amount: Money


PaymentState = NoPayment | AuthorizedPayment | DeclinedPayment | CapturedPayment | VoidedPayment

# --- decide ----------------------------------------------------------------------------------


def initial_state() -> PaymentState:
    return NoPayment()


def validate(command: PaymentCommand) -> None:
    check_id(command.order_id, "order_id")
    match command:
        case AuthorizePayment():
            if not isinstance(command.amount, Money) or command.amount.amount <= 0:
                raise DomainError("payment.amount_invalid", "a payment must be a positive amount")
            check_text(command.payment_method, "payment_method", limit=100)
            if (command.authorization_id is None) == (command.decline_reason is None):
                raise DomainError(
                    "payment.outcome_invalid",
                    "record exactly one gateway outcome: an authorization id or a decline reason",
                )
            if command.authorization_id is not None:
                check_text(command.authorization_id, "authorization_id", limit=200)
            if command.decline_reason is not None:
                check_text(command.decline_reason, "decline_reason")
        case RefundPayment():
            if command.amount is not None and (
                not isinstance(command.amount, Money) or command.amount.amount <= 0
            ):
                raise DomainError("payment.refund_invalid", "a refund must be a positive amount")
        case CapturePayment() | VoidPayment():
            pass
        case _:
            assert_never(command)


def decide(command: PaymentCommand, state: PaymentState) -> list[PaymentEvent]:
    validate(command)
    pid = command.payment_id
    match command, state:
        case AuthorizePayment(), NoPayment():
            value, currency = command.amount.amount, command.amount.currency
            if command.authorization_id is not None:
                return [
                    PaymentAuthorized(
                        pid, command.order_id, value, currency, command.authorization_id
                    )
                ]
            return [
                PaymentDeclined(
                    pid, command.order_id, value, currency, command.decline_reason or ""
                )
            ]
        case AuthorizePayment(), DeclinedPayment():
            raise DomainError(
                "payment.already_declined", f"the payment of order {command.order_id} was declined"
            )
        case AuthorizePayment(), _:
            raise DomainError(
                "payment.already_authorized",
                f"the payment of order {command.order_id} is already authorised",
            )
        case _, NoPayment():
            raise NotFoundError("payment.not_found", f"order {command.order_id} has no payment")
        case CapturePayment(), AuthorizedPayment():
            held = state.amount
            return [PaymentCaptured(pid, command.order_id, held.amount, held.currency)]
        case CapturePayment() | VoidPayment(), CapturedPayment():
            raise DomainError(
                "payment.already_captured",
                f"the payment of order {command.order_id} is already captured",
            )
        case CapturePayment(), VoidedPayment():
            raise DomainError(
                "payment.voided", f"the payment of order {command.order_id} was voided"
            )
        case VoidPayment(), AuthorizedPayment():
            return [PaymentVoided(pid, command.order_id)]
        case VoidPayment(), VoidedPayment():
            return []  # compensations may be repeated
        case RefundPayment(), CapturedPayment():
            refund = state.refundable if command.amount is None else command.amount
            if refund.amount <= 0 or refund > state.refundable:
                raise DomainError(
                    "payment.refund_invalid",
                    f"at most {state.refundable} can be refunded, not {refund}",
                )
            return [PaymentRefunded(pid, command.order_id, refund.amount, refund.currency)]
    raise DomainError(
        "payment.invalid_transition",
        f"{type(command).__name__} is not allowed for a payment that is {state.status}",
        status=state.status,
    )


# --- evolve ----------------------------------------------------------------------------------


def evolve(state: PaymentState, event: PaymentEvent) -> PaymentState:
    match event:
        case PaymentAuthorized():
            amount = Money(event.amount, event.currency)
            return AuthorizedPayment(
                event.payment_id, event.order_id, amount, event.authorization_id
            )
        case PaymentDeclined():
            amount = Money(event.amount, event.currency)
            return DeclinedPayment(event.payment_id, event.order_id, amount, event.reason)
        case PaymentCaptured():
            amount = Money(event.amount, event.currency)
            return CapturedPayment(
                event.payment_id, event.order_id, amount, Money.zero(event.currency)
            )
        case PaymentVoided():
            if isinstance(state, AuthorizedPayment):
                return VoidedPayment(state.payment_id, state.order_id, state.amount)
            return state
        case PaymentRefunded():
            if isinstance(state, CapturedPayment):
                refunded = state.refunded + Money(event.amount, event.currency)
                return CapturedPayment(state.payment_id, state.order_id, state.amount, refunded)
            return state
        case _:
            assert_never(event)


decider: FunctionDecider[PaymentCommand, PaymentState, PaymentEvent] = FunctionDecider(
    decide, evolve, initial_state
)


def stream_id(payment_id: str) -> str:
    return f"payment-{payment_id}"
