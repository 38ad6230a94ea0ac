"""Projections: ``$all`` → read models, checkpointed in the same transaction, live, rebuildable
without downtime, one owner at a time.

    engine = build_projections(settings_or_url, store, database=db, leases=leases)
    await engine.run()                      # forever (cancel to stop)
    await engine.status()                   # [ProjectionStatus]
    await engine.wait_for("orders", position, timeout=5.0)   # read-your-writes → bool
    await engine.rebuild("orders", progress=lambda done, total: ...)
    await engine.parked("orders"); await engine.retry_parked("orders")
    await engine.queries.get_order(order_id)  # and list_orders, search_orders, …
    await engine.close()
"""

from __future__ import annotations

from collections.abc import Sequence

from cairn.leases import Leases
from cairn.projections.queries import OrderPage, ReadModelQueries
from cairn.projections.read_models import ReadModel, default_models
from cairn.projections.runner import (
    ParkedEvent,
    ProjectionEngine,
    ProjectionStatus,
    RebuildProgress,
    RunnerConfig,
)
from cairn.settings import Settings
from cairn.sql.database import Database
from cairn.store.base import EventStore

__all__ = [
    "OrderPage",
    "ParkedEvent",
    "ProjectionEngine",
    "ProjectionStatus",
    "ReadModelQueries",
    "RebuildProgress",
    "RunnerConfig",
    "build_projections",
]


def build_projections(
    settings_or_url: Settings | str,
    store: EventStore,
    *,
    models: Sequence[ReadModel] | None = None,
    config: RunnerConfig | None = None,
    redis_url: str | None = None,
    database: Database | None = None,
    leases: Leases | None = None,
) -> ProjectionEngine:
    """The projection engine for the store at ``settings_or_url`` (its database URL).

    Nothing connects until first use; ``run()`` / ``status()`` create the tables if missing.
    ``database`` and ``leases`` are the process's own (see :class:`ProjectionEngine`).
    """
    if isinstance(settings_or_url, Settings):
        url = settings_or_url.database_url
        redis_url = redis_url or settings_or_url.redis_url
        config = config or RunnerConfig(batch_size=settings_or_url.projection_batch_size)
    else:
        url = settings_or_url
    return ProjectionEngine(
        store,
        url,
        list(models) if models is not None else default_models(),
        config=config,
        redis_url=redis_url,
        database=database,
        leases=leases,
    )
