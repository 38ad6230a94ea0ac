"""A psycopg pool that hands out its most recently used connection first.

psycopg's pool hands connections out in turn (first in, first out), so a caller doing one thing
at a time alternates between PostgreSQL server processes that have gone cold; a hot one answers
a short statement about 150 µs sooner (measured here: the same append on one connection took
490 µs, alternating between two 650 µs). :class:`HotConnections` keeps the connections it gets
back and hands out the last one first. They stay checked out of the pool (so there are never more
than its ``max_size``), and go back to it only when they are broken or not idle (the pool then
rolls them back or discards them). When every connection is in use, a caller waits here, in
turn, and a connection checked in goes straight to the first in line: through the pool, a
hand-over cost more client CPU than the statement it was for (psycopg_pool's ``getconn`` and
``putconn``, 6% of a saga burst's client CPU, where most checkouts waited).

During an outage a caller must not wait the pool's whole timeout for a connection that will not
come (every request would hang for it before its 503). :class:`HotConnections` waits in slices
of :data:`OUTAGE_WAIT`: when a slice ran out and the pool failed to connect meanwhile (its
``connections_errors`` count moved), or a connection came back broken, the database is taken
to be down and the checkout fails at once; while it is down, a checkout waits one slice at
most. The pool keeps trying to connect meanwhile, so the first checkout after the database's
return gets a fresh connection. A pool that is merely busy (no connection errors) is waited for
up to its own timeout, as before.

Waiting requests are served before waiting background work (a worker's: :mod:`cairn.background`):
in ``cairn serve`` at 160 orders/s four of an order's six appends are saga steps', and a request
behind them waited for most of its latency. Background work that has waited
:data:`BACKGROUND_PATIENCE` goes first again, so a busy API cannot starve the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cairn.background import is_background
from cairn.errors import StoreUnavailableError

Connection = psycopg.AsyncConnection[Any]

#: Seconds a checkout waits for a connection while the database looks down (see the module).
OUTAGE_WAIT = 1.0
#: Seconds background work waits behind requests before it is served first (see the module).
BACKGROUND_PATIENCE = 0.1

_Waiter = asyncio.Future[Connection | None]


class HotConnections:
    def __init__(self, pool: AsyncConnectionPool[Any], *, purpose: str) -> None:
        """``purpose`` completes the error when the pool has no connection in time: "no
        connection to PostgreSQL {purpose} became available"."""
        self.pool = pool
        self._purpose = purpose
        self._idle: list[Connection] = []
        #: Callers waiting for a checkin, in turn; ``None`` sends one to the pool instead.
        self._waiters: deque[_Waiter] = deque()
        #: Background work waiting, in turn, with when it began to (``time.monotonic()``).
        self._background: deque[tuple[_Waiter, float]] = deque()
        #: Connections taken from the pool and not given back (idle here or in use).
        self._owned = 0
        self._closed = False
        #: Whether the database looked down at the last checkout or checkin (see the module).
        self.down = False

    async def checkout(self) -> Connection:
        while not self._idle and self._owned >= self.pool.max_size:
            handed = await self._handed_over()
            if handed is not None:
                return handed
            # A place in the pool freed; another caller may have taken it meanwhile: look again.
        if self._idle:
            return self._idle.pop()
        self._owned += 1  # before waiting: concurrent checkouts must not ask for too many
        try:
            conn = await self._wait_for_connection()
        except BaseException:
            self._owned -= 1
            self._wake_one()  # the place this caller held may serve the next in line
            raise
        self.down = False
        return conn

    async def _handed_over(self) -> Connection | None:
        """Wait in line for a connection checked in (or ``None``: a place in the pool freed)."""
        waiter: _Waiter = asyncio.get_running_loop().create_future()
        place: tuple[_Waiter, float] | None = None
        if is_background():
            place = (waiter, time.monotonic())
            self._background.append(place)
        else:
            self._waiters.append(waiter)
        try:
            # asyncio.timeout, not wait_for, which on Python 3.11 swallows a cancellation that
            # arrives as the connection is handed over (cairn.waiting): a runner stopping would
            # go on with its checkout, into a task group that is shutting down.
            async with asyncio.timeout(self.pool.timeout):
                return await waiter
        except TimeoutError:
            raise StoreUnavailableError(
                f"no connection to PostgreSQL {self._purpose} became available"
            ) from None
        except asyncio.CancelledError:
            # Cancelled just after its turn came: the connection (or the freed place in the
            # pool) goes to the next in line.
            if waiter.done() and not waiter.cancelled():
                conn = waiter.result()
                if conn is None:
                    self._wake_one()
                else:
                    self._give(conn)
            raise
        finally:
            # A waiter served was taken off the line by whoever served it. Only one that gave up
            # is still in it (no ``remove`` that fails: its ValueError would format the
            # future's repr, 2% of cairn serve's CPU under load when it ran every time).
            if waiter.cancelled() or not waiter.done():
                with contextlib.suppress(ValueError):
                    if place is None:
                        self._waiters.remove(waiter)
                    else:
                        self._background.remove(place)

    def _next_in_line(self) -> _Waiter | None:
        """The caller to serve next: the first request waiting, unless the first background
        waiter has waited out its patience (or no request waits)."""
        background = self._background
        while background and background[0][0].done():
            background.popleft()
        if background and time.monotonic() - background[0][1] >= BACKGROUND_PATIENCE:
            return background.popleft()[0]
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                return waiter
        return background.popleft()[0] if background else None

    def _give(self, conn: Connection) -> None:
        """A healthy idle connection to the first caller in line, else kept for the next."""
        waiter = self._next_in_line()
        if waiter is None:
            self._idle.append(conn)
        else:
            waiter.set_result(conn)

    def _wake_one(self) -> None:
        """Send the first caller in line to the pool (a connection went back to it)."""
        waiter = self._next_in_line()
        if waiter is not None:
            waiter.set_result(None)

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
        if self._closed or conn.broken or not idle:
            self._owned -= 1
            await self.pool.putconn(conn)
            self._wake_one()
        else:
            self._give(conn)

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
        while (waiter := self._next_in_line()) is not None:
            waiter.set_result(None)
        while self._idle:
            self._owned -= 1
            await self.pool.putconn(self._idle.pop())
        await self.pool.close()
