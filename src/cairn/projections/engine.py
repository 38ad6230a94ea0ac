"""Every projection of one process: leases, the run loop, status, read-your-writes, and the
entry points of rebuilds and parked events.

Built by the application (the order application's ``build_projections``), with what is
specific to it passed in: its read models, and per read model an optional
:class:`~cairn.projections.hooks.AfterCommit` hook. Nothing connects until first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial

from cairn.errors import NotFoundError, SchemaMissingError
from cairn.leases import Lease, Leases, lease_for
from cairn.projections.as_of import AsOf, read_model_as_of
from cairn.projections.hooks import AfterCommit
from cairn.projections.parking import ParkedEvent, parked_events, retry_parked_events
from cairn.projections.read_model import ReadModel
from cairn.projections.reader import SharedReader
from cairn.projections.rebuild import ProgressCallback, rebuild
from cairn.projections.runner import ProjectionRunner, RunnerConfig
from cairn.projections.save_points import SavePoint
from cairn.projections.save_points import save_points as list_save_points
from cairn.projections.schema import LIVE_CHECKPOINT_NAME, checkpoint_name, ensure_read_models
from cairn.projections.status import ProjectionStatus
from cairn.sql.database import Database
from cairn.store.base import EventStore
from cairn.store.urls import Backend, backend_of


class ProjectionEngine:
    """Every projection of one process: run, status, rebuild, parked events, read-your-writes."""

    def __init__(
        self,
        store: EventStore,
        database_url: str,
        models: Sequence[ReadModel],
        *,
        config: RunnerConfig | None = None,
        read_model_url: str | None = None,
        database: Database | None = None,
        leases: Leases | None = None,
        after_commit: Mapping[str, AfterCommit] | None = None,
        replica: Database | None = None,
    ) -> None:
        """``database`` and ``leases``: the process's own (the composition root closes them);
        without them the engine opens a Database for itself (closed by ``close()``) and a lease
        session per projection. ``after_commit``: per projection name, a hook called after each
        of its live batches commits (see :class:`~cairn.projections.hooks.AfterCommit`).
        ``replica``: a streaming replica of the read models' database that queries read
        (``CAIRN_READ_DATABASE_URL``); read-your-writes then waits until the replica has
        replayed the checkpoint (closed by ``close()``)."""
        from cairn.sql.factory import open_database

        hooks = dict(after_commit or {})
        unknown = set(hooks) - {m.name for m in models}
        if unknown:
            raise ValueError(f"after_commit hooks for unknown projections: {sorted(unknown)}")
        self.store = store
        self.database_url = database_url
        target = read_model_url or database_url
        self._owns_db = database is None
        self.db: Database = database if database is not None else open_database(target)
        self.replica = replica
        self.config = config or RunnerConfig()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.reader = SharedReader(store)
        self._turn = asyncio.Lock()
        # A memory store (or a private in-memory read-model database) lives in this process
        # only: its leases must not collide with another engine's in the same process.
        private = backend_of(target) is Backend.MEMORY or target.rstrip("/") in (
            "sqlite:",
            "sqlite:///:memory:",
        )
        self._lease_scope = f"@{self.owner}" if private else ""
        self._lease_url = "memory://" if private else target
        self._lease: Callable[[str], Lease] = (
            leases.lease
            if leases is not None and not private
            else partial(lease_for, self._lease_url)
        )
        self.runners: dict[str, ProjectionRunner] = {
            m.name: ProjectionRunner(
                m,
                store,
                self.db,
                self._lease(f"projection:{m.name}{self._lease_scope}"),
                self.owner,
                self.config,
                hooks.get(m.name),
                self.reader,
                self._turn,
            )
            for m in models
        }
        self._migrated = False
        self._migrate_lock = asyncio.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.runners)

    def runner(self, name: str) -> ProjectionRunner:
        try:
            return self.runners[name]
        except KeyError:
            raise NotFoundError(
                "projection.not_found", f"no projection named {name!r}", name=name
            ) from None

    # -- schema ---------------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Create bookkeeping and read-model tables if missing (idempotent)."""
        if self._migrated:
            return
        async with self._migrate_lock:
            if self._migrated:
                return
            await ensure_read_models(self.db, [r.model for r in self.runners.values()])
            self._migrated = True

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every projection until cancelled."""
        await self.migrate()
        async with asyncio.TaskGroup() as group:
            for runner in self.runners.values():
                group.create_task(runner.run(), name=f"projection:{runner.name}")

    async def run_until_caught_up(self, name: str | None = None) -> None:
        """Apply everything currently in the log (tests and one-off jobs; takes the lease)."""
        await self.migrate()
        for runner in [self.runner(name)] if name else list(self.runners.values()):
            await runner.catch_up()

    async def close(self) -> None:
        self.reader.close()
        for runner in self.runners.values():
            with contextlib.suppress(Exception):
                await runner.lease.release()
        if self._owns_db:
            await self.db.close()
        if self.replica is not None:
            await self.replica.close()

    # -- status ---------------------------------------------------------------------------------

    async def status(self) -> list[ProjectionStatus]:
        await self.migrate()
        head = await self.store.head_position()
        return [await self._status(runner, head) for runner in self.runners.values()]

    async def _status(self, runner: ProjectionRunner, head: int) -> ProjectionStatus:
        pointer = await self.db.fetchone(
            "SELECT active_version, rebuilding_version FROM read_model_versions "
            "WHERE projection = ?",
            (runner.name,),
        )
        version = int(pointer["active_version"]) if pointer else 1
        row = await self.db.fetchone(
            "SELECT s.state, s.owner, s.errors, s.last_error, c.position "
            "FROM projection_status s LEFT JOIN checkpoints c ON c.name = ? "
            "WHERE s.name = ? AND s.version = ?",
            (checkpoint_name(runner.name, version), runner.name, version),
        )
        parked = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM projection_parked WHERE projection = ? AND version = ?",
            (runner.name, version),
        )
        position = int(row["position"] or 0) if row else 0
        lag_events = max(head - position, 0)
        lag_seconds = 0.0
        if lag_events:
            nxt = await self.store.read_all(after=position, limit=1)
            if nxt:
                lag_seconds = max((datetime.now(UTC) - nxt[0].recorded_at).total_seconds(), 0.0)
        owner = row["owner"] if row else None
        if runner.lease.held:
            state = runner.state
        elif await self._nobody_owns(runner.name):
            state, owner = "stopped", None
        else:
            state = str(row["state"]) if row else "running"
        if runner.rebuild is not None or (
            pointer is not None
            and pointer["rebuilding_version"] is not None
            and not await self._nobody_owns(f"{runner.name}:rebuild")
        ):
            # A rebuild whose process died leaves its version behind; the next rebuild drops
            # it. Only a rebuild somebody still runs (holds its lease) counts.
            state = "rebuilding"
        elif state == "running" and lag_events > self.config.batch_size:
            state = "catching_up"
        errors = max(runner.errors, int(row["errors"]) if row else 0)
        last_error = runner.last_error or (row["last_error"] if row else None)
        rebuild = runner.rebuild
        return ProjectionStatus(
            name=runner.name,
            position=position,
            lag_events=lag_events,
            lag_seconds=round(lag_seconds, 3),
            state=state,
            errors=errors,
            last_error=last_error,
            parked=int(parked["n"]) if parked else 0,
            owner=owner,
            version=version,
            rebuild_done=rebuild.done if rebuild else None,
            rebuild_total=rebuild.total if rebuild else None,
            rebuild_rate=round(rebuild.rate, 1) if rebuild else None,
            rebuild_eta_seconds=(
                round(rebuild.eta_seconds, 1)
                if rebuild and rebuild.eta_seconds is not None
                else None
            ),
        )

    async def _nobody_owns(self, name: str) -> bool:
        """Probe the projection's lease: if we can take it, no live worker owns it."""
        probe = self._lease(f"projection:{name}{self._lease_scope}")
        try:
            return bool(await probe.try_acquire())
        finally:
            await probe.release()

    # -- read-your-writes -------------------------------------------------------------------------

    async def position_of(self, name: str) -> int:
        """How far projection ``name``'s live tables are, as the queries see them (on the
        replica when there is one)."""
        db = self.replica if self.replica is not None else self.db
        try:
            row = await db.fetchone(
                "SELECT c.position FROM read_model_versions v JOIN checkpoints c "
                f"ON c.name = {LIVE_CHECKPOINT_NAME} WHERE v.projection = ?",
                (name,),
            )
        except SchemaMissingError:  # only a replica says so (Database.standby)
            return 0  # it has not replayed the tables: it has applied nothing yet
        return int(row["position"]) if row else 0

    async def _reached(self, runner: ProjectionRunner) -> int:
        # The owner's in-memory position moves right after its commit: no query needed (and
        # none of the pool's connections, which the runners need). A rebuild's swap makes the
        # in-memory figure stale, so fall back to the database whenever a swap may be pending.
        # A replica is behind the owner's commits: only its own checkpoint row counts.
        local = runner.lease.held and runner.rebuild is None and runner.state != "failed"
        if local and self.replica is None:
            return runner.position
        return await self.position_of(runner.name)

    async def wait_for(
        self, name: str | int, position: int | None = None, timeout: float = 5.0
    ) -> bool:
        """True once projection ``name`` has applied the log up to ``position`` (its live
        tables), False if ``timeout`` seconds pass first. ``wait_for(position, timeout=…)``
        waits for every projection."""
        if isinstance(name, int):
            names, target = self.names, name
        else:
            self.runner(name)
            names, target = [name], int(position or 0)
        await self.migrate()
        deadline = time.monotonic() + timeout
        for one in names:
            runner = self.runner(one)
            while await self._reached(runner) < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if runner.lease.held and self.replica is None:
                    await runner.wait_local(min(remaining, 0.05))
                else:  # another process runs it, or a replica replays it: poll the checkpoint
                    await asyncio.sleep(min(remaining, 0.01))
        return True

    # -- time travel ------------------------------------------------------------------------------

    async def as_of(self, name: str, position: int) -> AsOf:
        """Projection ``name``'s rows as they were at global ``position`` (replayed in memory
        from the nearest save point; see :mod:`cairn.projections.as_of`)."""
        runner = self.runner(name)
        await self.migrate()
        return await read_model_as_of(self.db, self.store, runner.model, position)

    async def save_points(self, name: str) -> list[SavePoint]:
        """Projection ``name``'s save points, oldest first."""
        self.runner(name)
        await self.migrate()
        return await list_save_points(self.db, name)

    # -- parked events --------------------------------------------------------------------------

    async def parked(self, name: str) -> list[ParkedEvent]:
        """Events projection ``name`` parked (its live tables), oldest first."""
        self.runner(name)
        await self.migrate()
        return await parked_events(self.db, name)

    async def retry_parked(
        self, name: str, position: int | None = None, *, ids: Sequence[str] | None = None
    ) -> dict[str, int]:
        """Re-apply parked events (all; the one at ``position``; or those ``ids``) to the live
        tables. An event that succeeds leaves the parking lot; one that fails again stays, with
        its new error. Returns ``{"retried": n, "failed": m}``."""
        runner = self.runner(name)
        await self.migrate()
        return await retry_parked_events(self.db, self.store, runner.model, position, ids)

    # -- rebuild ----------------------------------------------------------------------------------

    async def rebuild(self, name: str, progress: ProgressCallback | None = None) -> int:
        """Replay the whole log into fresh tables (version n+1) while queries keep reading
        version n, then swap the pointer; returns the new version. ``progress(done, total)``
        is called after each batch (positions). No side effects (no hook calls) meanwhile."""
        runner = self.runner(name)
        await self.migrate()
        return await rebuild(
            runner,
            store=self.store,
            db=self.db,
            lease=self._lease(f"projection:{name}:rebuild{self._lease_scope}"),
            config=self.config,
            progress=progress,
        )
