"""A psycopg pool that hands out its most recently used connection first.

psycopg's pool hands connections out in turn (first in, first out), so a caller doing one thing
at a time alternates between PostgreSQL server processes that have gone cold; a hot one answers
a short statement about 150 µs sooner (measured here: the same append on one connection took
490 µs, alternating between two 650 µs). :class:`HotConnections` keeps the connections it gets
back and hands out the last one first. They stay checked out of the pool (so there are never more
than its ``max_size``), and go back to it whenever someone is waiting there, or when they are
broken or not idle (the pool then rolls them back or discards them).

During an outage a caller must not wait the pool's whole timeout for a connection that will not
come (every request would hang for it before its 503). :class:`HotConnections` waits in slices
of :data:`OUTAGE_WAIT`: when a slice ran out and the pool failed to connect meanwhile (its
``connections_errors`` count moved), or a connection came back broken, the database is taken
to be down and the checkout fails at once; while it is down, a checkout waits one slice at
most. The pool keeps trying to connect meanwhile, so the first checkout after the database's
return gets a fresh connection. A pool that is merely busy (no connection errors) is waited for
up to its own timeout, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cairn.errors import StoreUnavailableError

Connection = psycopg.AsyncConnection[Any]

#: Seconds a checkout waits for a connection while the database looks down (see the module).
OUTAGE_WAIT = 1.0


class HotConnections:
    def __init__(self, pool: AsyncConnectionPool[Any], *, purpose: str) -> None:
        """``purpose`` completes the error when the pool has no connection in time: "no
        connection to PostgreSQL {purpose} became available"."""
        self.pool = pool
        self._purpose = purpose
        self._idle: list[Connection] = []
        self._waiting = 0
        self._closed = False
        #: Whether the database looked down at the last checkout or checkin (see the module).
        self.down = False

    async def checkout(self) -> Connection:
        if self._idle:
            return self._idle.pop()
        self._waiting += 1
        try:
            conn = await self._wait_for_connection()
        finally:
            self._waiting -= 1
        self.down = False
        return conn

    async def _wait_for_connection(self) -> Connection:
        errors = self._connect_errors()
        waited = 0.0
        while True:
            wait = min(OUTAGE_WAIT, max(self.pool.timeout - waited, 0.001))
            try:
                conn: Connection = await self.pool.getconn(wait)
                return conn
            except PoolTimeout:
                waited += wait
                if self.down or self._connect_errors() != errors:
                    self.down = True
                elif waited < self.pool.timeout:
                    continue  # busy, not down: keep waiting up to the pool's timeout
                raise StoreUnavailableError(
                    f"no connection to PostgreSQL {self._purpose} became available"
                ) from None

    def _connect_errors(self) -> int:
        """How many connection attempts of the pool failed so far (psycopg_pool's counter)."""
        return self.pool.get_stats().get("connections_errors", 0)

    async def checkin(self, conn: Connection) -> None:
        if conn.broken:
            # The server or the network dropped it: its siblings are likely gone too.
            self.down = True
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if self._closed or self._waiting or conn.broken or not idle:
            await self.pool.putconn(conn)
        else:
            self._idle.append(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        conn = await self.checkout()
        try:
            yield conn
        finally:
            await self.checkin(conn)

    async def close(self) -> None:
        """Return what is kept here and close the pool."""
        self._closed = True
        while self._idle:
            await self.pool.putconn(self._idle.pop())
        await self.pool.close()
