"""The relay's own checkpoint ("published up to position P"), in the store's database.

Table ``relay_checkpoints(name, position, updated_at)``, created on first use if missing. One
row per relay destination (``<broker kind>:<topic>``), so pointing cairn at a new broker
republishes the whole log there instead of silently starting at the old broker's position.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from cairn.sql.database import Database, Dialect

_DDL = """
CREATE TABLE IF NOT EXISTS relay_checkpoints (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at TEXT NOT NULL
)
"""

#: The time of the write, as ISO 8601 UTC text, in each dialect (the column is text).
_NOW = {
    Dialect.SQLITE: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    Dialect.POSTGRES: "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
}


class CheckpointStore(ABC):
    """Where a relay remembers how far the broker has confirmed."""

    @abstractmethod
    async def load(self, name: str) -> int:
        """The saved position (0 when the relay never published)."""

    @abstractmethod
    async def save(self, name: str, position: int) -> None:
        """Durably record that everything up to ``position`` is confirmed by the broker."""

    @abstractmethod
    async def close(self) -> None:
        """Release what this store opened. Idempotent."""


class MemoryCheckpoints(CheckpointStore):
    """For ``memory://`` stores: the log itself lives only in this process."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}

    async def load(self, name: str) -> int:
        return self._positions.get(name, 0)

    async def save(self, name: str, position: int) -> None:
        self._positions[name] = position

    async def close(self) -> None:
        return None


class SQLCheckpoints(CheckpointStore):
    """Checkpoints in a :class:`Database` (closed by ``close()`` only when ``owns_db``)."""

    def __init__(self, db: Database, *, owns_db: bool = False) -> None:
        self._db = db
        self._owns_db = owns_db
        self._created = False

    async def _table(self) -> None:
        if not self._created:
            await self._db.ensure_schema([_DDL])
            self._created = True

    async def load(self, name: str) -> int:
        await self._table()
        row = await self._db.fetchone(
            "SELECT position FROM relay_checkpoints WHERE name = ?", (name,)
        )
        return int(row["position"]) if row else 0

    async def save(self, name: str, position: int) -> None:
        await self._table()
        await self._db.execute(
            "INSERT INTO relay_checkpoints (name, position, updated_at) "
            f"VALUES (?, ?, {_NOW[self._db.dialect]}) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "updated_at = excluded.updated_at",
            (name, position),
        )

    async def close(self) -> None:
        if self._owns_db:
            await self._db.close()
