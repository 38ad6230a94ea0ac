"""The composition root: Settings → store, repositories, command bus, query bus, adapters.

Nothing is built at import time. Tests build the same graph with fakes:

    container = await bootstrap(Settings(database_url="memory://"))
    await container.command_bus.dispatch(RegisterProduct(...))
    await container.close()

Workers (projections, sagas, relay) are built from the container (:mod:`cairn.orders.components`),
over its one SQL :class:`~cairn.sql.database.Database` and its :class:`~cairn.leases.Leases`, so
the process stays within its connection budget (:mod:`cairn.sql.budget`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.application.bus import CommandBus, QueryBus, QueryCache
from cairn.application.middleware import (
    Authorize,
    MetricHook,
    MetricsMiddleware,
    RetryPolicy,
    default_middleware,
)
from cairn.application.repository import EveryNEvents
from cairn.breakers import Breakers
from cairn.leases import Leases
from cairn.orders.codec import domain_personal_data, domain_upcasters
from cairn.orders.handlers import order_routes
from cairn.orders.queries import AggregateQueries, GetOrder, GetProduct, GetStreamHistory
from cairn.orders.repositories import OrderRepositories
from cairn.settings import Settings
from cairn.sql.budget import ConnectionBudget
from cairn.sql.database import Database
from cairn.sql.factory import open_database
from cairn.sql.postgres_connect import SessionLimits, configure_sessions
from cairn.store import EventStore, open_store

if TYPE_CHECKING:
    from cairn.orders.adapters import Carrier, PaymentGateway


@dataclass
class Container:
    """Everything one process shares. ``close()`` releases what bootstrap opened."""

    settings: Settings
    store: EventStore
    repositories: OrderRepositories
    command_bus: CommandBus
    query_bus: QueryBus
    #: Add Prometheus (or any) hooks here: ``hook(command_type, outcome, seconds)``.
    command_metrics: MetricsMiddleware
    gateway: PaymentGateway
    carrier: Carrier
    #: The process's one SQL Database (read models, saga state, checkpoints, idempotency).
    database: Database
    #: The process's leases (one PostgreSQL session for all of them).
    leases: Leases
    #: How the process's PostgreSQL connections are shared out.
    budget: ConnectionBudget
    #: The circuit breakers of the services this process calls (health and metrics show them).
    breakers: Breakers = field(default_factory=Breakers)
    owns_store: bool = True
    #: Room for other packages' components (e.g. ``extras["projections"]``).
    extras: dict[str, Any] = field(default_factory=dict)

    async def close(self) -> None:
        await self.leases.close()
        await self.database.close()
        if self.owns_store:
            await self.store.close()


async def bootstrap(
    settings: Settings,
    *,
    store: EventStore | None = None,
    gateway: PaymentGateway | None = None,
    carrier: Carrier | None = None,
    authorize: Authorize | None = None,
    metric_hooks: Sequence[MetricHook] = (),
    retry: RetryPolicy | None = None,
) -> Container:
    """Build the container from ``settings``; a given ``store`` / ``gateway`` / ``carrier``
    replaces the one settings would build (and a given store is not closed by ``close()``)."""
    owns_store = store is None
    configure_sessions(
        SessionLimits(
            settings.db_statement_timeout,
            settings.db_lock_timeout,
            settings.db_idle_in_transaction_timeout,
        )
    )
    budget = ConnectionBudget.for_url(settings.database_url, settings.db_max_connections)
    if store is None:
        store = await open_store(
            budget.store_url(settings.database_url),
            upcasters=domain_upcasters(),
            migrate=settings.auto_migrate,
            personal_data=domain_personal_data(),
            protected_categories=frozenset({"order", "payment", "shipment", "inventory"}),
        )
    try:
        if gateway is None:
            from cairn.orders.adapters import FakePaymentGateway

            gateway = FakePaymentGateway(amount_limit=settings.gateway_amount_limit)
        if carrier is None:
            from cairn.orders.adapters import FakeCarrier

            carrier = FakeCarrier()
        policy = EveryNEvents(settings.snapshot_every) if settings.snapshot_every > 0 else None
        repositories = OrderRepositories.build(store, snapshots=policy)
        middleware = default_middleware(
            store, authorize=authorize, metric_hooks=metric_hooks, retry=retry
        )
        metrics = next(m for m in middleware if isinstance(m, MetricsMiddleware))
        command_bus = CommandBus(
            store, routes=order_routes(), repositories=repositories, middleware=middleware
        )
        query_bus = QueryBus(cache=QueryCache())
        queries = AggregateQueries(repositories)
        query_bus.register(GetOrder, queries.get_order)
        query_bus.register(GetProduct, queries.get_product)
        query_bus.register(GetStreamHistory, queries.history)
        # Nothing connects until first use. With a Redis store, read models, saga state and
        # checkpoints live in ``settings.read_model_url``.
        database = open_database(settings.sql_url, max_connections=budget.sql)
        leases = Leases(settings.sql_url)
    except BaseException:
        if owns_store:
            await store.close()
        raise
    return Container(
        settings=settings,
        store=store,
        repositories=repositories,
        command_bus=command_bus,
        query_bus=query_bus,
        command_metrics=metrics,
        gateway=gateway,
        carrier=carrier,
        database=database,
        leases=leases,
        budget=budget,
        breakers=Breakers.from_settings(settings),
        owns_store=owns_store,
    )
