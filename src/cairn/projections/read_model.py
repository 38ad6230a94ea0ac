"""A read model is an ``apply`` over rows: the runner loads the rows a batch touches, the model
changes them in memory, and the runner writes them back with the checkpoint in one transaction.

Every table is versioned (``orders_view_v3``): a rebuild fills version n+1 while queries read
version n, then the ``read_model_versions`` pointer moves. Money is kept as decimal strings;
times as ISO 8601 UTC strings (they sort as text).
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cairn.json_text import compact
from cairn.sql.database import Dialect, Row, Tx
from cairn.store.base import RecordedEvent

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Table:
    """One versioned table: ``columns`` in order, ``key`` its primary key, ``json_columns``
    (de)serialised on the way in and out. ``indexes`` are column lists."""

    base: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, portable SQL type)
    json_columns: frozenset[str] = frozenset()
    indexes: tuple[tuple[str, ...], ...] = ()

    def name(self, version: int) -> str:
        return f"{self.base}_v{version}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def ddl(self, version: int, dialect: Dialect) -> list[str]:
        name = self.name(version)
        cols = ", ".join(f"{c} {_sql_type(t, dialect)}" for c, t in self.columns)
        out = [f"CREATE TABLE IF NOT EXISTS {name} ({cols}, PRIMARY KEY ({', '.join(self.key)}))"]
        for idx in self.indexes:
            out.append(
                f"CREATE INDEX IF NOT EXISTS {name}_{'_'.join(idx)} ON {name} ({', '.join(idx)})"
            )
        return out

    def upsert_sql(self, version: int) -> str:
        return self._upsert(version, f"VALUES ({', '.join('?' for _ in self.columns)})")

    def bulk_upsert_sql(self, version: int) -> str:
        """PostgreSQL: every row of a batch in one statement whose one parameter is the rows as
        a JSON array (:meth:`to_json`). Per-row statements, or one array parameter per column,
        cost the client more CPU (psycopg adapts those in Python) than the C JSON encoder.
        A JSON column is read as ``json``, whose text PostgreSQL keeps as written: the stored
        text is what :meth:`to_params` would have written."""
        picked = ", ".join(
            f"COALESCE({c}::text, 'null')" if c in self.json_columns else c
            for c in self.column_names
        )
        record = ", ".join(
            f"{c} {'json' if c in self.json_columns else _bare_type(t)}" for c, t in self.columns
        )
        return self._upsert(
            version, f"SELECT {picked} FROM json_to_recordset(?::json) AS r({record})"
        )

    def _upsert(self, version: int, source: str) -> str:
        names = self.column_names
        updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in self.key)
        return (
            f"INSERT INTO {self.name(version)} ({', '.join(names)}) {source} "
            f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}"
        )

    def to_params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            compact(row.get(c)) if c in self.json_columns else row.get(c) for c in self.column_names
        )

    def to_json(self, rows: Iterable[Mapping[str, Any]]) -> str:
        """Rows as the JSON array :meth:`bulk_upsert_sql` reads."""
        return compact(list(rows))

    def from_db(self, row: Mapping[str, Any]) -> Row:
        out = dict(row)
        for c in self.json_columns:
            if isinstance(out.get(c), str):
                out[c] = json.loads(out[c])
        return out


def _sql_type(portable: str, dialect: Dialect) -> str:
    return portable.replace("BIGINT", "INTEGER") if dialect is Dialect.SQLITE else portable


def _bare_type(portable: str) -> str:
    """``TEXT NOT NULL`` → ``TEXT``."""
    return portable.split(" NOT NULL")[0].strip()


class Rows:
    """The working set of one batch: rows by (table, key), loaded once, written back once.

    Models never mutate a row they got: they ``put`` a new dict. That keeps an undo log cheap,
    so a failing handler leaves the working set as it was before that event.
    """

    def __init__(self, tx: Tx, tables: Mapping[str, Table], version: int) -> None:
        self._tx = tx
        self._tables = tables
        self._version = version
        self._cache: dict[tuple[str, Key], Row | None] = {}
        self.dirty: dict[tuple[str, Key], Row | None] = {}
        self._undo: list[tuple[tuple[str, Key], bool, Row | None, bool, Row | None]] = []

    async def prefetch(self, wanted: Iterable[tuple[str, Key]]) -> None:
        by_table: dict[str, set[Key]] = {}
        for table, key in wanted:
            if (table, key) not in self._cache:
                by_table.setdefault(table, set()).add(key)
        for table, keys in by_table.items():
            await self._load(table, sorted(keys, key=repr))

    async def _load(self, table_base: str, keys: list[Key]) -> None:
        table = self._tables[table_base]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            if len(table.key) == 1:
                where = f"{table.key[0]} IN ({', '.join('?' for _ in chunk)})"
                params: list[Any] = [k[0] for k in chunk]
            else:
                one = "(" + " AND ".join(f"{c} = ?" for c in table.key) + ")"
                where = " OR ".join(one for _ in chunk)
                params = [v for k in chunk for v in k]
            found = await self._tx.fetchall(
                f"SELECT * FROM {table.name(self._version)} WHERE {where}", params
            )
            for key in chunk:
                self._cache.setdefault((table_base, key), None)
            for raw in found:
                row = table.from_db(raw)
                self._cache[(table_base, tuple(row[c] for c in table.key))] = row

    def loaded(self, table: str, key: Key) -> Row | None:
        """The row if the working set holds it, without loading it (read-only)."""
        return self._cache.get((table, key))

    async def get(self, table: str, key: Key) -> Row | None:
        if (table, key) not in self._cache:
            await self._load(table, [key])
        row = self._cache[(table, key)]
        return None if row is None else dict(row)

    def put(self, table: str, key: Key, row: Row | None) -> None:
        slot = (table, key)
        self._undo.append(
            (
                slot,
                slot in self._cache,
                self._cache.get(slot),
                slot in self.dirty,
                self.dirty.get(slot),
            )
        )
        self._cache[slot] = row
        self.dirty[slot] = row

    def mark(self) -> int:
        return len(self._undo)

    def rollback_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            slot, cached, old, was_dirty, old_dirty = self._undo.pop()
            if cached:
                self._cache[slot] = old
            else:
                self._cache.pop(slot, None)
            if was_dirty:
                self.dirty[slot] = old_dirty
            else:
                self.dirty.pop(slot, None)

    async def save(self) -> None:
        by_table: dict[str, list[tuple[Key, Row | None]]] = {}
        for (base, key), row in self.dirty.items():
            by_table.setdefault(base, []).append((key, row))
        for base, changes in by_table.items():
            table = self._tables[base]
            present = [row for _, row in changes if row is not None]
            if present and self._tx.dialect is Dialect.POSTGRES:
                await self._tx.execute(
                    table.bulk_upsert_sql(self._version), (table.to_json(present),)
                )
            elif present:
                await self._tx.executemany(
                    table.upsert_sql(self._version), map(table.to_params, present)
                )
            deletes = [key for key, row in changes if row is None]
            if deletes:
                cond = " AND ".join(f"{c} = ?" for c in table.key)
                await self._tx.executemany(
                    f"DELETE FROM {table.name(self._version)} WHERE {cond}", deletes
                )


class ReadModel(ABC):
    """One projection's read side: its tables, the events it folds and how."""

    #: Projection name (stable; checkpoints and status use it).
    name: str
    tables: tuple[Table, ...]
    #: Event types this model folds; every other event only moves the checkpoint.
    event_types: frozenset[str]

    def accepts(self, event: RecordedEvent) -> bool:
        return event.type in self.event_types

    def ddl(self, version: int, dialect: Dialect) -> list[str]:
        return [s for t in self.tables for s in t.ddl(version, dialect)] + self.extra_ddl(
            version, dialect
        )

    def extra_ddl(self, version: int, dialect: Dialect) -> list[str]:
        return []

    def drop_ddl(self, version: int, dialect: Dialect) -> list[str]:
        return [f"DROP TABLE IF EXISTS {t.name(version)}" for t in self.tables]

    def prefetch(self, event: RecordedEvent) -> Iterable[tuple[str, Key]]:
        """Rows the event will touch, loaded for the whole batch in one query per table."""
        return ()

    def prefetch_more(
        self, events: Sequence[RecordedEvent], loaded: Callable[[str, Key], Row | None]
    ) -> Iterable[tuple[str, Key]]:
        """Rows the batch will touch whose keys only the rows :meth:`prefetch` named tell
        (``loaded`` looks them up, as they were before the batch): a second query per table
        instead of one per row. A key missed or named in vain costs a query or a row, nothing
        else."""
        return ()

    @abstractmethod
    async def apply(self, rows: Rows, event: RecordedEvent) -> None:
        """Fold one event into the working set."""

    async def after_save(self, tx: Tx, rows: Rows, version: int, dialect: Dialect) -> None:
        """Write derived structures (e.g. a search index) from the batch's changed rows."""
        return None


# --- small helpers shared by the models ----------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def iso(moment: datetime) -> str:
    # Cached: the events of one append share their time, and every model formats it (once for
    # each row it touches); formatting costs more than the lookup.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def money(value: object) -> Decimal:
    """A decimal amount from an event payload (strings; a float only from very old events)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    return Decimal(str(value if value is not None else "0"))


def sort_key(amount: Decimal) -> int:
    """An exact integer that orders amounts (ten-thousandths); SQL sorts on it, never on text."""
    return int((amount * 10_000).to_integral_value())


def order_id_of(event: RecordedEvent) -> str:
    value = event.data.get("order_id")
    if isinstance(value, str) and value:
        return value
    return event.stream_id.split("-", 1)[1] if "-" in event.stream_id else event.stream_id
