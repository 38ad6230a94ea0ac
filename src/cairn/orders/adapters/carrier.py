"""The carrier port and its deterministic fake.

The fake refuses shipping addresses whose ``country`` is ``ZZ`` (a permanent refusal: retrying
cannot help) and otherwise books a shipment with a tracking number derived from the shipment id.
Calls carry an ``idempotency_key``; a re-sent call returns the first booking.
"""

from __future__ import annotations

import asyncio
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cairn.errors import PermanentAdapterError
from cairn.orders.adapters.ledger import Ledger, LedgerEntry

REFUSED_COUNTRIES = frozenset({"ZZ"})


@dataclass(frozen=True, slots=True)
class Booking:
    carrier: str
    tracking_number: str


class Carrier(ABC):
    @abstractmethod
    async def create_shipment(
        self,
        *,
        idempotency_key: str,
        shipment_id: str,
        order_id: str,
        address: Mapping[str, Any],
    ) -> Booking:
        """Book a shipment to ``address``; raises :class:`PermanentAdapterError` if refused."""

    @abstractmethod
    async def cancel_shipment(
        self, *, idempotency_key: str, shipment_id: str, tracking_number: str
    ) -> None:
        """Cancel a booking (idempotent)."""


class FakeCarrier(Carrier):
    name = "fake-carrier"

    def __init__(self, *, latency: float = 0.0, ledger: Ledger | None = None) -> None:
        self.latency = latency
        self.ledger = ledger or Ledger()

    async def create_shipment(
        self,
        *,
        idempotency_key: str,
        shipment_id: str,
        order_id: str,
        address: Mapping[str, Any],
    ) -> Booking:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        country = str(address.get("country", "")).upper()
        if country in REFUSED_COUNTRIES:
            raise PermanentAdapterError(
                f"carrier refuses to ship to country {country!r}", country=country
            )
        with self.ledger.locked():
            seen = self.ledger.find("create_shipment", idempotency_key)
            if seen is not None:
                return Booking(self.name, str(seen.result["tracking_number"]))
            tracking = "TRK" + hashlib.sha256(shipment_id.encode()).hexdigest()[:12].upper()
            self.ledger.record(
                LedgerEntry(
                    "create_shipment",
                    idempotency_key,
                    shipment_id,
                    {"tracking_number": tracking, "order_id": order_id},
                )
            )
            return Booking(self.name, tracking)

    async def cancel_shipment(
        self, *, idempotency_key: str, shipment_id: str, tracking_number: str
    ) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        with self.ledger.locked():
            if self.ledger.find("cancel_shipment", idempotency_key) is None:
                self.ledger.record(
                    LedgerEntry(
                        "cancel_shipment",
                        idempotency_key,
                        shipment_id,
                        {"tracking_number": tracking_number},
                    )
                )
