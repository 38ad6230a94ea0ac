"""Time travel for read models: a projection's rows as they were at a past global position.

The rows at position N are those of the nearest save point at or before N
(:mod:`cairn.projections.save_points`), loaded into memory, with the model's own ``apply`` run
over the events after it up to N. Nothing is written: the replay works on an in-memory working
set (:class:`ReplayRows`), so an answer costs one read of the copy and of at most the save-point
interval of events, whatever the database. Without a save point at or before N the replay starts
from position 0 (an empty read model).

An event whose handler fails is skipped, as the live runner parks it. A parked event retried
later is in the live tables but not in an answer replayed from before the retry: the log does
not say when a retry happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from cairn.observability.logging import get_logger
from cairn.projections.read_model import Key, ReadModel, Rows, Table
from cairn.projections.save_points import SavePoint, copy_name, nearest_save_point
from cairn.sql.database import Database, Row, Tx
from cairn.store.base import EventStore, RecordedEvent

_log = get_logger("cairn.projections.as_of")

#: Events read from the log per round trip while replaying.
REPLAY_BATCH = 2000
#: A save point may be pruned between finding it and reading it: look again this many times.
_ATTEMPTS = 3


class ReplayRows(Rows):
    """The whole read model in memory: a key the working set lacks is a row that does not
    exist, so nothing is ever loaded, and nothing is saved."""

    def __init__(self, tables: Mapping[str, Table], rows: Mapping[tuple[str, Key], Row]) -> None:
        # No transaction: ``_load`` is overridden and ``save`` is never called.
        super().__init__(cast(Tx, None), tables, 0)
        self._cache.update(rows)

    async def _load(self, table_base: str, keys: list[Key]) -> None:
        for key in keys:
            self._cache.setdefault((table_base, key), None)

    def settle(self) -> None:
        """Forget the undo log: the last event applied stays applied."""
        self._undo.clear()

    def table_rows(self, table: str) -> list[Row]:
        """The rows of ``table`` now, in key order."""
        found = [row for (base, _), row in self._cache.items() if base == table and row]
        return sorted(found, key=lambda row: _sortable(tuple(row[c] for c in self._key(table))))

    def _key(self, table: str) -> tuple[str, ...]:
        return self._tables[table].key


def _sortable(key: Key) -> tuple[tuple[bool, str, object], ...]:
    """A key that sorts even with ``None`` or mixed types in it."""
    return tuple((v is None, type(v).__name__, v if v is not None else "") for v in key)


@dataclass(frozen=True)
class AsOf:
    """A read model at ``position``: started from ``save_point`` (0: the empty model), with
    ``replayed`` events of the log applied over it."""

    projection: str
    position: int
    save_point: int
    replayed: int
    rows: dict[str, list[Row]] = field(default_factory=dict)


async def read_model_as_of(
    db: Database, store: EventStore, model: ReadModel, position: int
) -> AsOf:
    """``model``'s rows as they were once the log up to ``position`` was applied (a position
    beyond the head gives the rows at the head)."""
    for attempt in range(_ATTEMPTS):
        point = await nearest_save_point(db, model.name, position)
        try:
            start = await _load(db, model, point)
        except Exception:
            # Pruned under us (the copy table is gone): the next nearest one will do.
            if attempt == _ATTEMPTS - 1 or point is None:
                raise
            _log.info("as_of_save_point_gone", projection=model.name, position=point.position)
            continue
        break
    rows = ReplayRows({t.base: t for t in model.tables}, start)
    origin = point.position if point else 0
    replayed = await _replay(store, model, rows, origin, position)
    return AsOf(
        projection=model.name,
        position=position,
        save_point=origin,
        replayed=replayed,
        rows={t.base: rows.table_rows(t.base) for t in model.tables},
    )


async def _load(
    db: Database, model: ReadModel, point: SavePoint | None
) -> dict[tuple[str, Key], Row]:
    start: dict[tuple[str, Key], Row] = {}
    if point is None:
        return start
    for table in model.tables:
        copy = copy_name(table, point.version, point.position)
        for raw in await db.fetchall(f"SELECT * FROM {copy}"):
            row = table.from_db(raw)
            start[(table.base, tuple(row[c] for c in table.key))] = row
    return start


async def _replay(
    store: EventStore, model: ReadModel, rows: ReplayRows, after: int, until: int
) -> int:
    """Apply the events in (``after``, ``until``]; returns how many the model folded. The next
    page of the log is read while this one is applied (the store's round trip overlaps the
    fold: on PostgreSQL the server works on the other core meanwhile)."""
    applied = 0

    def read(position: int) -> asyncio.Task[list[RecordedEvent]]:
        limit = min(REPLAY_BATCH, until - position)
        return asyncio.ensure_future(store.read_all(after=position, limit=limit))

    pending = read(after) if after < until else None
    try:
        while pending is not None:
            events = await pending
            pending = None
            if not events:
                break
            last = events[-1].position
            if last < until:
                pending = read(last)
            for event in events:
                if event.position > until:
                    break
                if model.accepts(event):
                    applied += await _apply(model, rows, event)
    finally:
        if pending is not None:
            pending.cancel()
    return applied


async def _apply(model: ReadModel, rows: ReplayRows, event: RecordedEvent) -> int:
    """Fold one event; 0 if its handler failed (skipped, as the live runner parks it)."""
    mark = rows.mark()
    try:
        await model.apply(rows, event)
    except Exception as exc:
        rows.rollback_to(mark)
        _log.info(
            "as_of_event_skipped", projection=model.name, position=event.position, error=repr(exc)
        )
        return 0
    rows.settle()
    return 1
