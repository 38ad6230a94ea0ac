"""The saga repository's statements on both dialects: what one method writes, the next reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn.sagas import SagaStatus, Send, command_id_for, saga_id_for
from cairn.sagas.deadlines import DEADLINE
from cairn.sagas.repository import (
    Action,
    LogLine,
    NewAction,
    NewTimer,
    SagaRepository,
    SagaRow,
)
from cairn.sagas.schema import SAGAS
from cairn.sql.checkpoints import CHECKPOINTS
from cairn.sql.database import Database
from cairn.sql.factory import open_database

SAGA = saga_id_for("demo", "k-1")
WORKER = "worker-1"


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    database = open_database(url)
    await database.migrate(CHECKPOINTS, SAGAS)
    try:
        yield database
    finally:
        await database.close()


async def _start(db: Database, repo: SagaRepository, *sends: Send) -> None:
    async with db.transaction() as tx:
        await repo.insert_instances(
            tx,
            [SagaRow(SAGA, "demo", "k-1", 0, SagaStatus.RUNNING, "start", {"n": 1}, "c-1", 1)],
            now=100.0,
        )
    if sends:
        await _send(db, repo, *sends)


async def _send(
    db: Database, repo: SagaRepository, *sends: Send, claimed_by: str | None = None
) -> None:
    new = [
        NewAction(
            Action(
                action_id=command_id_for(SAGA, send.step),
                saga_id=SAGA,
                key="k-1",
                correlation_id="c-1",
                step=send.step,
                kind=send.kind,
                payload=dict(send.payload),
                compensation=send.compensation,
                attempts=0,
                max_attempts=3,
                causation_id="m-1",
            ),
            0,
        )
        for send in sends
    ]
    async with db.transaction() as tx:
        await repo.insert_actions(tx, new, claimed_by=claimed_by, now=100.0)


async def test_an_instance_is_written_locked_updated_and_listed(db: Database) -> None:
    repo = SagaRepository(key_field="thing_id")
    await _start(db, repo)
    async with db.transaction() as tx:
        instance = await repo.lock_instance(tx, SAGA)
        assert instance is not None
        assert (instance.key, instance.status, instance.state) == ("k-1", "running", {"n": 1})
        assert (instance.version, instance.correlation_id) == (1, "c-1")
        await repo.update_instances(
            tx,
            [SagaRow(SAGA, "demo", "k-1", 0, SagaStatus.COMPLETED, "done", {"n": 2}, "c-1", 2)],
            now=101.0,
        )
    record = await repo.record(db, SAGA)
    assert record is not None
    assert (record.status, record.step, record.data) == (SagaStatus.COMPLETED, "done", {"n": 2})
    assert record.to_dict()["thing_id"] == "k-1"
    assert await repo.records(db, SagaStatus.COMPLETED, 10) == [record]
    assert await repo.records(db, SagaStatus.FAILED, 10) == []
    assert await repo.count_by_status(db) == {"completed": 1}
    async with db.transaction() as tx:
        assert await repo.lock_instances(tx, [saga_id_for("demo", "nobody")]) == {}


async def test_rows_of_many_sagas_are_written_and_changed_together(db: Database) -> None:
    repo = SagaRepository()
    ids = [saga_id_for("demo", f"k-{i}") for i in range(12)]  # beyond one statement's rows

    def rows(status: SagaStatus, step: str, version: int) -> list[SagaRow]:
        return [
            SagaRow(s, "demo", f"k-{i}", 0, status, step, {"i": i}, None, version)
            for i, s in enumerate(ids)
        ]

    async with db.transaction() as tx:
        await repo.insert_instances(tx, rows(SagaStatus.RUNNING, "start", 1), now=100.0)
        await repo.schedule_timers(tx, [NewTimer(s, 0, DEADLINE, 150.0, {}) for s in ids])
    async with db.transaction() as tx:
        await repo.update_instances(tx, rows(SagaStatus.COMPLETED, "done", 2)[::2], now=101.0)
        await repo.cancel_timers(tx, ids[::2], DEADLINE)

    async with db.transaction() as tx:
        found = await repo.lock_instances(tx, ids)
        fired = [await repo.claim_due_timer(tx, now=1e12, partitions=[0]) for _ in ids]
    assert [(found[s].status, found[s].version, found[s].state) for s in ids] == [
        ("completed" if i % 2 == 0 else "running", 2 if i % 2 == 0 else 1, {"i": i})
        for i in range(len(ids))
    ]
    assert sorted(t.saga_id for t in fired if t is not None) == sorted(ids[1::2])


async def test_a_step_is_claimed_once_and_retried_or_finished(db: Database) -> None:
    repo = SagaRepository()
    send = Send("pay", "authorize", {"amount": 5})
    await _start(db, repo, send, send)  # the same step twice: one row
    async with db.transaction() as tx:
        [action] = await repo.claim_due_actions(tx, [0], 200.0, 10, WORKER)
        assert (action.step, action.payload, action.attempts) == ("pay", {"amount": 5}, 0)
    async with db.transaction() as tx:
        assert await repo.claim_due_actions(tx, [0], 200.0, 10, "other") == []  # claimed
        assert await repo.claimed_actions(tx, 0) == [action.action_id]
        assert await repo.claimed_attempts(tx, action.action_id, "other") is None
        assert await repo.claimed_attempts(tx, action.action_id, WORKER) == 0
        await repo.reschedule_action(tx, action.action_id, 1, 300.0, "busy", 200.0)
    assert await repo.next_due(db, [0]) == 300.0
    async with db.transaction() as tx:
        assert await repo.claim_due_actions(tx, [0], 299.0, 10, WORKER) == []  # not due yet
        [again] = await repo.claim_due_actions(tx, [0], 300.0, 10, WORKER)
        assert again.attempts == 1
        await repo.finish_action(tx, action.action_id, 2, 300.0, WORKER)
        assert await repo.claim_due_actions(tx, [0], 1e12, 10, WORKER) == []
    assert await repo.next_due(db, [0]) is None


async def test_a_step_sent_claimed_is_not_polled_and_sent_again_keeps_its_claim(
    db: Database,
) -> None:
    repo = SagaRepository()
    await _start(db, repo)
    send = Send("pay", "authorize", {"amount": 5})
    await _send(db, repo, send, claimed_by=WORKER)
    await _send(db, repo, send, claimed_by="other")  # already recorded: kept as it is
    assert await repo.next_due(db, [0]) is None
    async with db.transaction() as tx:
        assert await repo.claim_due_actions(tx, [0], 1e12, 10, "other") == []
        assert await repo.claimed_attempts(tx, command_id_for(SAGA, "pay"), WORKER) == 0


async def test_a_locked_saga_comes_with_the_ids_of_the_steps_it_sent(db: Database) -> None:
    repo = SagaRepository()
    await _start(db, repo, Send("pay", "authorize", {}), Send("ship", "ship", {}))
    async with db.transaction() as tx:
        instance = await repo.lock_instance(tx, SAGA)
    assert instance is not None
    assert instance.actions == {command_id_for(SAGA, "pay"), command_id_for(SAGA, "ship")}


async def test_finishing_a_step_someone_else_took_over_changes_nothing(db: Database) -> None:
    repo = SagaRepository()
    await _start(db, repo)
    await _send(db, repo, Send("pay", "authorize", {}), claimed_by="other")
    action_id = command_id_for(SAGA, "pay")
    async with db.transaction() as tx:
        await repo.finish_action(tx, action_id, 1, 200.0, WORKER)
        assert await repo.claimed_attempts(tx, action_id, "other") == 0


async def test_a_failed_compensation_is_reset_by_a_retry(db: Database) -> None:
    repo = SagaRepository()
    await _start(db, repo, Send("void", "void", {}, compensation=True))
    action_id = command_id_for(SAGA, "void")
    async with db.transaction() as tx:
        await repo.fail_action(tx, action_id, 3, "gateway down", 200.0)
        assert await repo.claim_due_actions(tx, [0], 1e12, 10, WORKER) == []
        await repo.reset_failed_compensations(tx, SAGA, 400.0)
        [action] = await repo.claim_due_actions(tx, [0], 400.0, 10, WORKER)
        assert (action.action_id, action.attempts, action.compensation) == (action_id, 0, True)


async def test_a_timer_fires_once_and_a_moved_or_cancelled_one_not_early(db: Database) -> None:
    repo = SagaRepository()
    await _start(db, repo)
    async with db.transaction() as tx:
        for due_at in (150.0, 160.0):  # set, then moved
            await repo.schedule_timers(tx, [NewTimer(SAGA, 0, DEADLINE, due_at, {"x": 1})])
        assert await repo.claim_due_timer(tx, now=155.0, partitions=[0]) is None
        assert await repo.claim_due_timer(tx, now=160.0, partitions=[1]) is None
        timer = await repo.claim_due_timer(tx, now=160.0, partitions=[0])
        assert timer is not None
        assert (timer.kind, timer.payload) == (DEADLINE, {"x": 1})
        assert await repo.claim_due_timer(tx, now=160.0, partitions=[0]) is None
        await repo.schedule_timers(tx, [NewTimer(SAGA, 0, DEADLINE, 170.0, {})])
        await repo.cancel_timers(tx, [SAGA], DEADLINE)
        assert await repo.claim_due_timer(tx, now=1e12, partitions=[0]) is None


async def test_the_log_reads_back_oldest_first(db: Database) -> None:
    repo = SagaRepository()
    detail: dict[str, Any] = {"status": "running"}
    async with db.transaction() as tx:
        await repo.append_log(tx, SAGA, "received", "start", "Started", "m-1", detail)
        await repo.append_log(tx, SAGA, "sent", "pay", "authorize", "a-1", {"payload": {}})
    entries = await repo.history(db, SAGA)
    assert [(e.kind, e.step, e.message_id) for e in entries] == [
        ("received", "start", "m-1"),
        ("sent", "pay", "a-1"),
    ]
    assert entries[0].detail == detail


async def test_recorded_successes_finish_and_log_only_the_steps_the_worker_holds(
    db: Database,
) -> None:
    repo = SagaRepository()
    await _start(db, repo)
    await _send(db, repo, Send("pay", "authorize", {}), Send("ship", "ship", {}), claimed_by=WORKER)
    await _send(db, repo, Send("mail", "mail", {}), claimed_by="other")
    ours = [command_id_for(SAGA, "pay"), command_id_for(SAGA, "ship")]
    theirs = command_id_for(SAGA, "mail")
    await repo.record_successes(db, [*ours, theirs], 200.0, WORKER)
    async with db.transaction() as tx:
        assert [await repo.claimed_attempts(tx, a, WORKER) for a in ours] == [None, None]
        assert await repo.claimed_attempts(tx, theirs, "other") == 0  # untouched
        assert await repo.claim_due_actions(tx, [0], 1e12, 10, WORKER) == []  # done, not due
    entries = await repo.history(db, SAGA)
    succeeded = [(e.kind, e.message_id, e.detail) for e in entries]
    assert sorted(succeeded) == sorted(("succeeded", a, {"attempt": 1}) for a in ours)


async def test_many_steps_at_once_are_sent_and_logged_in_order(db: Database) -> None:
    # Beyond 80 parameters the PostgreSQL statements switch to arrays (cairn.sql.database).
    repo = SagaRepository()
    await _start(db, repo)
    sends = [Send(f"step-{i:02d}", "authorize", {"i": i}) for i in range(30)]
    await _send(db, repo, *sends, claimed_by=WORKER)
    async with db.transaction() as tx:
        instance = await repo.lock_instance(tx, SAGA)
        await repo.append_logs(
            tx,
            [LogLine(SAGA, "sent", s.step, "authorize", f"a-{i}", {}) for i, s in enumerate(sends)],
        )
    assert instance is not None
    assert instance.actions == {command_id_for(SAGA, s.step) for s in sends}
    entries = await repo.history(db, SAGA)
    assert [e.step for e in entries] == [s.step for s in sends]
