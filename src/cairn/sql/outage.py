"""Which driver errors mean "the database cannot answer now": one classification for the SQL
layer, the event store's callers and the API's last line of defence.

During an outage (connections refused, sessions terminated, a server restarting) the drivers
raise many types: psycopg's ``OperationalError`` family (``AdminShutdown``, a lost connection,
``QueryCanceled`` from ``statement_timeout``, ``LockNotAvailable`` from ``lock_timeout``),
``InterfaceError`` on a connection that was closed under us, a pool's ``PoolTimeout``, a
transaction that lost a serialisation race or a deadlock, and SQLite's ``database is locked``.
None of them says anything about the request: the same request may succeed a moment later, so
each becomes :class:`~cairn.errors.StoreUnavailableError` (503 with ``Retry-After``), never a 500.

Data errors (``psycopg.DataError``, integrity violations, SQL mistakes) are not outages and
pass through untouched: a projection parks the event behind a data error, the API answers 500
for a bug.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Final

import psycopg
from psycopg_pool import PoolTimeout, TooManyRequests

from cairn.errors import SchemaMissingError, StoreUnavailableError
from cairn.sql.postgres_connect import first_line

__all__ = ["as_unavailable", "is_unavailable", "unavailable_translated"]

#: psycopg errors after which the same statement may succeed when tried again.
_PSYCOPG_TRANSIENT: Final = (
    # connection lost or refused, AdminShutdown, statement/lock timeouts, cancels,
    # serialization failures and deadlocks (TransactionRollback)
    psycopg.OperationalError,
    psycopg.InterfaceError,  # "the connection is closed": it broke under a caller
    PoolTimeout,  # no pooled connection in time (includes "pool is closing" waits)
    TooManyRequests,
)
#: SQLite's words for "another connection holds the lock" (busy_timeout ran out).
_SQLITE_BUSY: Final = ("database is locked", "database is busy", "database table is locked")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or the error it was explicitly raised from) says the database cannot
    answer now. Only ``__cause__`` is followed: an unrelated bug raised while handling an outage
    error stays a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StoreUnavailableError | TimeoutError):
            return True
        if isinstance(current, BaseExceptionGroup):  # concurrent work that all hit the outage
            return all(is_unavailable(inner) for inner in current.exceptions)
        if isinstance(current, _PSYCOPG_TRANSIENT):
            return True
        if isinstance(current, sqlite3.OperationalError) and any(
            words in str(current) for words in _SQLITE_BUSY
        ):
            return True
        current = current.__cause__
    return False


def as_unavailable(exc: BaseException, where: str = "the database") -> StoreUnavailableError:
    """``exc`` as the typed error (itself when it already is one): "<where>: <first line>"."""
    if isinstance(exc, StoreUnavailableError):
        return exc
    return StoreUnavailableError(f"{where} is unavailable: {first_line(exc)}")


def _table_missing(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)


@contextlib.contextmanager
def unavailable_translated(where: str = "the database", *, standby: bool = False) -> Iterator[None]:
    """Re-raise an outage error from the block as :class:`StoreUnavailableError`; any other
    error as it is.

    ``standby``: the database is a read replica, where a missing table means the replica has
    not yet replayed the primary's ``CREATE TABLE`` (a lagging standby, one just started): a
    :class:`SchemaMissingError` (503), as the primary answers before its migrations. On the
    primary a missing table is a bug and stays a 500."""
    try:
        yield
    except StoreUnavailableError:
        raise
    except Exception as exc:
        if is_unavailable(exc):
            raise as_unavailable(exc, where) from None
        if standby and _table_missing(exc):
            raise SchemaMissingError(
                f"{where} (a read replica) has not replayed the schema yet: {first_line(exc)}"
            ) from None
        raise
