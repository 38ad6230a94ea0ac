"""Save points: copies of a read model's rows at a global position, made as the projection runs,
so that time travel (:mod:`cairn.projections.as_of`) replays at most ``interval`` events.

A save point is one copy table per model table, ``<base>_v<version>_at_<position>`` (``CREATE
TABLE … AS SELECT``), made inside the batch transaction that moves the checkpoint to
``position``: the copy holds exactly the rows as they were at that position, whatever commits
next. ``projection_save_points`` lists them. A runner makes one when its batch ends at least
``interval`` events after the last one of its table version (a live runner and a rebuild's
builder alike), then drops all but the newest ``retention`` of that version, and every save
point of a version that is neither this one nor the live one (a rebuild's leftovers).

Bounded: at most ``retention`` copies per live version (and as many of a running rebuild). The
cost is one copy of the tables every ``interval`` events, in the live path; ``interval <= 0``
turns save points off (time travel then replays from position 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cairn.projections.read_model import ReadModel, Table
from cairn.projections.schema import ACTIVE_VERSION, now
from cairn.sql.database import Database, Tx


@dataclass(frozen=True)
class SavePoint:
    """One copy of ``projection``'s tables of ``version``, as they were at ``position``."""

    projection: str
    version: int
    position: int


def copy_name(table: Table, version: int, position: int) -> str:
    """The table that holds ``table``'s rows of ``version`` at ``position``."""
    return f"{table.name(version)}_at_{position}"


async def save_points(db: Database, projection: str) -> list[SavePoint]:
    """Every save point of ``projection``, oldest position first."""
    rows = await db.fetchall(
        "SELECT version, position FROM projection_save_points WHERE projection = ? "
        "ORDER BY position, version",
        (projection,),
    )
    return [SavePoint(projection, int(r["version"]), int(r["position"])) for r in rows]


async def nearest_save_point(db: Database, projection: str, position: int) -> SavePoint | None:
    """The save point at or before ``position`` closest to it (of any table version: the same
    model over the same log gives the same rows), or ``None`` (replay from position 0)."""
    row = await db.fetchone(
        "SELECT version, position FROM projection_save_points "
        "WHERE projection = ? AND position <= ? ORDER BY position DESC, version DESC LIMIT 1",
        (projection, position),
    )
    return None if row is None else SavePoint(projection, int(row["version"]), int(row["position"]))


class SavePointMaker:
    """One runner's save points: when the next is due, making it, and pruning."""

    def __init__(self, model: ReadModel, interval: int, retention: int) -> None:
        self.model = model
        self.interval = interval
        self.retention = max(retention, 1)
        #: Per table version, the position of the newest save point (read once, then kept).
        self._last: dict[int, int] = {}

    async def after_batch(self, tx: Tx, version: int, position: int) -> SavePoint | None:
        """Called in a batch's transaction once its rows and checkpoint (``position``) are
        written: make a save point if one is due. Costs no query when none is."""
        if self.interval <= 0:
            return None
        last = self._last.get(version)
        if last is None:
            row = await tx.fetchone(
                "SELECT MAX(position) AS p FROM projection_save_points "
                "WHERE projection = ? AND version = ?",
                (self.model.name, version),
            )
            last = int(row["p"] or 0) if row else 0
            self._last[version] = last
        if position - last < self.interval:
            return None
        point = SavePoint(self.model.name, version, position)
        await _copy(tx, self.model.tables, point)
        await self._prune(tx, version)
        # If the transaction rolls back, so do the copy and its row (DDL is transactional in
        # both dialects): the next one is then made ``interval`` events later, nothing worse.
        self._last[version] = position
        return point

    async def _prune(self, tx: Tx, version: int) -> None:
        name = self.model.name
        active = await tx.fetchone(ACTIVE_VERSION, (name,))
        live = int(active["active_version"]) if active else version
        rows = await tx.fetchall(
            "SELECT version, position FROM projection_save_points WHERE projection = ? "
            "ORDER BY position DESC",
            (name,),
        )
        kept = 0
        for row in rows:
            point = SavePoint(name, int(row["version"]), int(row["position"]))
            if point.version == version:
                kept += 1
                if kept <= self.retention:
                    continue
            elif point.version == live:
                continue
            await drop_save_point(tx, self.model.tables, point)


async def _copy(tx: Tx, tables: Sequence[Table], point: SavePoint) -> None:
    for table in tables:
        copy = copy_name(table, point.version, point.position)
        # A rebuild that died may have left a copy at the same position: the same model over
        # the same log, but replace it rather than trust it.
        await tx.execute(f"DROP TABLE IF EXISTS {copy}")
        await tx.execute(f"CREATE TABLE {copy} AS SELECT * FROM {table.name(point.version)}")
    await tx.execute(
        "INSERT INTO projection_save_points (projection, version, position, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (projection, version, position) "
        "DO UPDATE SET created_at = excluded.created_at",
        (point.projection, point.version, point.position, now()),
    )


async def drop_save_point(tx: Tx, tables: Sequence[Table], point: SavePoint) -> None:
    """Drop one save point's copies and its row."""
    for table in tables:
        await tx.execute(f"DROP TABLE IF EXISTS {copy_name(table, point.version, point.position)}")
    await tx.execute(
        "DELETE FROM projection_save_points WHERE projection = ? AND version = ? AND position = ?",
        (point.projection, point.version, point.position),
    )
