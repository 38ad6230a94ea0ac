"""How the PostgreSQL event store reaches its server: one connection for set-up, a pool for
everything else, and errors that name the server (never the password)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Final
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cairn.errors import StoreUnavailableError
from cairn.sql.pool import Connection
from cairn.store.urls import PoolSize

CONNECT_TIMEOUT: Final = 5

#: A pooled connection for one unit of work, its connection errors as ``StoreUnavailableError``
#: (``PostgresEventStore._connection``); what the store's parts are handed to reach the server.
Connect = Callable[[], AbstractAsyncContextManager[Connection]]


def describe(conninfo: str) -> str:
    """``host:port/db`` for messages (never the password)."""
    parts = urlsplit(conninfo)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def connect(conninfo: str) -> Connection:
    try:
        return await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )
    except psycopg.Error as exc:
        raise StoreUnavailableError(
            f"cannot connect to PostgreSQL at {describe(conninfo)}: {first_line(exc)}"
        ) from None


async def open_pool(conninfo: str, sizes: PoolSize) -> AsyncConnectionPool:
    """The store's pool, open and holding ``sizes.min`` connections; every connection is in
    autocommit mode and on UTC."""
    pool: AsyncConnectionPool = AsyncConnectionPool(
        conninfo,
        min_size=sizes.min,
        max_size=sizes.max,
        open=False,
        timeout=CONNECT_TIMEOUT * 2,
        kwargs={
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT,
            "options": "-c TimeZone=UTC",
        },
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)
    except PoolTimeout:
        await pool.close()
        raise StoreUnavailableError(
            f"cannot open a connection pool to PostgreSQL at {describe(conninfo)}"
        ) from None
    return pool
