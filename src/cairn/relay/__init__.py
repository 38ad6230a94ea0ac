"""The event relay: publishes the ``$all`` log to NATS JetStream, RabbitMQ or Redis Streams as
CloudEvents, at least once, in order (SPEC §6); and the inbox that makes consumers idempotent.

``build_relay(settings, store, database=…, leases=…)`` is the one entry point the workers use.
"""

from __future__ import annotations

from typing import Any

from cairn.breakers import Breakers
from cairn.errors import PublishError, RelayError, UnsupportedBrokerURL
from cairn.leases import Leases, lease_for
from cairn.relay.brokers import Publisher, jetstream_stream_name, publisher_for
from cairn.relay.checkpoints import CheckpointStore, MemoryCheckpoints, SQLCheckpoints
from cairn.relay.cloudevents import OutgoingMessage, to_cloudevent
from cairn.relay.relay import Relay, RelayState, RelayStatus
from cairn.settings import Settings
from cairn.sql.database import Database
from cairn.sql.factory import open_database
from cairn.store.base import EventStore
from cairn.store.urls import Backend, backend_of, sqlite_path

__all__ = [
    "CheckpointStore",
    "OutgoingMessage",
    "PublishError",
    "Publisher",
    "Relay",
    "RelayError",
    "RelayState",
    "RelayStatus",
    "UnsupportedBrokerURL",
    "build_relay",
    "jetstream_stream_name",
    "publisher_for",
    "to_cloudevent",
]

#: The lease that lets one relay publish at a time per database.
LEASE_NAME = "relay"


def build_relay(
    settings: Settings,
    store: EventStore,
    *,
    database: Database | None = None,
    leases: Leases | None = None,
    breakers: Breakers | None = None,
    **options: Any,
) -> Relay | None:
    """The relay for ``settings`` (``None`` when ``CAIRN_BROKER_URL`` is unset).

    Nothing connects until :meth:`Relay.run`. ``database`` and ``leases`` are the process's own
    (the composition root closes them); without them the relay opens a Database for its
    checkpoints (closed with the relay) and a lease session of its own; without ``breakers``
    (the process's circuit breakers) the broker gets a breaker of its own. ``options`` go to
    :class:`Relay` (batch size, backoff bounds…).
    """
    if not settings.broker_url:
        return None
    publisher = publisher_for(settings.broker_url, settings.broker_topic)
    lease_name = LEASE_NAME
    url = settings.database_url
    checkpoints: CheckpointStore
    if backend_of(url) is Backend.MEMORY or (
        backend_of(url) is Backend.SQLITE and sqlite_path(url) == ":memory:"
    ):
        checkpoints = MemoryCheckpoints()
    elif database is not None:
        checkpoints = SQLCheckpoints(database)
    else:
        checkpoints = SQLCheckpoints(open_database(url), owns_db=True)
    if backend_of(url) is Backend.MEMORY:
        # A memory store is private to its object: two of them in one process are two logs,
        # each needing its own relay, so the (process-wide) memory lease is per store.
        lease_name = f"{LEASE_NAME}:{id(store)}"
    lease = leases.lease(lease_name) if leases is not None else lease_for(url, lease_name)
    breaker = (breakers or Breakers.from_settings(settings)).get("broker")
    return Relay(store, publisher, checkpoints, lease, breaker=breaker, **options)
