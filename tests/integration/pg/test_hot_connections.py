"""cairn.sql.pool: the most recently used connection first; when all are in use, callers wait in
turn and a connection checked in goes straight to the first of them, requests before background
work (unless that has waited out its patience)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from cairn.background import mark_background
from cairn.errors import StoreUnavailableError
from cairn.sql.pool import BACKGROUND_PATIENCE, HotConnections


@pytest.fixture
async def hot(pg_url: str) -> AsyncIterator[HotConnections]:
    pool: AsyncConnectionPool = AsyncConnectionPool(
        pg_url, min_size=1, max_size=2, open=False, timeout=2, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    connections = HotConnections(pool, purpose="for the test")
    yield connections
    await connections.close()


async def test_the_most_recently_returned_connection_comes_out_first(
    hot: HotConnections,
) -> None:
    first, second = await hot.checkout(), await hot.checkout()
    await hot.checkin(first)
    await hot.checkin(second)
    assert await hot.checkout() is second


async def test_a_caller_waiting_on_the_pool_gets_a_returned_connection(
    hot: HotConnections,
) -> None:
    held = [await hot.checkout(), await hot.checkout()]
    waiter = asyncio.create_task(hot.checkout())
    await asyncio.sleep(0.05)
    await hot.checkin(held[0])
    assert await asyncio.wait_for(waiter, 2) is held[0]


async def test_a_connection_left_in_a_transaction_goes_back_to_the_pool(
    hot: HotConnections,
) -> None:
    conn = await hot.checkout()
    await conn.execute("BEGIN")
    await hot.checkin(conn)
    again = await hot.checkout()
    status = again.info.transaction_status.name
    await hot.checkin(again)
    assert status == "IDLE"


async def test_an_empty_pool_is_reported_as_unavailable(hot: HotConnections) -> None:
    held = [await hot.checkout(), await hot.checkout()]
    with pytest.raises(StoreUnavailableError, match="no connection to PostgreSQL for the test"):
        await hot.checkout()
    for conn in held:
        await hot.checkin(conn)


async def test_callers_that_gave_up_or_were_served_leave_the_line(hot: HotConnections) -> None:
    held = [await hot.checkout(), await hot.checkout()]
    gone = asyncio.create_task(hot.checkout())
    served = asyncio.create_task(hot.checkout())
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    await hot.checkin(held[0])
    assert await asyncio.wait_for(served, 2) is held[0]

    assert not hot._waiters
    await hot.checkin(held[0])
    await hot.checkin(held[1])


async def test_waiting_callers_are_served_in_turn(hot: HotConnections) -> None:
    held = [await hot.checkout(), await hot.checkout()]
    first = asyncio.create_task(hot.checkout())
    await asyncio.sleep(0.01)
    second = asyncio.create_task(hot.checkout())
    await asyncio.sleep(0.01)

    await hot.checkin(held[1])

    assert await asyncio.wait_for(first, 2) is held[1]
    assert not second.done()
    await hot.checkin(held[0])
    assert await asyncio.wait_for(second, 2) is held[0]


async def test_a_cancelled_waiter_loses_no_connection(hot: HotConnections) -> None:
    held = [await hot.checkout(), await hot.checkout()]
    gone = asyncio.create_task(hot.checkout())
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)

    await hot.checkin(held[0])

    assert await asyncio.wait_for(hot.checkout(), 2) is held[0]
    await hot.checkin(held[0])
    await hot.checkin(held[1])


async def _all_in_use_one_broken_and_a_caller_waiting(
    hot: HotConnections, pg_url: str
) -> tuple[list[psycopg.AsyncConnection[Any]], asyncio.Task[psycopg.AsyncConnection[Any]]]:
    """Both connections checked out, the first one's session ended by the server (psycopg has
    noticed), and a third caller waiting in line."""
    held = [await hot.checkout(), await hot.checkout()]
    waiter = asyncio.create_task(hot.checkout())
    await asyncio.sleep(0.01)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (held[0].info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        await held[0].execute("SELECT 1")
    return held, waiter


async def test_a_broken_connection_sends_the_next_caller_to_the_pool_for_a_new_one(
    hot: HotConnections, pg_url: str
) -> None:
    held, waiter = await _all_in_use_one_broken_and_a_caller_waiting(hot, pg_url)

    await hot.checkin(held[0])

    fresh = await asyncio.wait_for(waiter, 5)
    assert fresh is not held[0]
    assert await (await fresh.execute("SELECT 1")).fetchone() == (1,)
    await hot.checkin(fresh)
    await hot.checkin(held[1])


async def test_a_caller_whose_freed_place_was_taken_waits_for_the_next_connection(
    hot: HotConnections, pg_url: str
) -> None:
    held, waiter = await _all_in_use_one_broken_and_a_caller_waiting(hot, pg_url)

    await hot.checkin(held[0])  # frees a place in the pool and sends the waiter there…
    fresh = await hot.checkout()  # …but this caller, running first, takes it
    await hot.checkin(held[1])

    assert await asyncio.wait_for(waiter, 1) is held[1]  # (not stuck in the full pool)
    await hot.checkin(fresh)
    await hot.checkin(held[1])


async def test_a_caller_cancelled_as_its_connection_is_handed_over_stays_cancelled(
    hot: HotConnections,
) -> None:
    held = [await hot.checkout(), await hot.checkout()]
    stopping = asyncio.create_task(hot.checkout())
    await asyncio.sleep(0.01)

    await hot.checkin(held[0])  # handed to the waiting caller…
    stopping.cancel()  # …which is cancelled before it runs again
    await asyncio.gather(stopping, return_exceptions=True)

    assert stopping.cancelled()  # (a swallowed cancellation would keep a stopping runner going)
    assert await asyncio.wait_for(hot.checkout(), 1) is held[0]
    await hot.checkin(held[0])
    await hot.checkin(held[1])


async def _checkout_in_background(hot: HotConnections) -> psycopg.AsyncConnection[Any]:
    mark_background()  # this task's own context: a worker's
    return await hot.checkout()


async def _served_first(hot: HotConnections, *, worker_waited: float) -> str:
    """Both connections in use, background work waiting ``worker_waited`` s, then a request:
    which of the two the next connection checked in goes to (the other gets the one after)."""
    held = [await hot.checkout(), await hot.checkout()]
    worker = asyncio.create_task(_checkout_in_background(hot))
    await asyncio.sleep(worker_waited)
    request = asyncio.create_task(hot.checkout())
    await asyncio.sleep(0.01)

    await hot.checkin(held[0])
    done, _ = await asyncio.wait({worker, request}, timeout=2, return_when=asyncio.FIRST_COMPLETED)
    await hot.checkin(held[1])
    both = await asyncio.wait_for(asyncio.gather(worker, request), 2)
    for conn in both:
        await hot.checkin(conn)
    assert set(map(id, both)) == set(map(id, held))
    return "request" if done == {request} else "background work"


async def test_a_waiting_request_is_served_before_background_work_waiting_longer(
    hot: HotConnections,
) -> None:
    assert await _served_first(hot, worker_waited=0.01) == "request"


async def test_background_work_that_waited_out_its_patience_goes_before_a_request(
    hot: HotConnections,
) -> None:
    assert await _served_first(hot, worker_waited=BACKGROUND_PATIENCE + 0.05) == "background work"


async def test_background_work_that_gave_up_leaves_the_line(hot: HotConnections) -> None:
    held = [await hot.checkout(), await hot.checkout()]
    gone = asyncio.create_task(_checkout_in_background(hot))
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)

    assert not hot._background
    await hot.checkin(held[0])
    assert await asyncio.wait_for(hot.checkout(), 1) is held[0]
    await hot.checkin(held[0])
    await hot.checkin(held[1])
