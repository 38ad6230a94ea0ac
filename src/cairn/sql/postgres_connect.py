"""The one way cairn reaches PostgreSQL: single connections (set-up, LISTEN, leases) and pools
(the event store's, the SQL layer's), all in autocommit mode and on UTC, with a connect timeout,
and failures as :class:`~cairn.errors.StoreUnavailableError` naming the server (never the
password).

Every session runs under the process's :class:`SessionLimits` (``statement_timeout``,
``lock_timeout``, ``idle_in_transaction_session_timeout``), sent as startup options so that no
statement, lock wait or forgotten transaction can hold a connection (and the request or worker
behind it) for ever: the server ends it, and the caller sees a
:class:`~cairn.errors.StoreUnavailableError` (:mod:`cairn.sql.outage`). The composition root
sets them once from ``CAIRN_DB_STATEMENT_TIMEOUT``, ``CAIRN_DB_LOCK_TIMEOUT`` and
``CAIRN_DB_IDLE_IN_TRANSACTION_TIMEOUT`` (:func:`configure_sessions`); migrations lift the first
two for their own transactions (:mod:`cairn.sql.registry`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Server-side limits of every cairn session, in seconds (0: none)."""

    statement_timeout: float = 30.0
    lock_timeout: float = 10.0
    idle_in_transaction_timeout: float = 60.0

    def options(self) -> str:
        """The libpq ``options`` startup parameter that sets them (and UTC)."""
        limits = {
            "statement_timeout": self.statement_timeout,
            "lock_timeout": self.lock_timeout,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_timeout,
        }
        return " ".join(
            ["-c TimeZone=UTC", *(f"-c {name}={round(s * 1000)}" for name, s in limits.items())]
        )


_limits = SessionLimits()


def configure_sessions(limits: SessionLimits) -> None:
    """The limits of every session opened from now on in this process (the composition root
    calls it once, from the settings)."""
    global _limits
    _limits = limits


def session_limits() -> SessionLimits:
    return _limits


def _options(application_name: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT,
        "options": _limits.options(),
        # A server that vanished without closing its sockets (a dropped network, a host gone)
        # is noticed within about 20 s even on an idle connection (a LISTEN, the leases).
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 2,
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
    """A pool, open and holding ``min_size`` connections.

    ``reconnect_timeout``: psycopg_pool retries a failed connection attempt with a doubling
    delay until this runs out, and no other attempt starts meanwhile; left at its default
    (5 min), a pool whose database was down for a minute would next try half a minute after
    the database came back. Giving up after :data:`CONNECT_TIMEOUT` lets the next ``getconn``
    start a fresh attempt at once, so a pool is back within seconds of its database (SPEC §12:
    every worker resumes within 15 s)."""
    pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=CONNECT_TIMEOUT * 2,
        reconnect_timeout=CONNECT_TIMEOUT,
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
