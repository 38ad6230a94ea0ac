"""Forget a customer (SPEC §1 crypto-shredding; ``POST /api/v1/admin/customers/{id}/forget``).

The order of the steps is what makes a crash harmless: the key goes first, so from then on
every read of the customer's events (aggregates, projections, rebuilds, the relay) sees
redacted fields; then the copies the process holds in clear (order snapshots and cached order
states) are dropped; last, ``CustomerForgotten`` tells read models and downstream consumers to
erase their own copies. A crash between steps leaves the key deleted and the request failed;
repeating it (it is idempotent) finishes the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cairn.orders.codec import to_new_events
from cairn.orders.domain import customers, orders
from cairn.orders.domain.common import check_id
from cairn.orders.repositories import OrderRepositories
from cairn.store.base import ANY, EventStore, validate_stream_id


@dataclass(frozen=True, slots=True)
class Forgotten:
    customer_id: str
    #: False when the customer had no key (never seen, or already forgotten).
    key_deleted: bool
    order_ids: tuple[str, ...]
    #: Position of the ``CustomerForgotten`` event: read models are erased once past it.
    position: int


async def forget_customer(
    store: EventStore,
    repositories: OrderRepositories,
    customer_id: str,
    order_ids: Sequence[str],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Forgotten:
    """Crypto-shred ``customer_id``; ``order_ids`` are the customer's orders known to the read
    models (orders they have not projected yet will read back redacted when they do)."""
    check_id(customer_id, "customer_id")
    stream = validate_stream_id(customers.stream_id(customer_id))
    ids = tuple(dict.fromkeys(check_id(o, "order_id") for o in order_ids))
    key_deleted = await store.forget_subject(customer_id)
    for order_id in ids:
        await store.delete_snapshots(orders.stream_id(order_id))
    # Cached order states were folded from the clear text; other states hold no personal data.
    repositories.orders.forget()
    event = customers.CustomerForgotten(customer_id, ids)
    recorded = to_new_events([event], [uuid.uuid4()], metadata or {})
    result = await store.append(stream, recorded, ANY)
    return Forgotten(customer_id, key_deleted, ids, result.position)
