"""PostgreSQL: a statement run straight on libpq (the append's path) behaves like ``execute``:
failures raise psycopg's exceptions, a lost prepared statement is prepared again, and an
abandoned wait neither leaves its statement running nor hands a busy connection to anyone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

import cairn
from cairn import NewEvent
from cairn.errors import StoreUnavailableError
from cairn.store.libpq_statement import LibpqStatement

DIVIDE = LibpqStatement("cairn_test_divide", "SELECT 10 / $1::int")


@pytest.fixture
async def conn(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        yield conn


async def test_returns_the_text_result(conn: psycopg.AsyncConnection[object]) -> None:
    result = await DIVIDE.run(conn, [b"5"])
    assert result.get_value(0, 0) == b"2"


async def test_a_failing_statement_raises_psycopgs_exception_and_keeps_the_connection(
    conn: psycopg.AsyncConnection[object],
) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        await DIVIDE.run(conn, [b"0"])
    assert not conn.closed
    assert (await DIVIDE.run(conn, [b"2"])).get_value(0, 0) == b"5"


async def test_a_deallocated_statement_is_prepared_again(
    conn: psycopg.AsyncConnection[object],
) -> None:
    await DIVIDE.run(conn, [b"1"])
    await conn.execute("DEALLOCATE ALL")
    assert (await DIVIDE.run(conn, [b"10"])).get_value(0, 0) == b"1"


async def test_a_cancelled_append_is_cancelled_on_the_server_and_the_store_goes_on(
    pg_url: str,
) -> None:
    async with cairn.open_store(f"{pg_url}?pool_min=1&pool_max=1") as store:
        await store.append("warm-1", [NewEvent("E", {})], 0)
        async with await psycopg.AsyncConnection.connect(pg_url) as blocker:
            # An open transaction holds version 1 of busy-1: our append waits on its index entry.
            await blocker.execute(
                "SELECT cairn_append('busy-1', 0, "
                """'[{"i": "6f1c1a52-4a43-4a5e-9a86-0d5b7f0c3e11", "t": "E", "v": 1, """
                """"d": {}, "m": {}}]'::jsonb)"""
            )
            append = asyncio.create_task(store.append("busy-1", [NewEvent("E", {})], 0))
            await waiting_on_a_lock(pg_url)
            append.cancel()
            with pytest.raises(asyncio.CancelledError):
                await append
            await no_append_running(pg_url)
            await blocker.rollback()
        assert await store.read_stream("busy-1") == []
        await store.append("after-1", [NewEvent("E", {})], 0)
        assert [e.stream_id for e in await store.read_stream("after-1")] == ["after-1"]


async def test_after_the_server_drops_the_connection_the_next_append_succeeds(
    pg_url: str,
) -> None:
    async with cairn.open_store(f"{pg_url}?pool_min=1&pool_max=1") as store:
        await store.append("s-1", [NewEvent("E", {})], 0)
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        # The backend exits when it handles the signal: a statement sent before then could
        # still run (a loaded machine in CI did that once).
        await _poll(pg_url, "pid <> pg_backend_pid()", expect=False)
        with pytest.raises(StoreUnavailableError):
            await store.append("s-2", [NewEvent("E", {})], 0)
        await store.append("s-3", [NewEvent("E", {})], 0)
        assert await store.read_stream("s-2") == []
        assert len(await store.read_stream("s-3")) == 1


async def waiting_on_a_lock(pg_url: str) -> None:
    await _poll(pg_url, "wait_event_type = 'Lock'", expect=True)


async def no_append_running(pg_url: str) -> None:
    await _poll(pg_url, "query LIKE 'SELECT r_version%%' AND state = 'active'", expect=False)


async def _poll(pg_url: str, condition: str, *, expect: bool) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        for _ in range(200):
            cur = await conn.execute(
                "SELECT EXISTS (SELECT FROM pg_stat_activity "
                f"WHERE datname = current_database() AND {condition})"
            )
            row = await cur.fetchone()
            if row is not None and row[0] is expect:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(f"pg_stat_activity never showed {condition!r} = {expect}")
