"""One registry of ``.sql`` migrations for every component that keeps tables in cairn's database.

A component's schema is a :class:`MigrationSet`: a folder of ``NNNN_name.sql`` files shipped as
package data, applied in the order of their numbers. Every set records what it applied in the one
``schema_migrations`` table (``name``, ``applied_at``, ``checksum``), so the event store, read
models, saga state, relay checkpoints and idempotency records can all migrate the same database
without knowing of each other::

    STORE = MigrationSet("cairn.store", "migrations/postgres")
    applied = await apply_postgres(conn, [STORE, READ_MODELS])   # names applied now; [] if none

Applied migrations are never edited: a change is a new file. To hold everyone to that, each row
records the sha256 of its file, and a file whose checksum no longer matches its row raises
:class:`~cairn.errors.MigrationChecksumError` naming it, when migrating and when checking alike.
Rows recorded before checksums existed (by cairn before this registry) have none: the first run
fills in the file's checksum, since those files hold exactly the migrations that ran then.

Each migration runs in its own transaction, so a failure leaves the ones before it applied and
recorded, and a second run resumes at the failed one.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from cairn.errors import MigrationChecksumError

if TYPE_CHECKING:
    import aiosqlite
    import psycopg

#: ``0001_events.sql``: four digits, then the name; the name recorded is the file's stem.
MIGRATION_FILE: Final = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One ``.sql`` file: ``name`` as recorded in ``schema_migrations``, its SQL, and the sha256
    of its bytes."""

    name: str
    sql: str
    checksum: str


@dataclass(frozen=True, slots=True)
class MigrationSet:
    """The ``NNNN_name.sql`` files in ``folder`` of ``package`` (package data).

    ``prefix`` is put before each file's stem to make the name recorded in the shared
    ``schema_migrations`` table, so that sets never collide there: a new set should have one
    (``"read_models."``). The event store's sets have none, because their names were recorded
    before the registry existed and must still be recognised.
    """

    package: str
    folder: str
    prefix: str = ""

    def migrations(self) -> tuple[Migration, ...]:
        """The set's migrations in the order of their numbers."""
        numbered: dict[int, Migration] = {}
        for entry in resources.files(self.package).joinpath(self.folder).iterdir():
            if not entry.name.endswith(".sql"):
                continue
            match = MIGRATION_FILE.match(entry.name)
            if match is None:
                raise ValueError(f"{self.package}/{self.folder}/{entry.name}: not NNNN_name.sql")
            number = int(match[1])
            if number in numbered:
                raise ValueError(f"{self.package}/{self.folder}: two migrations numbered {number}")
            data = entry.read_bytes()
            numbered[number] = Migration(
                self.prefix + entry.name.removesuffix(".sql"),
                data.decode(),
                hashlib.sha256(data).hexdigest(),
            )
        return tuple(numbered[n] for n in sorted(numbered))


def _in_order(sets: Sequence[MigrationSet]) -> Iterator[Migration]:
    """Every migration of ``sets``: set after set, each in number order."""
    seen: set[str] = set()
    for migration_set in sets:
        for migration in migration_set.migrations():
            if migration.name in seen:
                raise ValueError(f"migration {migration.name!r} is in two sets: give one a prefix")
            seen.add(migration.name)
            yield migration


#: ``name`` → recorded checksum (``None``: recorded before checksums existed).
Recorded = Mapping[str, str | None]


def _needs_work(migration: Migration, recorded: Recorded) -> bool:
    """Whether ``migration`` must be applied or have its checksum filled in; raises when its
    recorded checksum is not its file's."""
    if migration.name not in recorded:
        return True
    checksum = recorded[migration.name]
    if checksum is None:
        return True
    if checksum != migration.checksum:
        raise MigrationChecksumError(
            f"migration {migration.name!r} was applied from a different file (recorded checksum "
            f"{checksum[:12]}…, file {migration.checksum[:12]}…); applied migrations must not be "
            "edited: restore the file and put the change in a new migration",
            migration=migration.name,
        )
    return False


def _pending(sets: Sequence[MigrationSet], recorded: Recorded) -> list[str]:
    return [m.name for m in _in_order(sets) if _needs_work(m, recorded) and m.name not in recorded]


# -- PostgreSQL -------------------------------------------------------------------------------

_PG_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)
#: The registry's own change to the table that cairn made before it: idempotent.
_PG_CHECKSUM_COLUMN: Final = "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text"


async def _pg_recorded(conn: psycopg.AsyncConnection[Any]) -> dict[str, str | None]:
    cur = await conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations') "
        "AND attnum > 0 AND NOT attisdropped"
    )
    columns = {row[0] for row in await cur.fetchall()}
    if not columns:
        return {}
    checksum = "checksum" if "checksum" in columns else "NULL::text"
    cur = await conn.execute(f"SELECT name, {checksum} FROM schema_migrations")
    return {row[0]: row[1] for row in await cur.fetchall()}


