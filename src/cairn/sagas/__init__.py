"""Sagas: the generic engine (:mod:`.engine`, :mod:`.runner`, :mod:`.deadlines`,
:mod:`.persistence`). Its first user, the order fulfilment saga, lives in
:mod:`cairn.orders.fulfilment`. See docs/sagas.md.

    runner = await build_saga_runner(settings, store, bus, gateway, carrier)  # cairn.orders
    task = asyncio.create_task(runner.run())          # forever; cancel to stop
    await runner.list("failed", limit=100)            # operators
    await runner.get(saga_id); await runner.history(saga_id); await runner.retry(saga_id)
    await runner.close()
"""

from __future__ import annotations

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
from cairn.sagas.runner import SagaRunner, StepPolicy

__all__ = [
    "Message",
    "SagaDefinition",
    "SagaRecord",
    "SagaRunner",
    "SagaStatus",
    "Send",
    "StepContext",
    "StepLogEntry",
    "StepPolicy",
    "command_id_for",
    "saga_id_for",
]
