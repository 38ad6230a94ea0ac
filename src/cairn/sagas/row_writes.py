"""The saga repository's writes of whole rows to ``saga_instances`` and ``saga_timers``, each a
batch in as few statements as the SQL layer allows (:func:`~cairn.sql.database.insert_rows`,
:func:`~cairn.sql.database.update_rows`).

A transition applies its inputs to several sagas at once (a burst of orders puts two or three in
each transaction): written one statement per saga, the rows were a quarter of the statements
the engine sent per saga. Part of :class:`~cairn.sagas.repository.SagaRepository`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from cairn.json_text import compact
from cairn.sagas.deadlines import timer_id_for
from cairn.sagas.engine import SagaStatus
from cairn.sql.database import Tx, in_list, insert_rows, update_rows


class SagaRow(NamedTuple):
    """A saga's row as a transition writes it (``version``: the row's version after it)."""

    saga_id: str
    saga_type: str
    key: str
    partition: int
    status: SagaStatus
    step: str
    state: dict[str, Any]
    correlation_id: str | None
    version: int
    #: ``state`` as the column's text (:func:`state_json`), when the caller has it already.
    state_text: str | None = None


class NewTimer(NamedTuple):
    saga_id: str
    partition: int
    kind: str
    due_at: float
    payload: dict[str, Any]


_INSTANCE_COLUMNS = (
    ("saga_id", "text"),
    ("saga_type", "text"),
    ("saga_key", "text"),
    ("partition_no", "integer"),
    ("status", "text"),
    ("step", "text"),
    ("state", "text"),
    ("correlation_id", "text"),
    ("version", "integer"),
    ("created_at", "double precision"),
    ("updated_at", "double precision"),
)
_TIMER_COLUMNS = (
    ("timer_id", "text"),
    ("saga_id", "text"),
    ("partition_no", "integer"),
    ("kind", "text"),
    ("due_at", "double precision"),
    ("payload", "text"),
)


def state_json(state: dict[str, Any]) -> str:
    """The ``state`` column's text (not the codec's ``encode_state``, which makes the dict)."""
    return compact(state)


def _state_text(row: SagaRow) -> str:
    return row.state_text if row.state_text is not None else state_json(row.state)


class SagaRowWrites:
    async def insert_instances(self, tx: Tx, rows: Sequence[SagaRow], now: float) -> None:
        """New sagas' rows (created and updated ``now``)."""
        values = [
            (
                r.saga_id,
                r.saga_type,
                r.key,
                r.partition,
                r.status.value,
                r.step,
                _state_text(r),
                r.correlation_id,
                r.version,
                now,
                now,
            )
            for r in rows
        ]
        for statement in insert_rows(tx.dialect, "saga_instances", _INSTANCE_COLUMNS, values):
            await tx.execute(*statement)

    async def update_instances(self, tx: Tx, rows: Sequence[SagaRow], now: float) -> None:
        """Existing sagas' status, step, state and version (each saga once)."""
        values = [(r.saga_id, r.status.value, r.step, _state_text(r), r.version, now) for r in rows]
        columns = ("status", "step", "state", "version", "updated_at")
        for statement in update_rows("saga_instances", "saga_id", columns, values):
            await tx.execute(*statement)

    async def schedule_timers(self, tx: Tx, timers: Sequence[NewTimer]) -> None:
        """Set (or move) timers, at most one per saga and kind in a call."""
        values = [
            (
                timer_id_for(t.saga_id, t.kind),
                t.saga_id,
                t.partition,
                t.kind,
                t.due_at,
                compact(t.payload),
            )
            for t in timers
        ]
        suffix = (
            " ON CONFLICT (timer_id) DO UPDATE SET due_at = excluded.due_at,"
            " payload = excluded.payload"
        )
        for statement in insert_rows(
            tx.dialect, "saga_timers", _TIMER_COLUMNS, values, suffix=suffix
        ):
            await tx.execute(*statement)

    async def cancel_timers(self, tx: Tx, saga_ids: Sequence[str], kind: str) -> None:
        """The ``kind`` timers of ``saga_ids`` (those that exist) are deleted."""
        if not saga_ids:
            return
        among, ids = in_list(tx.dialect, "timer_id", [timer_id_for(s, kind) for s in saga_ids])
        await tx.execute(f"DELETE FROM saga_timers WHERE {among}", ids)
