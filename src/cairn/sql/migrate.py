"""``cairn migrate`` for a whole application: the event store's schema, then every component's.

The application says which components it has (their :class:`~cairn.sql.database.Schema`, in
dependency order); :func:`migrate_database` applies what is missing of each, so a migrated
database needs nothing at start::

    applied = await migrate_database(url, [CHECKPOINTS, RELAY, API])   # [] on a second run
"""

from __future__ import annotations

from collections.abc import Sequence

from cairn.sql.database import Schema
from cairn.sql.factory import open_database
from cairn.store.migrate import migrate as migrate_store
from cairn.store.urls import Backend, backend_of

__all__ = ["migrate_database"]


async def migrate_database(
    url: str, schemas: Sequence[Schema], *, sql_url: str | None = None
) -> list[str]:
    """Apply the event store's migrations at ``url``, then those of ``schemas`` in the order
    given (a schema listed twice is applied once, at its first place) at ``sql_url`` (the
    store's own database unless given: a Redis store keeps the rest elsewhere); the names
    applied now.

    ``memory://`` has no schema and returns ``[]``.
    """
    if backend_of(url) is Backend.MEMORY:
        return []
    applied = await migrate_store(url)
    database = open_database(sql_url or url, max_connections=1)
    try:
        applied += await database.migrate(*dict.fromkeys(schemas))
    finally:
        await database.close()
    return applied
