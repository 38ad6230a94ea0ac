"""The payment gateway and the carrier behind circuit breakers (:mod:`cairn.breakers`).

Wrappers, so that any gateway or carrier (the fakes, a real one) gets the same protection: a
slow call is cut at the breaker's timeout, and while a service keeps failing the saga's steps
fail fast with a transient error (retried with backoff) instead of each waiting it out. A
decline or a refusal is an answer from a service that is up: it never opens the breaker.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cairn.breakers import Breaker, Breakers
from cairn.errors import PermanentAdapterError
from cairn.orders.adapters.carrier import Booking, Carrier
from cairn.orders.adapters.payment_gateway import Authorization, PaymentGateway

PAYMENT_GATEWAY = "payment_gateway"
CARRIER = "carrier"


class GuardedPaymentGateway(PaymentGateway):
    def __init__(self, inner: PaymentGateway, breaker: Breaker) -> None:
        self.inner = inner
        self.breaker = breaker

    async def authorize(
        self,
        *,
        idempotency_key: str,
        payment_id: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
    ) -> Authorization:
        return await self.breaker.call(
            lambda: self.inner.authorize(
                idempotency_key=idempotency_key,
                payment_id=payment_id,
                amount=amount,
                currency=currency,
                payment_method=payment_method,
            )
        )

    async def capture(
        self,
        *,
        idempotency_key: str,
        payment_id: str,
        authorization_id: str,
        amount: Decimal,
        currency: str,
    ) -> None:
        await self.breaker.call(
            lambda: self.inner.capture(
                idempotency_key=idempotency_key,
                payment_id=payment_id,
                authorization_id=authorization_id,
                amount=amount,
                currency=currency,
            )
        )

    async def void(self, *, idempotency_key: str, payment_id: str, authorization_id: str) -> None:
        await self.breaker.call(
            lambda: self.inner.void(
                idempotency_key=idempotency_key,
                payment_id=payment_id,
                authorization_id=authorization_id,
            )
        )

    async def refund(
        self,
        *,
        idempotency_key: str,
        payment_id: str,
        authorization_id: str,
        amount: Decimal,
        currency: str,
    ) -> None:
        await self.breaker.call(
            lambda: self.inner.refund(
                idempotency_key=idempotency_key,
                payment_id=payment_id,
                authorization_id=authorization_id,
                amount=amount,
                currency=currency,
            )
        )


class GuardedCarrier(Carrier):
    def __init__(self, inner: Carrier, breaker: Breaker) -> None:
        self.inner = inner
        self.breaker = breaker

    async def create_shipment(
        self,
        *,
        idempotency_key: str,
        shipment_id: str,
        order_id: str,
        address: Mapping[str, Any],
    ) -> Booking:
        return await self.breaker.call(
            lambda: self.inner.create_shipment(
                idempotency_key=idempotency_key,
                shipment_id=shipment_id,
                order_id=order_id,
                address=address,
            )
        )

    async def cancel_shipment(
        self, *, idempotency_key: str, shipment_id: str, tracking_number: str
    ) -> None:
        await self.breaker.call(
            lambda: self.inner.cancel_shipment(
                idempotency_key=idempotency_key,
                shipment_id=shipment_id,
                tracking_number=tracking_number,
            )
        )


def guarded(
    gateway: PaymentGateway, carrier: Carrier, breakers: Breakers
) -> tuple[PaymentGateway, Carrier]:
    """``gateway`` and ``carrier`` behind their breakers in ``breakers``."""
    answers = (PermanentAdapterError,)
    return (
        GuardedPaymentGateway(gateway, breakers.get(PAYMENT_GATEWAY, answers=answers)),
        GuardedCarrier(carrier, breakers.get(CARRIER, answers=answers)),
    )
