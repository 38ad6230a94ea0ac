"""The saga repository: every SQL statement on the saga tables, behind named methods.

``saga_instances``, ``saga_actions``, ``saga_timers`` and ``saga_log`` (:mod:`.schema`) are
read and written here (and in :mod:`.row_writes`, part of the repository) and nowhere else.
Writes take the caller's :class:`~cairn.sql.database.Tx`: a transition, a step's answer or a
timer's firing is several of these statements committed together, and which ones belong
together is the caller's business (:mod:`.transitions`, :mod:`.steps`, :mod:`.operators`).
Operator reads also accept the :class:`~cairn.sql.database.Database` itself (committed data,
outside any write transaction).

    repo = SagaRepository(key_field=definition.key_field)
    async with db.transaction() as tx:
        instance = await repo.lock_instance(tx, saga_id)     # FOR UPDATE on PostgreSQL
        ...
        await repo.append_log(tx, saga_id, "received", step, message.type, message.id, {...})
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from cairn.json_text import compact
from cairn.sagas.deadlines import Timer
from cairn.sagas.engine import SagaRecord, SagaStatus, StepLogEntry, from_epoch
from cairn.sagas.instances import Instance as Instance
from cairn.sagas.row_writes import NewTimer as NewTimer
from cairn.sagas.row_writes import SagaRow as SagaRow
from cairn.sagas.row_writes import SagaRowWrites
from cairn.sql.array_literal import array_literal
from cairn.sql.database import Database, Dialect, Row, Tx, in_list, insert_rows

#: Where a read runs: inside a transaction, or on committed data.
Reader: TypeAlias = Tx | Database


@dataclass(frozen=True, slots=True)
class Action:
    """A step to run: one ``saga_actions`` row."""

    action_id: str
    saga_id: str
    key: str
    correlation_id: str | None
    step: str
    kind: str
    payload: dict[str, Any]
    compensation: bool
    attempts: int
    max_attempts: int
    causation_id: str | None
    #: The W3C trace context the step continues (None: a trace of its own).
    traceparent: str | None = None
    #: Claimed when it was sent, by the worker now running it: no earlier run can exist.
    first_run: bool = False


@dataclass(frozen=True, slots=True)
class NewAction:
    """A step a transition sends: its row-to-be and the partition of its saga."""

    action: Action
    partition: int

    def capped(self) -> NewAction:
        """Its first attempt is its last (the saga started compensating: see
        :meth:`SagaRepository.cap_forward_attempts`)."""
        return NewAction(replace(self.action, max_attempts=1), self.partition)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a saga's history (kinds: :class:`~cairn.sagas.engine.StepLogEntry`)."""

    saga_id: str
    kind: str
    step: str | None
    message_type: str | None
    message_id: str | None
    detail: dict[str, Any]
    at: float = field(default_factory=time.time)


_ACTION_COLUMNS = (
    "action_id, saga_id, saga_key, correlation_id, step, kind, payload, compensation,"
    " attempts, max_attempts, causation_id, traceparent"
)
_LOG_COLUMNS = (
    ("saga_id", "text"),
    ("at", "float8"),
    ("kind", "text"),
    ("step", "text"),
    ("message_type", "text"),
    ("message_id", "text"),
    ("detail", "text"),
)
_NEW_ACTION_COLUMNS = (
    ("action_id", "text"),
    ("saga_id", "text"),
    ("saga_key", "text"),
    ("correlation_id", "text"),
    ("partition_no", "int4"),
    ("step", "text"),
    ("kind", "text"),
    ("payload", "text"),
    ("compensation", "int4"),
    ("status", "text"),
    ("attempts", "int4"),
    ("max_attempts", "int4"),
    ("due_at", "float8"),
    ("claimed_by", "text"),
    ("causation_id", "text"),
    ("error", "text"),
    ("created_at", "float8"),
    ("updated_at", "float8"),
    ("traceparent", "text"),
)
_RECORD_COLUMNS = "saga_id, saga_type, saga_key, status, step, state, created_at, updated_at"


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