async def apply_postgres(
    conn: psycopg.AsyncConnection[Any], sets: Sequence[MigrationSet]
) -> list[str]:
    """Apply the missing migrations of ``sets`` on an autocommit connection, each in its own
    transaction; returns their names (``[]`` when the database is up to date)."""
    applied: list[str] = []
    recorded = await _pg_recorded(conn)
    for migration in _in_order(sets):
        if not _needs_work(migration, recorded):
            continue
        async with conn.transaction():
            # A migration may rewrite a large table, and the second of two starting processes
            # waits for the first one's: neither is bounded by the session limits
            # (cairn.sql.postgres_connect), in this transaction only.
            await conn.execute("SET LOCAL statement_timeout = 0")
            await conn.execute("SET LOCAL lock_timeout = 0")
            # Two processes starting at once must not both run a migration: the advisory lock
            # queues the second until the first has committed, then it sees the row and skips.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cairn.schema_migrations'))")
            await conn.execute(_PG_TABLE)
            await conn.execute(_PG_CHECKSUM_COLUMN)
            cur = await conn.execute(
                "SELECT name, checksum FROM schema_migrations WHERE name = %s", (migration.name,)
            )
            row = await cur.fetchone()
            if row is None:
                # One simple-protocol statement (no parameters): a file may hold several
                # statements and $$-quoted function bodies, sent as they are.
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                    (migration.name, migration.checksum),
                )
                applied.append(migration.name)
            elif _needs_work(migration, {row[0]: row[1]}):
                await conn.execute(
                    "UPDATE schema_migrations SET checksum = %s WHERE name = %s",
                    (migration.checksum, migration.name),
                )
    return applied


async def pending_postgres(
    conn: psycopg.AsyncConnection[Any], sets: Sequence[MigrationSet]
) -> list[str]:
    """The names of the migrations of ``sets`` not applied yet; changes nothing, but raises
    :class:`~cairn.errors.MigrationChecksumError` for an applied one whose file changed."""
    return _pending(sets, await _pg_recorded(conn))


# -- SQLite -----------------------------------------------------------------------------------

_SQLITE_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"
)


def sqlite_statements(script: str) -> list[str]:
    """A script's statements, one each: sqlite3 executes one statement per call, and
    ``executescript`` would commit the transaction the migration runs in. A ``;`` inside a
    string literal or a trigger body does not end a statement (``sqlite3.complete_statement``)."""
    statements: list[str] = []
    start = 0
    end = script.find(";")
    while end != -1:
        if sqlite3.complete_statement(script[start : end + 1]):
            statements.append(script[start : end + 1])
            start = end + 1
        end = script.find(";", end + 1)
    rest = script[start:]
    if any(line.strip() and not line.strip().startswith("--") for line in rest.splitlines()):
        statements.append(rest)
    return statements


async def _sqlite_columns(conn: aiosqlite.Connection) -> set[str]:
    """The columns of ``schema_migrations`` (none when the table does not exist)."""
    return {row[1] for row in await conn.execute_fetchall("PRAGMA table_info(schema_migrations)")}


async def _sqlite_recorded(conn: aiosqlite.Connection) -> dict[str, str | None]:
    columns = await _sqlite_columns(conn)
    if not columns:
        return {}
    checksum = "checksum" if "checksum" in columns else "NULL"
    rows = await conn.execute_fetchall(f"SELECT name, {checksum} FROM schema_migrations")
    return {row[0]: row[1] for row in rows}


async def apply_sqlite(conn: aiosqlite.Connection, sets: Sequence[MigrationSet]) -> list[str]:
    """Apply the missing migrations of ``sets`` on a connection in autocommit mode
    (``isolation_level=None``), each in its own write transaction; returns their names."""
    applied: list[str] = []
    recorded = await _sqlite_recorded(conn)
    for migration in _in_order(sets):
        if not _needs_work(migration, recorded):
            continue
        # IMMEDIATE: the database's write lock is taken before the check, so a concurrent
        # migrator waits here and then finds the row, instead of applying the migration twice.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(_SQLITE_TABLE)
            if "checksum" not in await _sqlite_columns(conn):
                # The registry's own change to the table cairn made before it.
                await conn.execute("ALTER TABLE schema_migrations ADD COLUMN checksum TEXT")
            rows = list(
                await conn.execute_fetchall(
                    "SELECT name, checksum FROM schema_migrations WHERE name = ?",
                    (migration.name,),
                )
            )
            if not rows:
                for statement in sqlite_statements(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, applied_at, checksum) VALUES (?, ?, ?)",
                    (migration.name, time.time_ns() // 1000, migration.checksum),
                )
                applied.append(migration.name)
            elif _needs_work(migration, {rows[0][0]: rows[0][1]}):
                await conn.execute(
                    "UPDATE schema_migrations SET checksum = ? WHERE name = ?",
                    (migration.checksum, migration.name),
                )
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return applied


async def pending_sqlite(conn: aiosqlite.Connection, sets: Sequence[MigrationSet]) -> list[str]:
    """The names of the migrations of ``sets`` not applied yet; changes nothing, but raises
    :class:`~cairn.errors.MigrationChecksumError` for an applied one whose file changed."""
    return _pending(sets, await _sqlite_recorded(conn))
