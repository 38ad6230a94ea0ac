"""A saga partition whose lease is lost and taken again has one follower of ``$all``, not the
old one (still waiting for an append) beside the new one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg
import pytest
from saga_harness import running

from cairn.sagas.runner import SagaRunner

pytestmark = pytest.mark.slow


def _followers() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done()
        and getattr(task.get_coro(), "__qualname__", None) == SagaRunner._follow.__qualname__
    ]


async def _until(what: str, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


async def test_a_partition_retaken_after_its_lease_was_lost_has_one_follower(
    pg_url: str,
) -> None:
    async with running(pg_url) as w:
        await _until("the runner owns its partition", lambda: w.runner.owned == {0})
        assert len(_followers()) == 1
        # The lease's session dies (a network cut, a restarted pgbouncer): the lease is lost,
        # while the follower waits for the next append.
        database = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = 'cairn-leases'",
                (database,),
            )
        await _until("the lease is lost", lambda: not w.runner.owned)
        await _until("the lease is taken again", lambda: w.runner.owned == {0})
        assert len(_followers()) == 1
        # And that follower runs the partition's sagas.
        await w.product("MUG", 10)
        order = await w.order({"MUG": 1})
        await w.wait(order, "completed")
