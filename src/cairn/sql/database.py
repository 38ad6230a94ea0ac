"""The port every consumer of the SQL layer writes against: :class:`Database` and :class:`Tx`.

SQL is written once with ``?`` placeholders (the PostgreSQL adapter rewrites them to ``%s``
and doubles a literal ``%``, so cairn SQL never contains a literal ``?``). Rows come back as
dicts keyed by column name (alias computed columns: ``count(*) AS n``). Dialect differences that
do not fit one string go through the small helpers here (:meth:`Database.for_update`,
:meth:`Database.skip_locked`) or a branch on :attr:`Database.dialect`.

One :class:`Database` per process (built by the composition root, closed by it) serves every
consumer; options that used to be per-pool settings are per transaction (``durable``).
"""

from __future__ import annotations

import contextlib
import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cairn.sql.array_literal import array_literal
from cairn.sql.registry import MigrationSet

#: One row: column name → value.
Row = dict[str, Any]
Params = Sequence[Any]

__all__ = [
    "Database",
    "Dialect",
    "Params",
    "Row",
    "Schema",
    "Tx",
    "for_update",
    "in_list",
    "insert_rows",
    "skip_locked",
    "update_rows",
]


class Dialect(enum.Enum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


def for_update(dialect: Dialect, of: str | None = None) -> str:
    """The row-lock suffix of a ``SELECT``: ``FOR UPDATE [OF t]`` on PostgreSQL; nothing on
    SQLite, whose ``BEGIN IMMEDIATE`` already serialises writers."""
    if dialect is not Dialect.POSTGRES:
        return ""
    return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"


def skip_locked(dialect: Dialect) -> str:
    """``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers claiming due rows (timers,
    steps) each take different ones instead of waiting for each other; nothing on SQLite (one
    writer at a time, so there is nothing to skip)."""
    return " FOR UPDATE SKIP LOCKED" if dialect is Dialect.POSTGRES else ""


#: Beyond this many parameters a statement sends arrays instead on PostgreSQL. psycopg re-parses
#: a statement of more than :data:`_CACHED_PARAMETERS` parameters on every execution, but dumping
#: an array costs more than that until about 80 (measured, 19-column rows: 2 rows 0.33 ms VALUES
#: against 0.47 ms arrays, 4 rows even, 8 rows 0.73 against 0.61, 32 rows 1.70 against 1.01).
_ARRAY_PARAMETERS = 80
#: The most parameters of a statement whose parsing psycopg caches (its
#: ``MAX_CACHED_STATEMENT_PARAMS``): between this and :data:`_ARRAY_PARAMETERS`, rows go in
#: several ``VALUES`` statements of at most this many (measured, 15-column rows in a pipelined
#: transaction: 4 rows 0.78-0.85 ms of client CPU in two statements, 1.01-1.03 in one, 1.06-1.11
#: as arrays; 5 rows 0.87-0.96, 0.95-1.28 and 1.24-1.50).
_CACHED_PARAMETERS = 50


def in_list(dialect: Dialect, column: str, values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """``column`` is one of ``values``, as a condition and its parameters: ``IN (?, …)``, or
    on PostgreSQL beyond :data:`_ARRAY_PARAMETERS` values ``column = ANY(?)`` with one array
    parameter (one statement text whatever the count, prepared by the server)."""
    if dialect is Dialect.POSTGRES and len(values) > _ARRAY_PARAMETERS:
        return f"{column} = ANY(?)", (array_literal(values),)
    return f"{column} IN ({', '.join('?' for _ in values)})", tuple(values)


def insert_rows(
    dialect: Dialect,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    *,
    suffix: str = "",
) -> list[tuple[str, tuple[Any, ...]]]:
    """A multi-row ``INSERT INTO table`` of ``rows`` (in order), as statements and their
    parameters, to run in this order; ``columns`` are (name, PostgreSQL type) pairs; ``suffix``
    ends each statement (``ON CONFLICT …``).

    One ``VALUES`` statement, or on PostgreSQL beyond :data:`_ARRAY_PARAMETERS` parameters one
    array per column, unnested in order (see :func:`in_list`), and between
    :data:`_CACHED_PARAMETERS` and that, ``VALUES`` statements of at most that many."""
    if not rows:
        return []
    names = ", ".join(name for name, _ in columns)
    count = len(rows) * len(columns)
    if dialect is Dialect.POSTGRES and count > _ARRAY_PARAMETERS:
        arrays = ", ".join(f"?::{kind}[]" for _, kind in columns)
        picked = ", ".join(f"u.{name}" for name, _ in columns)
        return [
            (
                f"INSERT INTO {table} ({names}) SELECT {picked} FROM unnest({arrays})"
                f" WITH ORDINALITY AS u({names}, cairn_row) ORDER BY u.cairn_row{suffix}",
                tuple(array_literal([row[i] for row in rows]) for i in range(len(columns))),
            )
        ]
    per = len(rows)
    if dialect is Dialect.POSTGRES and count > _CACHED_PARAMETERS:
        per = max(1, _CACHED_PARAMETERS // len(columns))
    marks = "(" + ", ".join("?" for _ in columns) + ")"
    return [
        (
            f"INSERT INTO {table} ({names}) VALUES {', '.join(marks for _ in chunk)}{suffix}",
            tuple(value for row in chunk for value in row),
        )
        for chunk in (rows[i : i + per] for i in range(0, len(rows), per))
    ]


def update_rows(
    table: str, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[tuple[str, tuple[Any, ...]]]:
    """``UPDATE table`` of several rows, each ``(key value, *column values)``, as statements
    and their parameters: one ``UPDATE … FROM (VALUES …)`` per :data:`_CACHED_PARAMETERS`
    parameters at most, on either dialect (SQLite since 3.33). A key must appear once."""
    width = len(columns) + 1
    per = max(1, _CACHED_PARAMETERS // width)
    sets = ", ".join(f"{name} = v.column{i + 2}" for i, name in enumerate(columns))
    marks = "(" + ", ".join("?" for _ in range(width)) + ")"
    return [
        (
            f"UPDATE {table} SET {sets} FROM (VALUES {', '.join(marks for _ in chunk)}) AS v"
            f" WHERE {table}.{key} = v.column1",
            tuple(value for row in chunk for value in row),
        )
        for chunk in (rows[i : i + per] for i in range(0, len(rows), per))
    ]


class Tx(ABC):
    """One open transaction: committed when its block ends, rolled back if the block raises."""

    dialect: Dialect
    _after_commit: list[Callable[[], None]] | None = None

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this transaction has committed: never if it rolls back, nor
        when the commit's outcome is unknown (a connection lost during COMMIT). For what a
        process may only believe about the database once it is true there (a cache)."""
        if self._after_commit is None:
            self._after_commit = []
        self._after_commit.append(callback)

    def committed(self) -> None:
        """Run the :meth:`after_commit` callbacks (by the :class:`Database` that committed)."""
        callbacks, self._after_commit = self._after_commit or [], None
        for callback in callbacks:
            callback()

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed (-1 inside :meth:`pipelined` on
        PostgreSQL, where the result is not waited for)."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per parameter row."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query; its rows."""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query; its first row, if any."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    def pipelined(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Writes inside this block may be sent without waiting for each result (PostgreSQL
        pipeline mode: one round trip for the lot, errors surface at the block's end or at
        commit). No reads inside it, and no use of ``execute``'s row count."""
        return contextlib.nullcontext()

    def for_update(self, of: str | None = None) -> str:
        """See :func:`for_update`."""
        return for_update(self.dialect, of)

    def skip_locked(self) -> str:
        """See :func:`skip_locked`."""
        return skip_locked(self.dialect)


@dataclass(frozen=True, slots=True)
class Schema:
    """A component's tables: its ``.sql`` migrations in ``migrations/postgres`` and
    ``migrations/sqlite`` of ``package``, recorded in ``schema_migrations`` under ``prefix``."""

    package: str
    prefix: str

    def for_dialect(self, dialect: Dialect) -> MigrationSet:
        return MigrationSet(self.package, f"migrations/{dialect.value}", prefix=self.prefix)


class Database(ABC):
    """Short transactions and plain reads on the database beside the event log."""

    dialect: Dialect
    #: A read replica (``open_database(…, standby=True)``): a table it has not replayed yet is
    #: :class:`~cairn.errors.SchemaMissingError`, not a bug (:mod:`cairn.sql.outage`).
    standby: bool = False

    @abstractmethod
    def transaction(self, *, durable: bool = True) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        ``durable=False`` lets PostgreSQL acknowledge the commit before its WAL reaches disk
        (``synchronous_commit = off`` for this transaction only): a server crash may forget the
        last few hundred milliseconds of such transactions, never tear one. Only for rows that
        are rebuilt from the log after a loss (a read-model batch and its checkpoint); saga
        state, idempotency records and the inbox stay durable. SQLite ignores it.
        """

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """A read outside any write transaction (sees committed data only)."""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Like :meth:`fetchall`, the first row only."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in a transaction of its own; the number of rows it changed."""
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    @abstractmethod
    def schema_transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A transaction for creating tables (``CREATE … IF NOT EXISTS``) and their seed rows,
        serialised with every other process's schema transaction (see the implementations)."""

    async def ensure_schema(self, statements: Iterable[str]) -> None:
        """Run ``statements`` (idempotent DDL) in one :meth:`schema_transaction`."""
        async with self.schema_transaction() as tx:
            for statement in statements:
                if statement.strip():
                    await tx.execute(statement)

    @abstractmethod
    async def migrate(self, *schemas: Schema) -> list[str]:
        """Apply what is missing of each component's ``.sql`` migrations (in the order given,
        through the one registry, :mod:`cairn.sql.registry`); the names applied now."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connections this Database opened. Idempotent."""

    def for_update(self, of: str | None = None) -> str:
        """See :func:`for_update`."""
        return for_update(self.dialect, of)

    def skip_locked(self) -> str:
        """See :func:`skip_locked`."""
        return skip_locked(self.dialect)
