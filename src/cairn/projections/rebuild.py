"""Rebuild without downtime: replay the log from 0 into fresh tables (version n+1) while the
live runner keeps version n current and queries read it, then swap the pointer.

No side effects meanwhile: the builder has no ``after_commit`` hook (no cache writes), and its
tables are not the ones queries read until the swap.

The swap happens when the builder has read to the end of the log and the live runner is not
past it. Under steady writes on a slow host the live runner can commit between the builder's
last read and every swap it tries (a batch per ``live_interval``), and the rebuild would chase it
for as long as writes go on. After :data:`MISSED_SWAPS` misses the builder takes the live runners'
turn (the lock their live batches take, one at a time) for its next read, batch and swap: this
process's live batches wait for those few milliseconds, and the swap cannot be missed again. A
live runner in another process is not held back that way: the builder retries as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from cairn.errors import ConflictError
from cairn.gc_tuning import CatchUpRelief
from cairn.leases import Lease
from cairn.projections.runner import ProjectionRunner, RunnerConfig
from cairn.projections.schema import ACTIVE_VERSION, checkpoint_name, now
from cairn.projections.status import RebuildProgress
from cairn.sql.checkpoints import load_checkpoint
from cairn.sql.database import Database
from cairn.store.base import EventStore

ProgressCallback = Callable[[int, int], None]

#: Swaps missed because the live runner got ahead, before the builder takes its turn (module).
MISSED_SWAPS = 3


async def rebuild(
    runner: ProjectionRunner,
    *,
    store: EventStore,
    db: Database,
    lease: Lease,
    config: RunnerConfig,
    progress: ProgressCallback | None = None,
) -> int:
    """Rebuild ``runner``'s read model into version n+1 and swap to it; returns the new version.
    ``lease`` is the rebuild's own (one rebuild of a projection at a time, in any process)."""
    if not await lease.try_acquire():
        raise ConflictError(
            "projection.rebuild_running",
            f"projection {runner.name!r} is already being rebuilt",
            name=runner.name,
        )
    try:
        version = await _start(db, runner)
        builder = ProjectionRunner(runner.model, store, db, lease, runner.owner, config)
        builder.version = version
        track = RebuildProgress(await store.head_position())
        runner.rebuild = track
        size = config.rebuild_batch_size
        relief = CatchUpRelief()
        relief.hold()
        missed = 0
        try:
            while True:
                held_back = runner.turn if missed >= MISSED_SWAPS else contextlib.nullcontext()
                async with held_back:
                    events = await store.read_all(after=builder.position, limit=size)
                    if events:
                        await builder.apply(events, version, live=False)
                        builder.position = events[-1].position
                    track.done = builder.position
                    track.total = max(track.total, builder.position)
                    if progress is not None:
                        progress(track.done, track.total)
                    if len(events) < size and await _try_swap(
                        db, runner.name, version, builder.position
                    ):
                        break
                if len(events) < size:
                    missed += 1
                    track.total = await store.head_position()
        finally:
            relief.release()
            runner.rebuild = None
        runner.advanced()
        return version
    finally:
        await lease.release()


async def _start(db: Database, runner: ProjectionRunner) -> int:
    """Drop what older rebuilds left, create version n+1's tables and point the rebuild at it."""
    name = runner.name
    async with db.transaction(durable=False) as tx:
        pointer = await tx.fetchone(
            "SELECT active_version, rebuilding_version FROM read_model_versions "
            "WHERE projection = ?" + db.for_update(),
            (name,),
        )
        assert pointer is not None
        active = int(pointer["active_version"])
        version = active + 1
        # Keep the live tables and nothing older: a query that read the pointer just before
        # the last swap may still be reading version active-1, but never anything older.
        stale = await tx.fetchall(
            "SELECT version FROM projection_status WHERE name = ? AND version <> ?",
            (name, active),
        )
        for row in stale:
            old = int(row["version"])
            for sql in runner.model.drop_ddl(old, db.dialect):
                await tx.execute(sql)
            await tx.execute(
                "DELETE FROM projection_status WHERE name = ? AND version = ?", (name, old)
            )
            await tx.execute(
                "DELETE FROM checkpoints WHERE name = ?", (checkpoint_name(name, old),)
            )
            await tx.execute(
                "DELETE FROM projection_parked WHERE projection = ? AND version = ?", (name, old)
            )
        for sql in runner.model.ddl(version, db.dialect):
            await tx.execute(sql)
        # No checkpoint row yet: a missing checkpoint reads as position 0.
        await tx.execute(
            "INSERT INTO projection_status (name, version, state, owner, errors, updated_at) "
            "VALUES (?, ?, 'rebuilding', ?, 0, ?)",
            (name, version, runner.owner, now()),
        )
        await tx.execute(
            "UPDATE read_model_versions SET rebuilding_version = ?, updated_at = ? "
            "WHERE projection = ?",
            (version, now(), name),
        )
    return version


async def _try_swap(db: Database, name: str, version: int, position: int) -> bool:
    async with db.transaction(durable=False) as tx:
        # Same row lock as every live batch: the live runner cannot commit between our
        # comparison and the pointer move, so the new tables are never behind the old.
        pointer = await tx.fetchone(ACTIVE_VERSION + db.for_update(), (name,))
        assert pointer is not None
        live = checkpoint_name(name, int(pointer["active_version"]))
        if await load_checkpoint(tx, live) > position:
            return False
        await tx.execute(
            "UPDATE read_model_versions SET active_version = ?, rebuilding_version = NULL, "
            "updated_at = ? WHERE projection = ?",
            (version, now(), name),
        )
        await tx.execute(
            "UPDATE projection_status SET state = 'running' WHERE name = ? AND version = ?",
            (name, version),
        )
    return True
