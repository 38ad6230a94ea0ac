"""Adapters to the outside world: the payment gateway and the carrier, each an interface plus a
deterministic fake that is a supported module (demos and tests drive every saga path with it)."""

from cairn.errors import AdapterError, PermanentAdapterError, TransientAdapterError
from cairn.orders.adapters.carrier import Booking, Carrier, FakeCarrier
from cairn.orders.adapters.ledger import Ledger, LedgerEntry
from cairn.orders.adapters.payment_gateway import Authorization, FakePaymentGateway, PaymentGateway

__all__ = [
    "AdapterError",
    "Authorization",
    "Booking",
    "Carrier",
    "FakeCarrier",
    "FakePaymentGateway",
    "Ledger",
    "LedgerEntry",
    "PaymentGateway",
    "PermanentAdapterError",
    "TransientAdapterError",
]
