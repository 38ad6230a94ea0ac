"""The engine's tables, and the SQL on them that more than one module runs.

The engine's own tables are ``.sql`` migrations in ``migrations/{postgres,sqlite}`` of this
package (:data:`PROJECTIONS`), applied after the one checkpoint table (:data:`CHECKPOINTS`):

- ``checkpoints`` (:mod:`cairn.sql.checkpoints`): a projection's position, per table version,
  under :func:`checkpoint_name` (``projection:orders:v3``); saved in each batch's transaction.
- ``projection_status(name, version, state, owner, errors, last_error, updated_at)``: what
  status shows beside the position (``projection_checkpoints`` before the position moved out).
- ``read_model_versions(projection, active_version, rebuilding_version)``: which tables queries
  read, and which version a rebuild is filling.
- ``projection_parked(id, projection, version, position, event_id, …, error, attempts)``: events
  whose handler kept failing; the projection went on without them.

The read-model tables are not migrations: they are versioned per rebuild (``orders_view_v3``),
so each read model creates its own at run time (:meth:`ReadModel.ddl`, :func:`ensure_read_models`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from cairn.projections.read_model import ReadModel
from cairn.sql.checkpoints import CHECKPOINTS
from cairn.sql.database import Database, Schema, Tx

PROJECTIONS: Final = Schema("cairn.projections", "projections.")

#: The table version queries read (one parameter: the projection).
ACTIVE_VERSION: Final = "SELECT active_version FROM read_model_versions WHERE projection = ?"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def checkpoint_name(projection: str, version: int) -> str:
    """The projection's row in the one checkpoint table, per table version."""
    return f"projection:{projection}:v{version}"


async def ensure_read_models(db: Database, models: Sequence[ReadModel]) -> None:
    """Apply the engine's migrations, then give each model its version pointer, status row and
    tables (the live version, and the one a rebuild is filling). Idempotent."""
    await db.migrate(CHECKPOINTS, PROJECTIONS)
    dialect = db.dialect
    async with db.schema_transaction() as tx:
        for model in models:
            await tx.execute(
                "INSERT INTO read_model_versions (projection, active_version, updated_at) "
                "VALUES (?, 1, ?) ON CONFLICT (projection) DO NOTHING",
                (model.name, now()),
            )
            pointer = await tx.fetchone(
                "SELECT active_version, rebuilding_version FROM read_model_versions "
                "WHERE projection = ?",
                (model.name,),
            )
            assert pointer is not None
            versions = {int(pointer["active_version"])}
            if pointer["rebuilding_version"] is not None:
                versions.add(int(pointer["rebuilding_version"]))
            for version in sorted(versions):
                for sql in model.ddl(version, dialect):
                    await tx.execute(sql)
                await tx.execute(
                    "INSERT INTO projection_status (name, version, state, errors, updated_at) "
                    "VALUES (?, ?, 'stopped', 0, ?) ON CONFLICT (name, version) DO NOTHING",
                    (model.name, version, now()),
                )


async def save_status(
    tx: Tx,
    name: str,
    version: int,
    state: str,
    owner: str | None,
    errors: int,
    last_error: str | None,
) -> None:
    """Record what status shows of ``name`` at ``version`` (not its position)."""
    await tx.execute(
        "INSERT INTO projection_status "
        "(name, version, state, owner, errors, last_error, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, version) DO UPDATE SET "
        "state = excluded.state, owner = excluded.owner, errors = excluded.errors, "
        "last_error = excluded.last_error, updated_at = excluded.updated_at",
        (name, version, state, owner, errors, last_error, now()),
    )


#: :func:`checkpoint_name` of a projection's live version, in SQL over ``read_model_versions v``.
LIVE_CHECKPOINT_NAME: Final = "'projection:' || v.projection || ':v' || v.active_version"
