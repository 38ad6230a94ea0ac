"""The one checkpoint table: how far each consumer of the log has processed ``$all``.

A consumer saves its position in the same transaction as the work it covers (a read-model batch,
a saga transition), so after a crash it resumes exactly where its last commit left it; the relay
saves it after the broker confirmed a batch. Names carry the consumer kind
(``projection:orders:v3``, ``saga:fulfilment:0``, ``relay:nats:cairn.events``), so no two
consumers ever share a row.

    await db.migrate(CHECKPOINTS)                       # before first use (idempotent)
    async with db.transaction() as tx:
        position = await load_checkpoint(tx, name)
        ...
        await save_checkpoint(tx, name, new_position)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from cairn.sql.database import Database, Schema, Tx

CHECKPOINTS: Final = Schema("cairn.sql", "checkpoints.")


async def load_checkpoint(reader: Tx | Database, name: str) -> int:
    """The saved position of ``name``; 0 when it never saved one."""
    row = await reader.fetchone("SELECT position FROM checkpoints WHERE name = ?", (name,))
    return int(row["position"]) if row is not None else 0


async def save_checkpoint(tx: Tx, name: str, position: int) -> None:
    """Record ``position`` for ``name``, committed with the rest of ``tx``."""
    await tx.execute(
        "INSERT INTO checkpoints (name, position, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
        "updated_at = excluded.updated_at",
        (name, position, datetime.now(UTC).isoformat(timespec="microseconds")),
    )
