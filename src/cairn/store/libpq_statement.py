"""A prepared statement run straight on libpq (:mod:`psycopg.pq`), without a psycopg cursor.

The append is one short statement per command, and psycopg's cursor layer around it (adapting
each parameter, its prepared-statement bookkeeping, transforming the result row) costs about
45 µs of client CPU a statement here; at 8 writers on 2 cores that CPU is taken from the
server. A :class:`LibpqStatement` sends parameters the caller has already made text, waits on
the socket through the event loop, and returns libpq's result for the caller to read the few
text values it needs (against the cursor path, 7 interleaved rounds in one process: cairn/raw
INSERT 1 writer 0.78 -> 0.84, 8 writers 0.62 -> 0.70). Only the append takes this path;
everything else uses psycopg as usual.

A wait that does not finish (the task cancelled, or the connection lost) asks the server to
cancel the statement, as psycopg does, and closes the connection: a statement still in flight
would otherwise answer its next user, and the pool replaces a closed connection. Failures raise
what ``conn.execute`` would raise (``psycopg.errors.error_from_result``), so callers translate
them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Sequence
from functools import partial

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

from cairn.sql.pool import Connection

#: SQLSTATE of "prepared statement does not exist" (after a ``DEALLOCATE`` or ``DISCARD ALL``).
_UNDEFINED_STATEMENT = "26000"
#: How long an abandoned statement's cancel request may take before the connection just closes.
_CANCEL_TIMEOUT = 2.0


class LibpqStatement:
    """One SQL statement, prepared once on each connection that runs it."""

    def __init__(self, name: str, sql: str) -> None:
        """``sql`` uses libpq placeholders (``$1``, ``$2``…); ``name`` must not clash with the
        names psycopg gives its own prepared statements (``_pg3_…``)."""
        self._name = name.encode()
        self._sql = sql.encode()
        self._prepared_on: weakref.WeakSet[Connection] = weakref.WeakSet()

    async def run(self, conn: Connection, params: Sequence[bytes | None]) -> pq.abc.PGresult:
        """The statement's result with ``params`` (text); raises the ``psycopg.Error`` subclass
        of a failure, as ``conn.execute`` would."""
        async with conn.lock:
            result = await self._execute(conn, params)
            if _sqlstate(result) == _UNDEFINED_STATEMENT:  # someone deallocated it
                self._prepared_on.discard(conn)
                result = await self._execute(conn, params)
        if result.status != pq.ExecStatus.TUPLES_OK:
            raise error_from_result(result, conn.info.encoding)
        return result

    async def _execute(self, conn: Connection, params: Sequence[bytes | None]) -> pq.abc.PGresult:
        pgconn = conn.pgconn
        if conn not in self._prepared_on:
            prepared = await _exchange(conn, partial(pgconn.send_prepare, self._name, self._sql))
            if prepared.status != pq.ExecStatus.COMMAND_OK:
                raise error_from_result(prepared, conn.info.encoding)
            self._prepared_on.add(conn)
        return await _exchange(conn, partial(pgconn.send_query_prepared, self._name, params))


async def _exchange(conn: Connection, send: Callable[[], None]) -> pq.abc.PGresult:
    """``send()``, then its result; an exchange that does not finish abandons the connection."""
    try:
        send()
        return await _result(conn.pgconn)
    except BaseException:
        await _abandon(conn)
        raise


async def _result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult:
    """Flush what was sent and wait for the one result of a single statement (libpq's
    non-blocking protocol: consume input while busy, then take results until none)."""
    loop = asyncio.get_running_loop()
    while pgconn.flush():
        await _socket_ready(loop, pgconn.socket, write=True)
    results: list[pq.abc.PGresult] = []
    while True:
        pgconn.consume_input()
        if pgconn.is_busy():
            await _socket_ready(loop, pgconn.socket, write=False)
            continue
        result = pgconn.get_result()
        if result is None:
            break
        results.append(result)
    if not results:
        raise psycopg.OperationalError("no result from PostgreSQL")
    return results[-1]


async def _socket_ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _abandon(conn: Connection) -> None:
    """Cancel whatever the connection is running (best effort, briefly), then close it."""
    with contextlib.suppress(Exception):
        await asyncio.shield(conn.cancel_safe(timeout=_CANCEL_TIMEOUT))
    await conn.close()


def _sqlstate(result: pq.abc.PGresult) -> str | None:
    state = result.error_field(pq.DiagnosticField.SQLSTATE)
    return state.decode() if state else None
