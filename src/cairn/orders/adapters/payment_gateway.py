"""The payment gateway port and its deterministic fake (a supported module, not a test hack).

Every call carries an ``idempotency_key`` (the saga's deterministic command id): a gateway must
answer a re-sent call with the first answer and no second effect.

The fake's rules (SPEC §10): any ``tok_*`` token is accepted, except ``tok_decline`` (declined),
``tok_timeout`` (never answers: the caller's step timeout fires) and ``tok_flaky`` (fails twice per
payment with a transient error, then succeeds). Amounts above ``amount_limit`` are declined
(no limit by default). ``latency`` delays every answer.
"""

from __future__ import annotations

import asyncio
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal

from cairn.errors import PermanentAdapterError, TransientAdapterError
from cairn.orders.adapters.ledger import Ledger, LedgerEntry

FLAKY_FAILURES = 2


@dataclass(frozen=True, slots=True)
class Authorization:
    """The gateway's answer to ``authorize``: approved with an id, or declined with a reason."""

    approved: bool
    authorization_id: str | None = None
    reason: str | None = None


class PaymentGateway(ABC):
    @abstractmethod
    async def authorize(
        self,
        *,
        idempotency_key: str,
        payment_id: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
    ) -> Authorization:
        """Hold ``amount`` on the payment method. A decline is an answer; a transient failure
        raises :class:`TransientAdapterError`."""

    @abstractmethod
    async def capture(
        self,
        *,
        idempotency_key: str,
        payment_id: str,
        authorization_id: str,
        amount: Decimal,
        currency: str,
    ) -> None:
        """Take the authorised money."""

    @abstractmethod
    async def void(self, *, idempotency_key: str, payment_id: str, authorization_id: str) -> None:
        """Release an authorisation that was not captured."""

    @abstractmethod
    async def refund(
        self,
        *,
        idempotency_key: str,
        payment_id: str,
        authorization_id: str,
        amount: Decimal,
        currency: str,
    ) -> None:
        """Give captured money back."""


class FakePaymentGateway(PaymentGateway):
    """Deterministic gateway with a ledger (see :mod:`cairn.orders.adapters.ledger`)."""

    def __init__(
        self,
        *,
        amount_limit: Decimal | None = None,
        latency: float = 0.0,
        ledger: Ledger | None = None,
    ) -> None:
        self.amount_limit = amount_limit
        self.latency = latency
        self.ledger = ledger or Ledger()

    async def _delay(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    async def authorize(
        self,
        *,
        idempotency_key: str,
        payment_id: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
    ) -> Authorization:
        await self._delay()
        if payment_method == "tok_timeout":
            with self.ledger.locked():
                self.ledger.record(
                    LedgerEntry("attempt", idempotency_key, payment_id, {"outcome": "no answer"})
                )
            await asyncio.Event().wait()  # never answers; the caller's timeout cancels us
        with self.ledger.locked():
            for operation in ("authorize", "decline"):
                seen = self.ledger.find(operation, idempotency_key)
                if seen is not None:
                    return Authorization(
                        approved=operation == "authorize",
                        authorization_id=seen.result.get("authorization_id"),
                        reason=seen.result.get("reason"),
                    )
            if payment_method == "tok_flaky":
                failures = [
                    e
                    for e in self.ledger.entries("attempt", payment_id)
                    if e.result.get("outcome") == "transient"
                ]
                if len(failures) < FLAKY_FAILURES:
                    self.ledger.record(
                        LedgerEntry(
                            "attempt", idempotency_key, payment_id, {"outcome": "transient"}
                        )
                    )
                    raise TransientAdapterError("gateway temporarily unavailable (tok_flaky)")
            reason = self._decline_reason(amount, payment_method)
            if reason is not None:
                self.ledger.record(
                    LedgerEntry(
                        "decline",
                        idempotency_key,
                        payment_id,
                        {"reason": reason, "amount": str(amount)},
                    )
                )
                return Authorization(approved=False, reason=reason)
            authorization_id = "auth_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
            self.ledger.record(
                LedgerEntry(
                    "authorize",
                    idempotency_key,
                    payment_id,
                    {
                        "authorization_id": authorization_id,
                        "amount": str(amount),
                        "currency": currency,
                    },
                )
            )
            return Authorization(approved=True, authorization_id=authorization_id)

    def _decline_reason(self, amount: Decimal, payment_method: str) -> str | None:
        if not payment_method.startswith("tok_"):
            return f"unsupported payment method {payment_method!r}"
        if payment_method == "tok_decline":
            return "card declined"
        if self.amount_limit is not None and amount > self.amount_limit:
            return f"amount {amount} is over the limit of {self.amount_limit}"
        return None

    def _once(
        self, operation: str, idempotency_key: str, payment_id: str, result: dict[str, str]
    ) -> None:
        with self.ledger.locked():
            if self.ledger.find(operation, idempotency_key) is None:
                self.ledger.record(LedgerEntry(operation, idempotency_key, payment_id, result))

    def _require_authorization(self, payment_id: str, authorization_id: str) -> None:
        with self.ledger.locked():
            known = {
                e.result.get("authorization_id")
                for e in self.ledger.entries("authorize", payment_id)
            }
        if authorization_id not in known:
            raise PermanentAdapterError(f"unknown authorisation {authorization_id!r}")

    async def capture(
        self,
        *,
        idempotency_key: str,
        payment_id: str,
        authorization_id: str,
        amount: Decimal,
        currency: str,
    ) -> None:
        await self._move_money(
            "capture", idempotency_key, payment_id, authorization_id, amount, currency
        )

    async def void(self, *, idempotency_key: str, payment_id: str, authorization_id: str) -> None:
        await self._delay()
        self._require_authorization(payment_id, authorization_id)
        self._once("void", idempotency_key, payment_id, {"authorization_id": authorization_id})

    async def refund(
        self,
        *,
        idempotency_key: str,
        payment_id: str,
        authorization_id: str,
        amount: Decimal,
        currency: str,
    ) -> None:
        await self._move_money(
            "refund", idempotency_key, payment_id, authorization_id, amount, currency
        )

    async def _move_money(
        self,
        kind: str,
        idempotency_key: str,
        payment_id: str,
        authorization_id: str,
        amount: Decimal,
        currency: str,
    ) -> None:
        """A capture or a refund against a known authorisation, recorded once per key."""
        await self._delay()
        self._require_authorization(payment_id, authorization_id)
        self._once(
            kind,
            idempotency_key,
            payment_id,
            {"authorization_id": authorization_id, "amount": str(amount), "currency": currency},
        )
