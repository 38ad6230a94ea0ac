"""PostgreSQL: the :class:`Database` over a psycopg pool (through :class:`HotConnections`).

Every transaction runs in pipeline mode with BEGIN and COMMIT written by hand: BEGIN goes with
the first statement and COMMIT with the last writes, so a read-model batch costs its reads plus
one round trip (psycopg's own transaction block adds two: a sync before COMMIT, and BEGIN
alone). A read waits for its result; so does a write outside :meth:`Tx.pipelined`, whose row
count the caller may need.

The pool's connections are autocommit and rows are made dicts per cursor, so the Database can
run over any autocommit pool (the event store's, later) as well as the one it builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Iterable

import psycopg
from psycopg import AsyncPipeline
from psycopg.rows import dict_row

from cairn.errors import StaleRowError
from cairn.sql.database import Database, Dialect, Params, Row, Schema, Tx
from cairn.sql.outage import unavailable_translated
from cairn.sql.pool import Connection, HotConnections
from cairn.sql.postgres_connect import describe, open_pool
from cairn.sql.registry import apply_postgres

__all__ = ["SCHEMA_LOCK_KEY", "PostgresDatabase"]

#: The advisory lock every schema transaction takes (any 64-bit constant, stable forever).
SCHEMA_LOCK_KEY = 872163510051
#: The SQLSTATE a version guard raises (e.g. ``cairn_saga_versions``): a
#: :class:`~cairn.errors.StaleRowError`.
STALE_ROW = "CA412"


@functools.lru_cache(maxsize=1024)
def _pg(sql: str) -> str:
    """``?`` placeholders → psycopg's ``%s`` (a literal ``%`` doubled first). Cached: the same
    few hundred statements run all day."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresTx(Tx):
    dialect = Dialect.POSTGRES

    def __init__(self, conn: Connection, pipeline: AsyncPipeline) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self._pipelining = False

    async def execute(self, sql: str, params: Params = ()) -> int:
        cur = await self._conn.execute(_pg(sql), tuple(params))
        if self._pipelining:
            return -1
        await self._pipeline.sync()  # the result (and any error) now, and its row count
        return cur.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = [tuple(r) for r in rows]
        if batch:
            async with self._conn.cursor() as cur:
                await cur.executemany(_pg(sql), batch)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_pg(sql), tuple(params))
            return await cur.fetchall()

    @contextlib.asynccontextmanager
    async def pipelined(self) -> AsyncIterator[None]:
        self._pipelining = True
        try:
            yield
        finally:
            self._pipelining = False


class PostgresDatabase(Database):
    """Transactions on connections borrowed from one pool.

    ``PostgresDatabase(conninfo, min_size=, max_size=)`` builds its own pool on first use (and
    closes it); :meth:`over` runs on a given one (whose owner closes it).
    """

    dialect = Dialect.POSTGRES

    def __init__(self, conninfo: str, *, min_size: int = 1, max_size: int = 3) -> None:
        self._conninfo = conninfo
        self._min_size = min_size
        self.max_size = max_size
        self._connections: HotConnections | None = None
        self._owns_pool = True
        self._opening = asyncio.Lock()

    @classmethod
    def over(cls, connections: HotConnections) -> PostgresDatabase:
        """A Database on an existing pool (not closed by :meth:`close`)."""
        db = cls("", max_size=connections.pool.max_size)
        db._connections = connections
        db._owns_pool = False
        return db

    async def _pool(self) -> HotConnections:
        if self._connections is None:
            async with self._opening:
                if self._connections is None:
                    self._connections = await self._open()
        return self._connections

    async def _open(self) -> HotConnections:
        pool = await open_pool(
            self._conninfo,
            min_size=self._min_size,
            max_size=self.max_size,
            application_name="cairn-sql",
        )
        # The most recently used connection first (cairn.sql.pool): a run of short
        # transactions (a live projection, a saga step) answers sooner on a hot server process.
        return HotConnections(pool, purpose="for the SQL layer")

    def _translated(self) -> contextlib.AbstractContextManager[None]:
        """A lost or refused connection, a server shutting down, a statement or lock timeout
        as :class:`~cairn.errors.StoreUnavailableError` (:mod:`cairn.sql.outage`)."""
        return unavailable_translated(
            f"PostgreSQL at {describe(self._conninfo)}", standby=self.standby
        )

    @contextlib.asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Tx]:
        with self._translated():
            async with self._transaction(durable) as tx:
                yield tx

    @contextlib.asynccontextmanager
    async def _transaction(self, durable: bool) -> AsyncIterator[Tx]:
        connections = await self._pool()
        async with connections.connection() as conn:
            try:
                async with conn.pipeline() as pipeline:
                    await conn.execute("BEGIN")
                    if not durable:
                        # This transaction only: see Database.transaction. A pool shared with
                        # saga state must not turn it on per connection.
                        await conn.execute("SET LOCAL synchronous_commit = off")
                    tx = _PostgresTx(conn, pipeline)
                    yield tx
                    await conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                if isinstance(exc, psycopg.Error) and exc.sqlstate:
                    # The server refused a statement and aborted the pipeline: psycopg may now
                    # believe in prepared statements the server never prepared ("prepared
                    # statement _pg3_1 does not exist" on this connection's next use). Close it;
                    # the pool replaces it. Rare: only a failed statement gets here.
                    with contextlib.suppress(Exception):
                        await conn.close()
                if isinstance(exc, psycopg.Error) and exc.sqlstate == STALE_ROW:
                    raise StaleRowError(exc.diag.message_primary or "a row changed") from None
                raise
            tx.committed()

    @contextlib.asynccontextmanager
    async def schema_transaction(self) -> AsyncIterator[Tx]:
        async with self.transaction() as tx:
            # Two processes starting together would both run CREATE TABLE IF NOT EXISTS and one
            # could fail on the catalogue's unique index (the check and the create are not
            # atomic); this transaction-scoped lock makes every check-and-create one at a time.
            await tx.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK_KEY,))
            yield tx

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        with self._translated():
            connections = await self._pool()
            async with (
                connections.connection() as conn,
                conn.cursor(row_factory=dict_row) as cur,
            ):
                await cur.execute(_pg(sql), tuple(params))
                return await cur.fetchall()

    async def execute(self, sql: str, params: Params = ()) -> int:
        with self._translated():
            connections = await self._pool()
            async with connections.connection() as conn:
                # Autocommit: one statement is its own transaction, one round trip.
                cur = await conn.execute(_pg(sql), tuple(params))
                return cur.rowcount

    async def migrate(self, *schemas: Schema) -> list[str]:
        with self._translated():
            connections = await self._pool()
            async with connections.connection() as conn:
                return await apply_postgres(conn, [s.for_dialect(self.dialect) for s in schemas])

    async def close(self) -> None:
        connections, self._connections = self._connections, None
        if connections is not None and self._owns_pool:
            await connections.close()
