"""The PostgreSQL event store's schema: ``migrations/postgres/NNNN_name.sql``, applied through
the one registry (:mod:`cairn.sql.registry`). Append only: never edit an applied file."""

from __future__ import annotations

from typing import Final

from cairn.errors import SchemaMissingError
from cairn.sql.pool import Connection
from cairn.sql.postgres_connect import connect, describe
from cairn.sql.registry import MigrationSet, apply_postgres, pending_postgres
from cairn.store.urls import postgres_conninfo

MIGRATIONS: Final = MigrationSet("cairn.store", "migrations/postgres")


async def prepare_schema(conn: Connection, conninfo: str, *, migrate: bool) -> None:
    """Apply what is missing, or (``migrate=False``) refuse a database without the full schema."""
    if migrate:
        await apply_postgres(conn, [MIGRATIONS])
    elif await pending_postgres(conn, [MIGRATIONS]):
        raise SchemaMissingError(
            f"PostgreSQL database {describe(conninfo)} has no (or an outdated) cairn "
            "schema; run `cairn migrate` or open with migrate=True"
        )


async def migrate(url: str) -> list[str]:
    """Apply the PostgreSQL schema at ``url``; returns the names of the migrations applied."""
    conn = await connect(postgres_conninfo(url))
    try:
        return await apply_postgres(conn, [MIGRATIONS])
    finally:
        await conn.close()
