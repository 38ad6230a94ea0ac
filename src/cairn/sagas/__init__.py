"""Sagas: the generic engine (:mod:`.engine`, :mod:`.runner`, :mod:`.deadlines`,
:mod:`.schema`) and its first user, the order fulfilment saga (:mod:`.fulfilment`, with its
effects in :mod:`.fulfilment_effects`). See docs/sagas.md.

    runner = await build_saga_runner(settings, store, bus, gateway, carrier)
    task = asyncio.create_task(runner.run())          # forever; cancel to stop
    await runner.list("failed", limit=100)            # operators
    await runner.get(saga_id); await runner.history(saga_id); await runner.retry(saga_id)
    await runner.close()
"""

from __future__ import annotations

from typing import Any

from cairn.adapters.carrier import Carrier
from cairn.adapters.payment_gateway import PaymentGateway
from cairn.leases import Leases
from cairn.sagas.engine import (
    Message,
    SagaDefinition,
    SagaRecord,
    SagaStatus,
    Send,
    StepContext,
    StepLogEntry,
    command_id_for,
    saga_id_for,
)
from cairn.sagas.fulfilment import Fulfilment, FulfilmentSaga
from cairn.sagas.runner import SagaRunner, StepPolicy
from cairn.settings import Settings
from cairn.sql.database import Database
from cairn.sql.factory import open_database
from cairn.store.base import EventStore

__all__ = [
    "Fulfilment",
    "FulfilmentSaga",
    "Message",
    "SagaDefinition",
    "SagaRecord",
    "SagaRunner",
    "SagaStatus",
    "Send",
    "StepContext",
    "StepLogEntry",
    "StepPolicy",
    "build_saga_runner",
    "command_id_for",
    "fulfilment_saga_id",
    "saga_id_for",
]

FulfilmentRunner = SagaRunner[Fulfilment]


def fulfilment_saga_id(order_id: str) -> str:
    """The id of the fulfilment saga of an order."""
    return saga_id_for(FulfilmentSaga.type, order_id)


def bus_dispatch(bus: Any) -> Any:
    """Adapt the command bus to the effects' ``dispatch(command, step)``: the step's
    deterministic id becomes the command id; causation and correlation follow the saga."""
    from cairn.application.messages import CommandContext

    async def dispatch(command: object, step: StepContext) -> Any:
        context = CommandContext(
            command_id=step.command_id,
            causation_id=step.causation_id,
            correlation_id=step.correlation_id,
            user=f"saga:{step.saga_type}",
        )
        return await bus.dispatch(command, context=context)

    return dispatch


async def build_saga_runner(
    settings: Settings,
    store: EventStore,
    bus: Any,
    gateway: PaymentGateway,
    carrier: Carrier,
    *,
    database: Database | None = None,
    leases: Leases | None = None,
    partitions: int = 1,
    policy: StepPolicy | None = None,
) -> FulfilmentRunner:
    """The fulfilment saga runner over the store's database (``settings.database_url``).

    ``database`` and ``leases``: the process's own (the composition root's, which closes
    them); without them the runner opens a Database for itself (closed by ``runner.close()``)
    and a lease session per partition.
    """
    from cairn.sagas.fulfilment_effects import FulfilmentEffects
    from cairn.sagas.schema import create_saga_tables

    owns_db = database is None
    db = database if database is not None else open_database(settings.database_url)
    try:
        await create_saga_tables(db)
    except BaseException:
        if owns_db:
            await db.close()
        raise
    effects = FulfilmentEffects(
        dispatch=bus_dispatch(bus), store=store, gateway=gateway, carrier=carrier
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
    )
