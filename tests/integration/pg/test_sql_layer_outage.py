"""A PostgreSQL outage as the SQL layer and the leases see it (SPEC §12): the database of this
test refuses connections and loses its sessions (``ALLOW_CONNECTIONS false`` and its backends
terminated, from an admin connection to another database), then comes back.

Every failure is a :class:`StoreUnavailableError` (never a driver error), a pool whose database
is down answers within about a second instead of its whole timeout, and pool and leases are back
by themselves within seconds of the database's return."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from cairn.errors import StoreUnavailableError
from cairn.leases import Leases
from cairn.sql.database import Database
from cairn.sql.factory import open_database
from cairn.sql.postgres_connect import SessionLimits, configure_sessions, connect, session_limits

PG_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _allow(pg_url: str, allow: bool) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


@contextmanager
def outage(pg_url: str) -> Iterator[None]:
    _allow(pg_url, False)
    try:
        yield
    finally:
        _allow(pg_url, True)


@contextmanager
def limits(given: SessionLimits) -> Iterator[None]:
    before = session_limits()
    configure_sessions(given)
    try:
        yield
    finally:
        configure_sessions(before)


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    database = open_database(pg_url)
    try:
        yield database
    finally:
        await database.close()


async def _until_it_answers(db: Database, within: float) -> float:
    started = time.monotonic()
    while True:
        try:
            await db.fetchone("SELECT 1 AS one")
            return time.monotonic() - started
        except StoreUnavailableError:
            assert time.monotonic() - started < within, "the pool did not come back"
            await asyncio.sleep(0.1)


async def test_a_terminated_session_is_store_unavailable_and_the_next_query_reconnects(
    db: Database, pg_url: str
) -> None:
    assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
    with outage(pg_url), pytest.raises(StoreUnavailableError):
        async with db.transaction() as tx:
            await tx.execute("SELECT 1")
    assert await _until_it_answers(db, within=10.0) < 10.0


async def test_while_the_database_refuses_connections_queries_fail_fast(
    db: Database, pg_url: str
) -> None:
    await db.fetchone("SELECT 1 AS one")
    with outage(pg_url):
        for _ in range(3):
            with pytest.raises(StoreUnavailableError):
                await db.fetchall("SELECT 1")
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await db.fetchall("SELECT 1")
        assert time.monotonic() - started < 2.5  # not the pool's whole 10 s timeout


async def test_a_pool_is_back_within_seconds_of_a_long_outage(db: Database, pg_url: str) -> None:
    await db.fetchone("SELECT 1 AS one")
    with outage(pg_url):
        # Long enough for psycopg_pool's doubling reconnect delay to pass 4 s, had it no cap.
        deadline = time.monotonic() + 9.0
        while time.monotonic() < deadline:
            with pytest.raises(StoreUnavailableError):
                await db.fetchall("SELECT 1")
            await asyncio.sleep(0.5)
    assert await _until_it_answers(db, within=8.0) < 8.0


async def test_every_session_runs_under_the_configured_timeouts(pg_url: str) -> None:
    with limits(
        SessionLimits(statement_timeout=12, lock_timeout=3, idle_in_transaction_timeout=45)
    ):
        conn = await connect(pg_url)
    try:
        shown = {}
        for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
            row = await (await conn.execute(f"SHOW {name}")).fetchone()
            assert row is not None
            shown[name] = row[0]
    finally:
        await conn.close()
    assert shown == {
        "statement_timeout": "12s",
        "lock_timeout": "3s",
        "idle_in_transaction_session_timeout": "45s",
    }


async def test_a_statement_past_the_statement_timeout_is_store_unavailable(pg_url: str) -> None:
    with limits(SessionLimits(statement_timeout=0.2)):
        database = open_database(pg_url)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="statement timeout"):
                await database.fetchall("SELECT pg_sleep(5)")
            assert time.monotonic() - started < 3
        finally:
            await database.close()


async def test_a_lease_waits_out_an_outage_and_is_taken_again_after_it(pg_url: str) -> None:
    leases = Leases(pg_url)
    lease = leases.lease("projection:orders")
    try:
        assert await lease.try_acquire()
        with outage(pg_url):
            assert not await lease.still_held()
            assert not await lease.try_acquire()  # not taken, and no error: asked again later
        started = time.monotonic()
        while not await lease.try_acquire():
            assert time.monotonic() - started < 10.0
            await asyncio.sleep(0.2)
        assert await lease.still_held()
    finally:
        await leases.close()
