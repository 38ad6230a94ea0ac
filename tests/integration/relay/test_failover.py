"""Two relay workers on one PostgreSQL database: one publishes, the other takes over when the
first dies (kill -9)."""

from __future__ import annotations

import asyncio

import psycopg
from relay_helpers import (
    append_orders,
    kill_9,
    make_relay,
    next_line,
    redis_entries,
    running,
    start_worker,
    wait_for,
)

import cairn


def _checkpoint(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        try:
            row = conn.execute(
                "SELECT MAX(position) FROM checkpoints WHERE name LIKE 'relay:%'"
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0] or 0) if row else 0


async def test_only_one_of_two_workers_publishes_and_the_other_takes_over_when_it_dies(
    pg_url: str, redis_url: str, redis_topic: str
) -> None:
    async with cairn.open_store(pg_url) as store:
        first = await asyncio.to_thread(start_worker, pg_url, redis_url, redis_topic, 100)
        second = None
        try:
            assert await next_line(first, 20) == "owner"
            second = await asyncio.to_thread(start_worker, pg_url, redis_url, redis_topic, 100)

            before = await append_orders(store, 100)
            await wait_for(lambda: _checkpoint(pg_url) >= before, 30, "first worker to publish")
            positions = [ce["position"] for _, ce in await redis_entries(redis_url, redis_topic)]
            # Both workers run, yet every event went out once: only the lease holder publishes.
            assert positions == list(range(1, before + 1))

            kill_9(first)
            assert await next_line(second, 30) == "owner"
            last = await append_orders(store, 100, prefix="order2")
            await wait_for(lambda: _checkpoint(pg_url) >= last, 30, "second worker to publish")
        finally:
            for worker in (first, second):
                if worker is not None and worker.poll() is None:
                    kill_9(worker)

    positions = [ce["position"] for _, ce in await redis_entries(redis_url, redis_topic)]
    assert positions == list(range(1, last + 1))


async def test_a_second_relay_on_the_same_database_stands_by_until_the_first_stops(
    sqlite_url: str, redis_url: str, redis_topic: str
) -> None:
    async with cairn.open_store(sqlite_url) as store:
        first = make_relay(store, sqlite_url, redis_url, redis_topic)
        second = make_relay(store, sqlite_url, redis_url, redis_topic, lease_retry=0.05)
        async with running(first):
            await append_orders(store, 2)
            await first.wait_until(6)
            async with running(second):
                await wait_for(lambda: second.state == "standby", what="second relay standing by")
                status = await second.status()
                assert (status.owner, status.position, status.lag_events) == (False, 6, 0)
                await first.close()
                last = await append_orders(store, 2, prefix="order2")
                await second.wait_until(last)
                assert (await second.status()).owner

    positions = [ce["position"] for _, ce in await redis_entries(redis_url, redis_topic)]
    assert positions == list(range(1, last + 1))
