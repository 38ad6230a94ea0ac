"""The order application's long-running components, built from its container: the order
read models (projections), the fulfilment saga runner and (when a broker is configured) the
relay. The toolkit's :class:`cairn.workers.Workers` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Final

from cairn.application.bus import CommandBus
from cairn.application.messages import CommandContext, CommandResult
from cairn.leases import Leases
from cairn.orders.adapters.carrier import Carrier
from cairn.orders.adapters.guarded import guarded
from cairn.orders.adapters.payment_gateway import PaymentGateway
from cairn.orders.bootstrap import Container
from cairn.orders.cache import OrderCache
from cairn.orders.fulfilment import Fulfilment, FulfilmentSaga
from cairn.orders.fulfilment_effects import Dispatch, FulfilmentEffects
from cairn.orders.read_models import default_models
from cairn.orders.repositories import ORDER
from cairn.orders.views import ReadModelQueries
from cairn.projections import ProjectionEngine, ReadModel, RunnerConfig
from cairn.projections.schema import PROJECTIONS
from cairn.relay import build_relay
from cairn.relay.schema import RELAY
from cairn.sagas import SagaRunner, SagaStatus, StepContext, StepPolicy, saga_id_for
from cairn.sagas.schema import SAGAS
from cairn.settings import Settings
from cairn.sql.checkpoints import CHECKPOINTS
from cairn.sql.database import Database, Schema
from cairn.sql.factory import open_database
from cairn.store.base import EventStore
from cairn.workers import Components

#: The tables of this application's components, in the order ``cairn migrate`` applies them
#: (:func:`cairn.sql.migrate.migrate_database`): the one checkpoint table first, since the
#: components' migrations copy their older checkpoints into it. (Read-model tables are
#: versioned per rebuild and created by the projection engine itself.)
COMPONENT_SCHEMAS: Final[tuple[Schema, ...]] = (CHECKPOINTS, PROJECTIONS, SAGAS, RELAY)


class OrderProjections(ProjectionEngine):
    """The toolkit's engine over the order read models, with the application's read side:
    ``queries`` over the engine's Database, and the optional Redis cache of order views (the
    ``orders`` projection's after-commit hook, closed with the engine). Built by
    :func:`build_projections`, which sets both."""

    queries: ReadModelQueries
    cache: OrderCache | None = None

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self.cache is not None:
                await self.cache.close()


def build_projections(
    settings_or_url: Settings | str,
    store: EventStore,
    *,
    models: Sequence[ReadModel] | None = None,
    config: RunnerConfig | None = None,
    redis_url: str | None = None,
    database: Database | None = None,
    leases: Leases | None = None,
    replica: Database | None = None,
) -> OrderProjections:
    """The projection engine for the store at ``settings_or_url`` (its database URL), with the
    order read models, their queries and (``redis_url``) the cache of order views.

    Nothing connects until first use; ``run()`` / ``status()`` create the tables if missing.
    ``database`` and ``leases`` are the process's own (see :class:`ProjectionEngine`).
    ``replica``: a streaming replica the queries read instead (the engine closes it). Those
    queries bypass the cache: a reader fills it from what it read, and a lagging replica's row
    could then outlive the projection's newer value.
    """
    if isinstance(settings_or_url, Settings):
        url = settings_or_url.database_url
        redis_url = redis_url or settings_or_url.redis_url
        config = config or RunnerConfig(
            batch_size=settings_or_url.projection_batch_size,
            live_interval=settings_or_url.projection_live_interval,
        )
    else:
        url = settings_or_url
    models = list(models) if models is not None else default_models()
    cache = OrderCache(redis_url) if redis_url else None
    serves_orders = any(m.name == "orders" for m in models)
    engine = OrderProjections(
        store,
        url,
        models,
        config=config,
        database=database,
        leases=leases,
        after_commit={"orders": cache} if cache is not None and serves_orders else {},
        replica=replica,
    )
    engine.cache = cache
    engine.queries = (
        ReadModelQueries(engine.db, cache) if replica is None else ReadModelQueries(replica)
    )
    return engine


FulfilmentRunner = SagaRunner[Fulfilment]


def fulfilment_saga_id(order_id: str) -> str:
    """The id of the fulfilment saga of an order."""
    return saga_id_for(FulfilmentSaga.type, order_id)


#: The application's components: the fulfilment saga is its saga.
OrderComponents = Components[OrderProjections, Fulfilment]


def bus_dispatch(bus: CommandBus) -> Dispatch:
    """Adapt the command bus to the effects' ``dispatch(command, step)``: the step's
    deterministic id becomes the command id; causation and correlation follow the saga."""

    async def dispatch(
        command: object, step: StepContext, *, new_stream: bool = False
    ) -> CommandResult:
        context = CommandContext(
            command_id=step.command_id,
            causation_id=step.causation_id,
            correlation_id=step.correlation_id,
            user=f"saga:{step.saga_type}",
            # A step's first run has no earlier delivery to look up (StepContext.first_run),
            # nor a stream of its own making to read.
            command_id_given=not step.first_run,
            new_stream=new_stream and step.first_run,
        )
        return await bus.dispatch(command, context=context)

    return dispatch


async def build_saga_runner(
    settings: Settings,
    store: EventStore,
    bus: CommandBus,
    gateway: PaymentGateway,
    carrier: Carrier,
    *,
    database: Database | None = None,
    leases: Leases | None = None,
    partitions: int = 1,
    policy: StepPolicy | None = None,
    on_transition: Callable[[str, SagaStatus], None] | None = None,
) -> FulfilmentRunner:
    """The fulfilment saga runner over the store's database (``settings.database_url``).

    ``database`` and ``leases``: the process's own (the composition root's, which closes
    them); without them the runner opens a Database for itself (closed by ``runner.close()``)
    and a lease session per partition.
    """
    owns_db = database is None
    db = database if database is not None else open_database(settings.database_url)
    try:
        await db.migrate(CHECKPOINTS, SAGAS)
    except BaseException:
        if owns_db:
            await db.close()
        raise
    effects = FulfilmentEffects(
        dispatch=bus_dispatch(bus),
        store=store,
        gateway=gateway,
        carrier=carrier,
        orders=bus.repositories.for_category(ORDER.category),
    )
    return SagaRunner(
        db=db,
        store=store,
        definition=FulfilmentSaga(),
        effects=effects.table(),
        policy=policy or StepPolicy.from_settings(settings),
        database_url=settings.database_url,
        leases=leases,
        owns_db=owns_db,
        partitions=partitions,
        on_transition=on_transition,
    )


async def build_components(
    settings: Settings,
    container: Container,
    only: Collection[str] | None = None,
    *,
    on_saga_transition: Callable[[str, SagaStatus], None] | None = None,
) -> OrderComponents:
    """Projections, the fulfilment saga runner and (when a broker is configured) the relay, all
    over the container's one Database and one set of leases (the container closes them).
    ``only``: the names of the components to build (``projections``, ``sagas``, ``relay``;
    default all), for a process that runs or serves only some of them. The payment gateway, the
    carrier and the broker are called through the container's breakers; ``on_saga_transition``
    hears each saga's change of status (the process's metrics)."""
    wanted = set(only) if only is not None else {"projections", "sagas", "relay"}
    components = OrderComponents()
    try:
        if "projections" in wanted:
            components.projections = await _build_projections(settings, container)
        if "sagas" in wanted:
            gateway, carrier = guarded(container.gateway, container.carrier, container.breakers)
            components.sagas = await build_saga_runner(
                settings,
                container.store,
                container.command_bus,
                gateway,
                carrier,
                database=container.database,
                leases=container.leases,
                on_transition=on_saga_transition,
            )
        if settings.broker_url and "relay" in wanted:
            components.relay = build_relay(
                settings,
                container.store,
                database=container.database,
                leases=container.leases,
                breakers=container.breakers,
            )
    except BaseException:
        await components.close()
        raise
    return components


async def _build_projections(settings: Settings, container: Container) -> OrderProjections:
    replica = None
    if settings.read_database_url:
        replica = open_database(
            settings.read_database_url, max_connections=container.budget.sql, standby=True
        )
    engine = build_projections(
        settings,
        container.store,
        database=container.database,
        leases=container.leases,
        replica=replica,
    )
    # Create the read-model tables now, so queries answer (empty) before any runner starts.
    await engine.migrate()
    return engine
