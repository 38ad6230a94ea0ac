"""Persisted timers: a saga's deadline, written in the same transaction that starts the saga.

A timer is a row (``saga_timers``), so it survives a crash and fires after a restart. Firing a
timer deletes its row in the same transaction that delivers its message to the saga, so it fires
at most once; a timer whose saga has moved on (completed, already compensating) is *stale*: the
saga's ``decide`` ignores it. Retry timers of steps are the ``due_at`` of ``saga_actions`` rows.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from cairn.sql.database import Tx

DEADLINE = "deadline"


@dataclass(frozen=True, slots=True)
class Timer:
    timer_id: str
    saga_id: str
    kind: str
    due_at: float
    payload: dict[str, Any]


def timer_id_for(saga_id: str, kind: str) -> str:
    return str(uuid.uuid5(uuid.UUID(saga_id), f"timer:{kind}"))


async def schedule(
    tx: Tx, *, saga_id: str, partition: int, kind: str, due_at: float, payload: dict[str, Any]
) -> None:
    """Set (or move) the ``kind`` timer of a saga."""
    timer_id = timer_id_for(saga_id, kind)
    await tx.execute("DELETE FROM saga_timers WHERE timer_id = ?", (timer_id,))
    await tx.execute(
        "INSERT INTO saga_timers (timer_id, saga_id, partition_no, kind, due_at, payload)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (timer_id, saga_id, partition, kind, due_at, json.dumps(payload)),
    )


async def cancel(tx: Tx, *, saga_id: str, kind: str) -> None:
    await tx.execute("DELETE FROM saga_timers WHERE timer_id = ?", (timer_id_for(saga_id, kind),))


async def claim_due(tx: Tx, *, now: float, partitions: list[int]) -> Timer | None:
    """Take the next due timer of the given partitions, deleting its row in ``tx``.

    ``SKIP LOCKED`` (PostgreSQL): a timer another worker is firing right now is skipped rather
    than waited for, and since the row is deleted in the same transaction as the saga update,
    it can never fire twice.
    """
    marks = ", ".join("?" for _ in partitions)
    row = await tx.fetchone(
        "SELECT timer_id, saga_id, kind, due_at, payload FROM saga_timers"
        f" WHERE due_at <= ? AND partition_no IN ({marks}) ORDER BY due_at LIMIT 1"
        + tx.skip_locked(),
        (now, *partitions),
    )
    if row is None:
        return None
    await tx.execute("DELETE FROM saga_timers WHERE timer_id = ?", (row["timer_id"],))
    return Timer(
        timer_id=str(row["timer_id"]),
        saga_id=str(row["saga_id"]),
        kind=str(row["kind"]),
        due_at=float(row["due_at"]),
        payload=json.loads(row["payload"]),
    )