class SagaRepository(SagaRowWrites):
    """The statements on the saga tables (the batched row writes: :mod:`.row_writes`).
    ``key_field``: what the records it reads call the saga's key in
    :meth:`~cairn.sagas.engine.SagaRecord.to_dict` (the definition's
    :attr:`~cairn.sagas.engine.SagaDefinition.key_field`)."""

    def __init__(self, *, key_field: str = "key") -> None:
        self.key_field = key_field

    # -- saga_instances -----------------------------------------------------------------------

    async def lock_instances(self, tx: Tx, saga_ids: list[str]) -> dict[str, Instance]:
        """The rows of the sagas that exist among ``saga_ids``, with the ids of the steps each
        sent so far, locked until ``tx`` ends (PostgreSQL ``FOR UPDATE``, in saga id order so
        two transactions never deadlock on them; SQLite's ``BEGIN IMMEDIATE`` already
        serialises writers). One statement: a transition needs no other read before its
        writes."""
        ids = "string_agg" if tx.dialect is Dialect.POSTGRES else "group_concat"
        among, params = in_list(tx.dialect, "i.saga_id", saga_ids)
        rows = await tx.fetchall(
            "SELECT i.saga_id, i.saga_key, i.status, i.state, i.version, i.correlation_id,"
            f" (SELECT {ids}(a.action_id, ',') FROM saga_actions a"
            "  WHERE a.saga_id = i.saga_id) AS actions"
            f" FROM saga_instances i WHERE {among} ORDER BY i.saga_id" + tx.for_update("i"),
            params,
        )
        return {
            str(row["saga_id"]): Instance(
                key=str(row["saga_key"]),
                status=str(row["status"]),
                state=json.loads(row["state"]),
                version=int(row["version"]),
                correlation_id=row["correlation_id"],
                actions=frozenset(str(row["actions"]).split(","))
                if row["actions"]
                else frozenset(),
            )
            for row in rows
        }

    async def check_versions(self, tx: Tx, versions: dict[str, int]) -> None:
        """Lock the rows of ``versions`` (saga id → expected version, 0: no row) and fail the
        transaction with :class:`~cairn.errors.StaleRowError` at commit if one differs
        (PostgreSQL only: :mod:`.instances`). Sent without waiting: a write, for the pipeline."""
        ids = sorted(versions)
        await tx.execute(
            "SELECT cairn_saga_versions(?::text[], ?::integer[])",
            (array_literal(ids), array_literal(versions[i] for i in ids)),
        )

    async def lock_instance(self, tx: Tx, saga_id: str) -> Instance | None:
        """One saga's row, locked (see :meth:`lock_instances`); ``None`` if there is none."""
        return (await self.lock_instances(tx, [saga_id])).get(saga_id)

    async def records(
        self, reader: Reader, status: SagaStatus | None, limit: int
    ) -> list[SagaRecord]:
        """Sagas, newest activity first, optionally of one status; at most ``limit``."""
        if status is None:
            rows = await reader.fetchall(
                f"SELECT {_RECORD_COLUMNS} FROM saga_instances ORDER BY updated_at DESC LIMIT ?",
                (limit,),
            )
        else:
            rows = await reader.fetchall(
                f"SELECT {_RECORD_COLUMNS} FROM saga_instances WHERE status = ?"
                " ORDER BY updated_at DESC LIMIT ?",
                (status.value, limit),
            )
        return [self._record(r) for r in rows]

    async def record(self, reader: Reader, saga_id: str) -> SagaRecord | None:
        row = await reader.fetchone(
            f"SELECT {_RECORD_COLUMNS} FROM saga_instances WHERE saga_id = ?", (saga_id,)
        )
        return None if row is None else self._record(row)

    async def count_by_status(self, reader: Reader) -> dict[str, int]:
        rows = await reader.fetchall(
            "SELECT status, count(*) AS n FROM saga_instances GROUP BY status"
        )
        return {str(r["status"]): int(r["n"]) for r in rows}

    def _record(self, row: Row) -> SagaRecord:
        return SagaRecord(
            saga_id=str(row["saga_id"]),
            type=str(row["saga_type"]),
            key=str(row["saga_key"]),
            status=SagaStatus(row["status"]),
            step=str(row["step"]),
            data=json.loads(row["state"]),
            created_at=from_epoch(float(row["created_at"])),
            updated_at=from_epoch(float(row["updated_at"])),
            key_field=self.key_field,
        )

    # -- saga_log -----------------------------------------------------------------------------

    async def append_log(
        self,
        tx: Tx,
        saga_id: str,
        kind: str,
        step: str | None,
        message_type: str | None,
        message_id: str | None,
        detail: dict[str, Any],
    ) -> None:
        """One line of the saga's history (kinds: :class:`~cairn.sagas.engine.StepLogEntry`)."""
        await self.append_logs(tx, [LogLine(saga_id, kind, step, message_type, message_id, detail)])

    async def append_logs(self, tx: Tx, lines: list[LogLine]) -> None:
        """Lines of history, in order, in one statement (or a few: :func:`insert_rows`)."""
        if not lines:
            return
        for statement in insert_rows(
            tx.dialect,
            "saga_log",
            _LOG_COLUMNS,
            [
                (
                    line.saga_id,
                    line.at,
                    line.kind,
                    line.step,
                    line.message_type,
                    line.message_id,
                    compact(line.detail, default=str),
                )
                for line in lines
            ],
        ):
            await tx.execute(*statement)

    async def history(self, reader: Reader, saga_id: str) -> list[StepLogEntry]:
        """The saga's log, oldest first (ids grow with every insert)."""
        rows = await reader.fetchall(
            "SELECT at, kind, step, message_type, message_id, detail FROM saga_log"
            " WHERE saga_id = ? ORDER BY id",
            (saga_id,),
        )
        return [
            StepLogEntry(
                at=from_epoch(float(r["at"])),
                kind=str(r["kind"]),
                step=r["step"],
                message_type=r["message_type"],
                message_id=r["message_id"],
                detail=json.loads(r["detail"]),
            )
            for r in rows
        ]

    # -- saga_actions -------------------------------------------------------------------------

    async def insert_actions(
        self, tx: Tx, sends: list[NewAction], *, claimed_by: str | None, now: float
    ) -> None:
        """Pending steps, due now, claimed by ``claimed_by`` (``None``: by nobody, so that a
        runner polls for them); one statement (or a few). A step already recorded (same
        deterministic id) is kept as it is: leave it out (:attr:`Instance.actions`) to know
        which rows are new."""
        if not sends:
            return
        for statement in insert_rows(
            tx.dialect,
            "saga_actions",
            _NEW_ACTION_COLUMNS,
            [
                (
                    new.action.action_id,
                    new.action.saga_id,
                    new.action.key,
                    new.action.correlation_id,
                    new.partition,
                    new.action.step,
                    new.action.kind,
                    compact(new.action.payload),
                    1 if new.action.compensation else 0,
                    "pending",
                    0,
                    new.action.max_attempts,
                    now,
                    claimed_by,
                    new.action.causation_id,
                    None,
                    now,
                    now,
                    new.action.traceparent,
                )
                for new in sends
            ],
            suffix=" ON CONFLICT (action_id) DO NOTHING",
        ):
            await tx.execute(*statement)

    async def cap_forward_attempts(self, tx: Tx, saga_id: str) -> None:
        """Let the attempt in flight (if any) be the last of each pending forward step."""
        await tx.execute(
            "UPDATE saga_actions SET max_attempts = CASE WHEN max_attempts > attempts + 1"
            " THEN attempts + 1 ELSE max_attempts END"
            " WHERE saga_id = ? AND status = 'pending' AND compensation = 0",
            (saga_id,),
        )

    async def reset_failed_compensations(self, tx: Tx, saga_id: str, now: float) -> None:
        """Failed compensation steps pending again, due now, with fresh attempts."""
        await tx.execute(
            "UPDATE saga_actions SET status = 'pending', attempts = 0, due_at = ?,"
            " claimed_by = NULL, error = NULL, updated_at = ?"
            " WHERE saga_id = ? AND status = 'failed' AND compensation = 1",
            (now, now, saga_id),
        )

    async def claim_due_actions(
        self, tx: Tx, partitions: list[int], now: float, limit: int, worker_id: str
    ) -> list[Action]:
        """Claim (for ``worker_id``) the unclaimed pending steps of ``partitions`` due by
        ``now``, soonest first, at most ``limit``; one statement.

        SKIP LOCKED: a step another worker is claiming right now is left to it; the claimed_by
        mark then keeps everybody else off it until it is answered."""
        rows = await tx.fetchall(
            "UPDATE saga_actions SET claimed_by = ? WHERE action_id IN ("
            "SELECT action_id FROM saga_actions WHERE status = 'pending'"
            f" AND claimed_by IS NULL AND due_at <= ? AND partition_no IN ({_marks(partitions)})"
            " ORDER BY due_at LIMIT ?" + tx.skip_locked() + ")"
            f" RETURNING {_ACTION_COLUMNS}",
            (worker_id, now, *partitions, limit),
        )
        return [_action(r) for r in rows]

    async def next_due(self, reader: Reader, partitions: list[int]) -> float | None:
        """When the next unclaimed step or timer of ``partitions`` is due (epoch seconds), or
        ``None`` when none is waiting."""
        marks = _marks(partitions)
        row = await reader.fetchone(
            "SELECT min(due_at) AS due_at FROM ("
            "SELECT min(due_at) AS due_at FROM saga_timers"
            f" WHERE partition_no IN ({marks})"
            " UNION ALL SELECT min(due_at) AS due_at FROM saga_actions"
            f" WHERE status = 'pending' AND claimed_by IS NULL AND partition_no IN ({marks})"
            ") AS due",
            (*partitions, *partitions),
        )
        return None if row is None or row["due_at"] is None else float(row["due_at"])

    async def claimed_attempts(self, tx: Tx, action_id: str, worker_id: str) -> int | None:
        """How often the step ran, if ``worker_id`` still holds it (locked until ``tx`` ends);
        ``None`` if someone else took it over or it is settled. Lock its saga first
        (:meth:`lock_instances`): see :mod:`.steps`."""
        row = await tx.fetchone(
            "SELECT attempts FROM saga_actions WHERE action_id = ? AND status = 'pending'"
            " AND claimed_by = ?" + tx.for_update(),
            (action_id, worker_id),
        )
        return None if row is None else int(row["attempts"])

    async def finish_action(
        self, tx: Tx, action_id: str, attempts: int, now: float, worker_id: str
    ) -> None:
        """Done, if ``worker_id`` still holds it (else someone took it over: theirs counts)."""
        await tx.execute(
            "UPDATE saga_actions SET status = 'done', attempts = ?, claimed_by = NULL,"
            " error = NULL, updated_at = ? WHERE action_id = ? AND status = 'pending'"
            " AND claimed_by = ?",
            (attempts, now, action_id, worker_id),
        )

    async def record_successes(
        self, db: Reader, action_ids: list[str], now: float, worker_id: str
    ) -> None:
        """Forward steps done after one more attempt, if ``worker_id`` still holds them, each
        with its ``succeeded`` line, in one transaction: on PostgreSQL one statement (one round
        trip, no BEGIN/COMMIT; or a write of the caller's transaction ``db``, pipelinable). A
        step another worker took over is neither finished nor logged. SQLite: a
        :class:`Database` (its own transaction)."""
        among, ids = in_list(db.dialect, "action_id", action_ids)
        held = f" WHERE {among} AND status = 'pending' AND claimed_by = ?"
        finish = (
            "UPDATE saga_actions SET status = 'done', attempts = attempts + 1,"
            " claimed_by = NULL, error = NULL, updated_at = ?" + held
        )
        if db.dialect is Dialect.POSTGRES:
            await db.execute(
                f"WITH done AS ({finish} RETURNING saga_id, step, action_id, attempts)"
                " INSERT INTO saga_log (saga_id, at, kind, step, message_type, message_id, detail)"
                " SELECT saga_id, ?, 'succeeded', step, NULL, action_id,"
                " '{\"attempt\": ' || attempts || '}' FROM done ORDER BY action_id",
                (now, *ids, worker_id, now),
            )
            return
        assert isinstance(db, Database)
        async with db.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT saga_id, step, action_id, attempts FROM saga_actions"
                + held
                + " ORDER BY action_id",
                (*ids, worker_id),
            )
            await tx.execute(finish, (now, *ids, worker_id))
            await self.append_logs(
                tx,
                [
                    LogLine(
                        str(r["saga_id"]),
                        "succeeded",
                        str(r["step"]),
                        None,
                        str(r["action_id"]),
                        {"attempt": int(r["attempts"]) + 1},
                        at=now,
                    )
                    for r in rows
                ],
            )

    async def reschedule_action(
        self, tx: Tx, action_id: str, attempts: int, due_at: float, error: str | None, now: float
    ) -> None:
        """Unclaimed and pending again, due at ``due_at``."""
        await tx.execute(
            "UPDATE saga_actions SET status = 'pending', attempts = ?, due_at = ?,"
            " claimed_by = NULL, error = ?, updated_at = ? WHERE action_id = ?",
            (attempts, due_at, error, now, action_id),
        )

    async def fail_action(
        self, tx: Tx, action_id: str, attempts: int, error: str | None, now: float
    ) -> None:
        await tx.execute(
            "UPDATE saga_actions SET status = 'failed', attempts = ?, claimed_by = NULL,"
            " error = ?, updated_at = ? WHERE action_id = ?",
            (attempts, error, now, action_id),
        )

    async def unclaim_action(self, tx: Tx, action_id: str, worker_id: str, due_at: float) -> None:
        """Give a step back (due at ``due_at``) if ``worker_id`` still holds it."""
        await tx.execute(
            "UPDATE saga_actions SET claimed_by = NULL, due_at = ?"
            " WHERE action_id = ? AND claimed_by = ?",
            (due_at, action_id, worker_id),
        )

    async def claimed_actions(self, tx: Tx, partition: int) -> list[str]:
        """The ids of the pending steps of ``partition`` that some worker has claimed."""
        rows = await tx.fetchall(
            "SELECT action_id FROM saga_actions WHERE partition_no = ? AND status = 'pending'"
            " AND claimed_by IS NOT NULL",
            (partition,),
        )
        return [str(r["action_id"]) for r in rows]

    async def release_claim(self, tx: Tx, action_id: str, due_at: float) -> None:
        """Whoever claimed the step, it is unclaimed and due at ``due_at``."""
        await tx.execute(
            "UPDATE saga_actions SET claimed_by = NULL, due_at = ? WHERE action_id = ?",
            (due_at, action_id),
        )

    # -- saga_timers --------------------------------------------------------------------------

    async def claim_due_timer(self, tx: Tx, *, now: float, partitions: list[int]) -> Timer | None:
        """Take the next due timer of the given partitions, deleting its row in ``tx``.

        ``SKIP LOCKED`` (PostgreSQL): a timer another worker is firing right now is skipped
        rather than waited for, and since the row is deleted in the same transaction as the saga
        update, it can never fire twice.
        """
        row = await tx.fetchone(
            "SELECT timer_id, saga_id, kind, due_at, payload FROM saga_timers"
            f" WHERE due_at <= ? AND partition_no IN ({_marks(partitions)}) ORDER BY due_at LIMIT 1"
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


def _action(row: Row) -> Action:
    return Action(
        action_id=str(row["action_id"]),
        saga_id=str(row["saga_id"]),
        key=str(row["saga_key"]),
        correlation_id=row["correlation_id"],
        step=str(row["step"]),
        kind=str(row["kind"]),
        payload=json.loads(row["payload"]),
        compensation=bool(row["compensation"]),
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        causation_id=row["causation_id"],
        traceparent=row["traceparent"],
    )
