"""Parked events: those whose handler kept failing. The projection went on without them;
operators list them and retry them (to the live tables) once the cause is fixed."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from cairn.projections.read_model import ReadModel, Rows
from cairn.projections.schema import ACTIVE_VERSION, now
from cairn.sql.database import Database, Tx
from cairn.store.base import EventStore, RecordedEvent


class HandlerFailed(Exception):
    """A read model's ``apply`` raised on ``event``."""

    def __init__(self, event: RecordedEvent, error: BaseException) -> None:
        super().__init__(f"{event.type} at {event.position}: {error!r}")
        self.event = event
        self.error = error


@cache
def _data_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [sqlite3.DataError, UnicodeEncodeError, OverflowError]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support is an extra
        pass
    else:
        found.append(psycopg.DataError)
    return tuple(found)


def is_data_error(exc: BaseException) -> bool:
    """``exc`` (or an error it was raised from) is one that retrying will not cure: the rows'
    data cannot be stored (psycopg ``DataError``: SQLSTATE class 22, e.g. a NUL or a character
    the database encoding lacks, a string too long, a number out of range; SQLite's
    ``DataError``; an integer too large for SQLite; a lone surrogate no encoder takes)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _data_errors()):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@dataclass(frozen=True)
class ParkedEvent:
    """An event a projection gave up on, with the error it raised."""

    id: str
    projection: str
    version: int
    position: int
    event_id: str
    event_type: str
    stream_id: str
    error: str
    attempts: int
    parked_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def park(
    tx: Tx, projection: str, version: int, event: RecordedEvent, error: str, attempts: int
) -> None:
    """Record ``event`` as parked, in the transaction of the batch that goes on without it."""
    await tx.execute(
        "INSERT INTO projection_parked (id, projection, version, position, event_id, "
        "event_type, stream_id, error, attempts, parked_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "error = excluded.error, attempts = excluded.attempts, parked_at = excluded.parked_at",
        (
            f"{projection}:{version}:{event.id}",
            projection,
            version,
            event.position,
            str(event.id),
            event.type,
            event.stream_id,
            error,
            attempts,
            now(),
        ),
    )


async def parked_events(db: Database, projection: str) -> list[ParkedEvent]:
    """The events ``projection`` parked (its live tables), oldest first."""
    rows = await db.fetchall(
        "SELECT p.* FROM projection_parked p JOIN read_model_versions v "
        "ON v.projection = p.projection AND v.active_version = p.version "
        "WHERE p.projection = ? ORDER BY p.position",
        (projection,),
    )
    return [
        ParkedEvent(
            **{
                **r,
                "version": int(r["version"]),
                "position": int(r["position"]),
                "attempts": int(r["attempts"]),
            }
        )
        for r in rows
    ]


async def retry_parked_events(
    db: Database,
    store: EventStore,
    model: ReadModel,
    position: int | None = None,
    ids: Sequence[str] | None = None,
) -> dict[str, int]:
    """Re-apply ``model``'s parked events (all; the one at ``position``; or those ``ids``) to
    the live tables. One that succeeds leaves the parking lot; one that fails again stays, with
    its new error. Returns ``{"retried": n, "failed": m}``."""
    fixed = failed = 0
    for parked in await parked_events(db, model.name):
        if ids is not None and parked.id not in ids:
            continue
        if position is not None and parked.position != position:
            continue
        event = await store.read_event(parked.event_id)
        if event is None:
            continue
        try:
            await _reapply(db, model, parked, event)
            fixed += 1
        except HandlerFailed as failure:
            failed += 1
            async with db.transaction(durable=False) as tx:
                await tx.execute(
                    "UPDATE projection_parked SET error = ?, attempts = attempts + 1, "
                    "parked_at = ? WHERE id = ?",
                    (f"{event.type} at {event.position}: {failure.error!r}", now(), parked.id),
                )
    return {"retried": fixed, "failed": failed}


async def _reapply(
    db: Database, model: ReadModel, parked: ParkedEvent, event: RecordedEvent
) -> None:
    tables = {t.base: t for t in model.tables}
    async with db.transaction(durable=False) as tx:
        # The version row lock, as a live batch takes it: a swap cannot land between our read
        # of the active version and our commit (the event would go to retired tables).
        pointer = await tx.fetchone(ACTIVE_VERSION + db.for_update(), (model.name,))
        assert pointer is not None
        version = int(pointer["active_version"])
        rows = Rows(tx, tables, version)
        try:
            await model.apply(rows, event)
        except Exception as exc:
            raise HandlerFailed(event, exc) from exc
        await rows.save()
        await model.after_save(tx, rows, version, db.dialect)
        await tx.execute("DELETE FROM projection_parked WHERE id = ?", (parked.id,))
