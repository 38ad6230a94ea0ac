"""Forget a customer (SPEC §1 crypto-shredding, §12; ``POST /api/v1/admin/customers/{id}/forget``).

The customer's streams come from the log (:meth:`~cairn.store.base.EventStore.streams_of_subject`),
not from the read models: an order they have not projected yet still holds the customer's data
in its snapshot, and must be named in ``CustomerForgotten`` so that they erase it when they
reach it.

The order of the steps is what makes a crash harmless: the key goes first, so from then on
every read of the customer's events (aggregates, projections, rebuilds, the relay) sees
redacted fields; then the copies held in clear (snapshots, this process's cached aggregate
states) are dropped; then ``CustomerForgotten`` tells read models and downstream consumers to
erase their own copies. A crash between steps leaves the key deleted and the request failed;
repeating it (it is idempotent) finishes the rest. Last, best effort, the Redis views of the
orders are dropped: they carry no personal field, and expire within a minute if Redis is down.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cairn.application.repository import Repositories
from cairn.observability.logging import get_logger
from cairn.orders.codec import to_new_events
from cairn.orders.components import OrderProjections
from cairn.orders.domain import customers, orders
from cairn.orders.domain.common import check_id
from cairn.store.base import ANY, EventStore, validate_stream_id

_ORDER_PREFIX = orders.stream_id("")
log = get_logger("cairn.orders.forgetting")


@dataclass(frozen=True, slots=True)
class Forgotten:
    customer_id: str
    #: False when the customer had no key (never seen, or already forgotten).
    key_deleted: bool
    #: Every order of the customer in the log, in the order they were created.
    order_ids: tuple[str, ...]
    #: Position of the ``CustomerForgotten`` event: read models are erased once past it.
    position: int


async def forget_customer(
    store: EventStore,
    repositories: Repositories,
    customer_id: str,
    *,
    read_side: OrderProjections | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Forgotten:
    """Crypto-shred ``customer_id`` and drop every copy of their data held in clear;
    ``read_side`` is the process's read models, whose Redis order views are dropped too."""
    check_id(customer_id, "customer_id")
    stream = validate_stream_id(customers.stream_id(customer_id))
    key_deleted = await store.forget_subject(customer_id)
    streams = await store.streams_of_subject(customer_id)
    order_ids = tuple(s.removeprefix(_ORDER_PREFIX) for s in streams if s.startswith(_ORDER_PREFIX))
    for stream_id in streams:
        await store.delete_snapshots(stream_id)
        for repository in repositories.all():
            repository.forget(stream_id)
    event = customers.CustomerForgotten(customer_id, order_ids)
    recorded = to_new_events([event], [uuid.uuid4()], metadata or {})
    result = await store.append(stream, recorded, ANY)
    if read_side is not None and read_side.cache is not None:
        version = await read_side.queries.version("orders")
        if not await read_side.cache.forget(version, order_ids):
            log.warning("forget %s: Redis unreachable; its order views expire by TTL", customer_id)
    return Forgotten(customer_id, key_deleted, order_ids, result.position)
