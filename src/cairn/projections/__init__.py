"""Projections: ``$all`` → read models, checkpointed in the same transaction, live, rebuildable
without downtime, one owner at a time.

    engine = ProjectionEngine(store, url, models, after_commit={"orders": hook})
    # (built by the application, with its read models and hooks)
    await engine.run()                      # forever (cancel to stop)
    await engine.status()                   # [ProjectionStatus]
    await engine.wait_for("orders", position, timeout=5.0)   # read-your-writes → bool
    await engine.rebuild("orders", progress=lambda done, total: ...)
    await engine.parked("orders"); await engine.retry_parked("orders")
    await engine.close()
"""

from __future__ import annotations

from cairn.projections.engine import ProjectionEngine
from cairn.projections.hooks import AfterCommit, ChangedRows
from cairn.projections.parking import ParkedEvent
from cairn.projections.read_model import ReadModel
from cairn.projections.runner import RunnerConfig
from cairn.projections.status import ProjectionStatus, RebuildProgress

__all__ = [
    "AfterCommit",
    "ChangedRows",
    "ParkedEvent",
    "ProjectionEngine",
    "ProjectionStatus",
    "ReadModel",
    "RebuildProgress",
    "RunnerConfig",
]
