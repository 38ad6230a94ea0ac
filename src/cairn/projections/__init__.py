"""Projections: ``$all`` → read models, checkpointed in the same transaction, live, rebuildable
without downtime, one owner at a time.

    engine = build_projections(settings_or_url, store)   # cairn.orders: the order read models
    await engine.run()                      # forever (cancel to stop)
    await engine.status()                   # [ProjectionStatus]
    await engine.wait_for("orders", position, timeout=5.0)   # read-your-writes → bool
    await engine.rebuild("orders", progress=lambda done, total: ...)
    await engine.parked("orders"); await engine.retry_parked("orders")
    await engine.queries.get_order(order_id)  # and list_orders, search_orders, …
    await engine.close()
"""

from __future__ import annotations

from cairn.projections.read_model import ReadModel
from cairn.projections.runner import (
    ParkedEvent,
    ProjectionEngine,
    ProjectionStatus,
    RebuildProgress,
    RunnerConfig,
)

__all__ = [
    "ParkedEvent",
    "ProjectionEngine",
    "ProjectionStatus",
    "ReadModel",
    "RebuildProgress",
    "RunnerConfig",
]
