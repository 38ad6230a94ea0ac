"""``cairn migrate``: apply the store's versioned schema to the database at a URL."""

from __future__ import annotations

from cairn.store.urls import Backend, backend_of


async def migrate(url: str) -> list[str]:
    """Apply the missing migrations; returns their names (a second run returns ``[]``).

    ``memory://`` and ``redis://`` have no schema and return ``[]``.
    """
    backend = backend_of(url)
    if backend in (Backend.MEMORY, Backend.REDIS):
        return []
    if backend is Backend.SQLITE:
        from cairn.store import sqlite

        return await sqlite.migrate(url)
    from cairn.store import postgres_schema

    return await postgres_schema.migrate(url)
