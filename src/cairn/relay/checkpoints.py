"""The relay's own checkpoint ("published up to position P"), in the store's database.

A row of the one checkpoint table (:mod:`cairn.sql.checkpoints`) per relay destination, named
``relay:<broker kind>:<topic>``, so pointing cairn at a new broker republishes the whole log
there instead of silently starting at the old broker's position. The relay's migrations
(:data:`~cairn.relay.schema.RELAY_SCHEMAS`) are applied on first use; they copy the rows of the
older ``relay_checkpoints`` table in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from cairn.relay.schema import RELAY_SCHEMAS
from cairn.sql.checkpoints import load_checkpoint, save_checkpoint
from cairn.sql.database import Database

#: Before the destination in the checkpoint's name: the consumer kind (see cairn.sql.checkpoints).
NAME_PREFIX = "relay:"


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
        self._migrated = False

    async def _migrate(self) -> None:
        if not self._migrated:
            await self._db.migrate(*RELAY_SCHEMAS)
            self._migrated = True

    async def load(self, name: str) -> int:
        await self._migrate()
        return await load_checkpoint(self._db, NAME_PREFIX + name)

    async def save(self, name: str, position: int) -> None:
        await self._migrate()
        async with self._db.transaction() as tx:
            await save_checkpoint(tx, NAME_PREFIX + name, position)

    async def close(self) -> None:
        if self._owns_db:
            await self._db.close()
