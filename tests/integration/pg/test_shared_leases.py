"""The leases of one process share one PostgreSQL session, and are all lost with it."""

from __future__ import annotations

import psycopg

from cairn.leases import Leases


async def _lease_sessions(pg_url: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'cairn-leases'"
        )
        return [int(row[0]) for row in await cur.fetchall()]


async def test_leases_share_one_connection_and_are_all_lost_when_it_is_killed(
    pg_url: str,
) -> None:
    leases = Leases(pg_url)
    try:
        held = [leases.lease(name) for name in ("projection:a", "projection:b", "saga:0of1")]
        for lease in held:
            assert await lease.try_acquire()
        sessions = await _lease_sessions(pg_url)
        assert len(sessions) == 1

        # Session locks are re-entrant, so the process itself must refuse a second claimant.
        assert not await leases.lease("projection:a").try_acquire()
        # Another process (another session) is refused by the server.
        other = Leases(pg_url)
        try:
            assert not await other.lease("projection:b").try_acquire()
        finally:
            await other.close()

        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (sessions[0],))

        assert [await lease.still_held() for lease in held] == [False, False, False]
        assert not any(lease.held for lease in held)
        # The next attempt connects again and takes the lease back.
        assert await held[0].try_acquire()
        assert await held[0].still_held()
        assert len(await _lease_sessions(pg_url)) == 1
    finally:
        await leases.close()
    assert await _lease_sessions(pg_url) == []


async def test_a_released_lease_can_be_taken_by_another_process(pg_url: str) -> None:
    mine, theirs = Leases(pg_url), Leases(pg_url)
    try:
        lease = mine.lease("relay")
        assert await lease.try_acquire()
        contender = theirs.lease("relay")
        assert not await contender.try_acquire()
        await lease.release()
        assert await contender.try_acquire()
        assert not await lease.try_acquire()
    finally:
        await mine.close()
        await theirs.close()
