"""One connection budget per process: `cairn serve` stays within CAIRN_DB_MAX_CONNECTIONS."""

from __future__ import annotations

import asyncio

import psycopg

from cairn.api.runtime import start_runtime
from cairn.observability.metrics import Metrics
from cairn.settings import Settings
from cairn.sql.postgres import PostgresDatabase


async def _connections(pg_url: str) -> int:
    """Connections to the test database, other than the one counting them."""
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def _all_closed(pg_url: str, timeout: float = 5.0) -> bool:
    """Whether every connection is gone within ``timeout``: a server process leaves
    ``pg_stat_activity`` a moment after its client closed the socket (sooner on an idle host)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await _connections(pg_url) > 0:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_an_idle_serve_process_holds_at_most_ten_connections(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, auth="disabled")
    runtime = await start_runtime(settings, None, metrics=Metrics(), run_workers=True)
    try:
        container = runtime.container
        assert container.budget.describe() == "10 (store 6, sql 2, listen 1, leases 1)"
        assert runtime.store.pool_size == (1, 6)  # type: ignore[attr-defined]
        assert isinstance(container.database, PostgresDatabase)
        assert container.database.max_size == 2
        await asyncio.sleep(3)  # workers own their leases, projections listen, sagas follow
        assert runtime.workers is not None
        assert runtime.workers.alive()
        assert await _connections(pg_url) <= 10
    finally:
        await runtime.close()
    assert await _all_closed(pg_url)


async def test_a_smaller_budget_is_honoured_under_load(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, auth="disabled", db_max_connections=6)
    runtime = await start_runtime(settings, None, metrics=Metrics(), run_workers=True)
    seen: list[int] = []
    try:
        assert runtime.container.budget.describe() == "6 (store 3, sql 1, listen 1, leases 1)"
        database = runtime.container.database
        store = runtime.store

        async def count_while(busy: asyncio.Future[object]) -> None:
            while not busy.done():
                seen.append(await _connections(pg_url))
                await asyncio.sleep(0.02)

        load = asyncio.gather(
            *(database.fetchall("SELECT pg_sleep(0.05) AS slept") for _ in range(20)),
            *(store.read_all(after=0, limit=10) for _ in range(40)),
        )
        await asyncio.gather(load, count_while(load))
        await asyncio.sleep(1)
        seen.append(await _connections(pg_url))
    finally:
        await runtime.close()
    assert seen
    assert max(seen) <= 6
