"""The Database for a store's URL (nothing connects until first use)."""

from __future__ import annotations

from cairn.sql.budget import POOL_MIN
from cairn.sql.database import Database
from cairn.sql.postgres import PostgresDatabase
from cairn.sql.sqlite import SQLiteDatabase
from cairn.store.urls import Backend, backend_of, postgres_conninfo, sqlite_path

__all__ = ["open_database"]


def open_database(url: str, *, max_connections: int = 3, standby: bool = False) -> Database:
    """The SQL layer's Database beside the store at ``url``: the same PostgreSQL database (a pool
    of at most ``max_connections``) or SQLite file; for a ``memory://`` store, a private
    in-memory SQLite database. ``standby``: ``url`` is a read replica (see
    :attr:`Database.standby`)."""
    backend = backend_of(url)
    database: Database
    if backend is Backend.POSTGRES:
        database = PostgresDatabase(
            postgres_conninfo(url),
            min_size=min(POOL_MIN, max_connections),
            max_size=max_connections,
        )
    elif backend is Backend.SQLITE:
        database = SQLiteDatabase(sqlite_path(url))
    else:
        database = SQLiteDatabase(":memory:")
    database.standby = standby
    return database
