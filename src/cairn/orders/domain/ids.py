"""Ids derived deterministically from other ids (uuid5): pure, repeatable, collision-free.

A payment and a shipment are each keyed by their order, so "at most one per order" is a
property of the stream name, and a command re-sent after a crash lands on the same stream.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Final

#: Namespace of every id cairn derives. Never change it: stored stream names depend on it.
NAMESPACE: Final = uuid.UUID("0b9a40e3-d8f6-4bb6-8d2e-b3fcd7b13b7b")


@lru_cache(maxsize=4096)
def derived_id(kind: str, source: str) -> str:
    """``uuid5(NAMESPACE, "<kind>:<source>")`` as a string (an order's payment and shipment
    ids are asked for at each of its steps: kept while in use)."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{source}"))


def payment_id_for(order_id: str) -> str:
    return derived_id("payment", order_id)


def shipment_id_for(order_id: str) -> str:
    return derived_id("shipment", order_id)
