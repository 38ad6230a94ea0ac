"""On PostgreSQL a runner remembers the saga rows it committed and writes a transition without
reading them first (a version guard rides with the writes); a row someone else changed
meanwhile is read again, and the saga goes on from what was really stored. A forward step's
success rides with the transition that handles the event its command recorded."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from saga_harness import FAST, running

from cairn.orders.adapters import FakePaymentGateway
from cairn.orders.adapters.payment_gateway import Authorization
from cairn.sagas import runner as runner_module
from cairn.sagas import steps
from cairn.sagas.engine import StepLogEntry
from cairn.sagas.instances import Instance
from cairn.sql.database import Database, Tx


def count_reads(world: Any) -> list[list[str]]:
    """Every ``lock_instances`` (the read before a transition) from now on: its saga ids."""
    repository = world.runner.transitions.repository
    reads: list[list[str]] = []
    lock_instances = repository.lock_instances

    async def recording(tx: Tx, saga_ids: list[str]) -> dict[str, Instance]:
        reads.append(list(saga_ids))
        result: dict[str, Instance] = await lock_instances(tx, saga_ids)
        return result

    repository.lock_instances = recording
    return reads


class _GatewayWithAnotherWriter(FakePaymentGateway):
    """While the payment step runs, another process writes the saga's row (as an operator's
    action from another server would)."""

    def __init__(self) -> None:
        super().__init__()
        self.db: Database | None = None

    async def authorize(self, **kwargs: Any) -> Authorization:
        assert self.db is not None
        await self.db.execute(
            "UPDATE saga_instances SET version = version + 1, updated_at = updated_at"
        )
        return await super().authorize(**kwargs)


async def test_a_saga_run_by_one_runner_is_never_read_before_its_transitions(
    pg_url: str,
) -> None:
    async with running(pg_url) as w:
        await w.product("MUG", 10)
        reads = count_reads(w)

        order = await w.order({"MUG": 1})
        record = await w.wait(order, "completed")

    assert record.data["outcome"] == "confirmed"
    assert reads == []


async def test_a_row_another_process_changed_is_read_again_and_the_saga_completes(
    pg_url: str,
) -> None:
    gateway = _GatewayWithAnotherWriter()
    async with running(pg_url, gateway=gateway) as w:
        gateway.db = w.runner.db
        await w.product("MUG", 10)
        reads = count_reads(w)

        order = await w.order({"MUG": 1})
        record = await w.wait(order, "completed")

        assert record.data["outcome"] == "confirmed"
        assert await w.order_status(order) == "confirmed"
        assert reads == [[record.saga_id]]  # the transition after the payment, once


def record_where_successes_go(world: Any) -> list[str]:
    """For every recording of forward successes from now on: "transition" when it was one of
    the writes of a transaction, "alone" when it was a statement of its own."""
    repository = world.runner.steps.repository
    where: list[str] = []
    record_successes = repository.record_successes

    async def recording(db: Database | Tx, action_ids: list[str], now: float, worker: str) -> None:
        where.append("transition" if isinstance(db, Tx) else "alone")
        await record_successes(db, action_ids, now, worker)

    repository.record_successes = recording
    return where


async def test_a_forward_steps_success_is_recorded_by_the_transition_its_event_causes(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A success waits this long for a transition to carry it (on a loaded machine the step's
    # event can take longer than the usual 20 ms to reach the runner).
    monkeypatch.setattr(steps, "FOLD_WINDOW", 10.0)
    async with running(pg_url) as w:
        await w.product("MUG", 10)
        where = record_where_successes_go(w)

        order = await w.order({"MUG": 1})
        record = await w.wait(order, "completed")
        history = await w.runner.history(record.saga_id)

    assert where == ["transition"] * 4  # reserve, authorize, ship, confirm
    assert _each_success_is_logged_before_the_event_it_caused(history)


def _each_success_is_logged_before_the_event_it_caused(history: list[StepLogEntry]) -> bool:
    """The step that ran before each ``received`` line (but the first, the order placed) has
    its ``succeeded`` line earlier in the history."""
    succeeded = 0
    received = 0
    for entry in history:
        if entry.kind == "succeeded":
            succeeded += 1
        elif entry.kind == "received":
            if received > 0 and succeeded < received:
                return False
            received += 1
    return succeeded == received - 1 == 4


async def test_a_runner_stopped_while_a_transition_records_successes_stops(pg_url: str) -> None:
    async with asyncio.timeout(30):  # a runner that swallowed its cancellation never returns
        async with running(pg_url) as w:
            await w.product("MUG", 10)
            transitions = w.runner.transitions
            apply_events = transitions.apply_events
            carrying = asyncio.Event()

            async def stuck_with_successes(tx: Tx, *args: Any, **kwargs: Any) -> Any:
                if kwargs.get("successes"):
                    carrying.set()
                    await asyncio.Event().wait()  # in flight until the runner is stopped
                return await apply_events(tx, *args, **kwargs)

            transitions.apply_events = stuck_with_successes  # type: ignore[method-assign]
            await w.order({"MUG": 1})
            await asyncio.wait_for(carrying.wait(), timeout=10)
        # leaving ``running`` cancelled the runner and waited for it to stop


class _SlowGatewayWithAnotherWriter(_GatewayWithAnotherWriter):
    """Writes the saga's row from "another process", then takes longer than the saga's
    deadline to answer."""

    async def authorize(self, **kwargs: Any) -> Authorization:
        assert self.db is not None
        await self.db.execute(
            "UPDATE saga_instances SET version = version + 1, updated_at = updated_at"
        )
        await asyncio.sleep(3.0)
        return await FakePaymentGateway.authorize(self, **kwargs)


class _FailuresLog:
    """The runner's logger, recording what it logs as a failure."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.failures: list[str] = []

    def exception(self, message: str, *args: Any) -> None:
        self.failures.append(message % args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


async def test_a_deadline_on_a_row_another_process_changed_fires_at_once_reading_it(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = _FailuresLog(runner_module.log)
    monkeypatch.setattr(runner_module, "log", failures)
    gateway = _SlowGatewayWithAnotherWriter()
    policy = replace(FAST, timeout=10.0, deadline=1.0)
    async with running(pg_url, gateway=gateway, policy=policy) as w:
        gateway.db = w.runner.db
        await w.product("MUG", 10)

        order = await w.order({"MUG": 1})
        record = await w.wait(order, "timed_out", timeout=20)
        history = await w.runner.history(record.saga_id)

    assert [e.kind for e in history].count("timer") == 1
    # Once the transaction of the timer failed on the changed row, the old runner logged it as
    # a failure and tried again a second later.
    assert failures.failures == []
