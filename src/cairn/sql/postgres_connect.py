"""The one way cairn reaches PostgreSQL: single connections (set-up, LISTEN, leases) and pools
(the event store's, the SQL layer's), all in autocommit mode and on UTC, with a connect timeout,
and failures as :class:`~cairn.errors.StoreUnavailableError` naming the server (never the
password)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cairn.errors import StoreUnavailableError
from cairn.sql.pool import Connection

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


def _options(application_name: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT,
        "options": "-c TimeZone=UTC",
    }
    if application_name is not None:  # else the URL's own, if it names one
        options["application_name"] = application_name
    return options


async def connect(conninfo: str, *, application_name: str | None = None) -> Connection:
    """One connection of its own (not pooled)."""
    try:
        return await psycopg.AsyncConnection.connect(conninfo, **_options(application_name))
    except psycopg.Error as exc:
        raise StoreUnavailableError(
            f"cannot connect to PostgreSQL at {describe(conninfo)}: {first_line(exc)}"
        ) from None


async def open_pool(
    conninfo: str, *, min_size: int, max_size: int, application_name: str | None = None
) -> AsyncConnectionPool[Connection]:
    """A pool, open and holding ``min_size`` connections."""
    pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=CONNECT_TIMEOUT * 2,
        kwargs=_options(application_name),
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)
    except PoolTimeout:
        await pool.close()
        raise StoreUnavailableError(
            f"cannot open a connection pool to PostgreSQL at {describe(conninfo)}"
        ) from None
    return pool
