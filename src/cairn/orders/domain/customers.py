"""Customers have no aggregate of their own: the one fact the log records about a customer as
such is that their personal data was forgotten (SPEC §1, crypto-shredding).

``CustomerForgotten`` is appended to ``customer-<customer_id>`` AFTER the customer's key is
deleted. Events are never rewritten, so it is how read models and downstream consumers learn to
erase the copies they made: ``order_ids`` names the orders whose rows carry the customer's name
and email. Orders it does not name were not yet projected when the key went, so their personal
fields already read back redacted. When it happened is the event's ``recorded_at``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CustomerForgotten:
    customer_id: str
    order_ids: tuple[str, ...]


def stream_id(customer_id: str) -> str:
    return f"customer-{customer_id}"
