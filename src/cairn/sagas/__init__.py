"""Sagas: the generic engine. :mod:`.engine` (the vocabulary: messages, definitions, records),
:mod:`.runner` (partitions, leases, following ``$all``) over :mod:`.transitions` (one input
applied atomically), :mod:`.steps` (running the commands sagas send), :mod:`.operators`
(list, history, retry), :mod:`.deadlines` (timers), :mod:`.policy` (timeouts and retries) and
:mod:`.repository` (every statement on the tables of :mod:`.schema`). It knows no application:
a definition and its effects are passed in. See docs/sagas.md.

    await db.migrate(CHECKPOINTS, SAGAS)              # cairn.sql.checkpoints, .schema
    runner = SagaRunner(db=db, store=store, definition=definition, effects=effects,
                        policy=StepPolicy(), database_url=url)
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
from cairn.sagas.policy import StepPolicy
from cairn.sagas.runner import SagaRunner

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
