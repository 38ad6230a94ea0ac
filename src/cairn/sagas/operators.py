"""What operators do with sagas: list them by status, count them, look at one and its history,
and retry a ``failed`` one. Usable without a running runner (the admin API, the CLI)."""

from __future__ import annotations

import asyncio
import builtins
import time
import uuid
from typing import Generic, TypeVar

from cairn.errors import ApplicationError, ConflictError, NotFoundError
from cairn.sagas.engine import (
    RETRY_REQUESTED,
    Message,
    SagaRecord,
    SagaStatus,
    StepLogEntry,
    saga_id_for,
)
from cairn.sagas.repository import SagaRepository
from cairn.sagas.transitions import Transitions
from cairn.sql.database import Database

S = TypeVar("S")

MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100


class SagaOperators(Generic[S]):
    """The operators' view of the sagas of one definition (see :class:`.runner.SagaRunner`,
    which offers these methods). ``wake`` is set after a retry, so a running runner picks the
    reset steps up at once."""

    def __init__(
        self,
        *,
        db: Database,
        repository: SagaRepository,
        transitions: Transitions[S],
        wake: asyncio.Event,
    ) -> None:
        self.db = db
        self.repository = repository
        self.transitions = transitions
        self.wake = wake

    async def list(
        self, status: str | None = None, limit: int = DEFAULT_LIST_LIMIT
    ) -> builtins.list[SagaRecord]:
        """Sagas (newest activity first), optionally of one status; at most ``limit``."""
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_LIST_LIMIT
        ):
            raise ApplicationError(
                "saga.invalid_limit", f"limit must be between 1 and {MAX_LIST_LIMIT}"
            )
        wanted = None
        if status is not None:
            try:
                wanted = SagaStatus(status)
            except ValueError:
                allowed = ", ".join(s.value for s in SagaStatus)
                raise ApplicationError(
                    "saga.invalid_status", f"unknown saga status {status!r} (one of {allowed})"
                ) from None
        return await self.repository.records(self.db, wanted, limit)

    async def counts(self) -> dict[str, int]:
        """How many sagas are in each status (for metrics and health)."""
        return await self.repository.count_by_status(self.db)

    async def get(self, saga_id: str) -> SagaRecord | None:
        return await self.repository.record(self.db, saga_id)

    async def get_by_key(self, key: str) -> SagaRecord | None:
        """The saga of a key (the id of the entity it runs for)."""
        return await self.get(saga_id_for(self.transitions.definition.type, key))

    async def history(self, saga_id: str) -> builtins.list[StepLogEntry]:
        """Everything the saga received, sent, and was answered, oldest first."""
        return await self.repository.history(self.db, saga_id)

    async def retry(self, saga_id: str) -> SagaRecord:
        """Re-run the failed steps of a ``failed`` saga from scratch (fresh attempts)."""
        now = time.time()
        repository = self.repository
        async with self.db.transaction() as tx:
            instance = await repository.lock_instance(tx, saga_id)
            if instance is None:
                raise NotFoundError("saga.not_found", f"no saga {saga_id!r}", saga_id=saga_id)
            if instance.status != SagaStatus.FAILED.value:
                raise ConflictError(
                    "saga.not_failed",
                    f"saga {saga_id} is {instance.status}; only a failed saga can be retried",
                )
            await repository.reset_failed_compensations(tx, saga_id, now)
            await repository.append_log(tx, saga_id, "retry", None, None, None, {"by": "operator"})
            # Unclaimed (no claim_for): the runner's pump picks the steps up, wherever it runs.
            await self.transitions.apply(
                tx,
                saga_id,
                instance.key,
                Message(id=str(uuid.uuid4()), type=RETRY_REQUESTED, data={}),
                locked={saga_id: instance},
            )
        self.wake.set()
        record = await self.get(saga_id)
        assert record is not None
        return record
