"""The migrations registry (``cairn.sql.registry``) as another component uses it: its own
``.sql`` set, recorded beside the store's in the one ``schema_migrations`` table, and refused
once an applied file is edited."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cairn.errors import MigrationChecksumError
from cairn.sql import postgres_connect
from cairn.sql.registry import MigrationSet, apply_postgres, apply_sqlite, sqlite_statements
from cairn.store import postgres_schema, sqlite
from cairn.store.urls import postgres_conninfo, sqlite_path

Apply = Callable[[Sequence[MigrationSet]], Awaitable[list[str]]]

THINGS = """-- A component's table; a ';' in a comment or a literal does not end a statement.
CREATE TABLE things (name text PRIMARY KEY, note text NOT NULL DEFAULT 'a;b');
INSERT INTO things (name) VALUES ('first');
"""


@pytest.fixture
def component(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package ``things_component`` with a folder of migrations, importable for this test
    only (forgotten afterwards, so the next test imports its own)."""
    package = tmp_path / "things_component"
    (package / "schema").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "schema" / "0001_things.sql").write_text(THINGS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package / "schema"
    sys.modules.pop("things_component", None)


@pytest.fixture(params=["sqlite", "postgres"])
async def apply(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Apply, MigrationSet]]:
    """``apply(sets)`` on one connection to a fresh database, and that dialect's store set."""
    conn: Any
    if request.param == "sqlite":
        conn = await sqlite.connect(sqlite_path(request.getfixturevalue("sqlite_url")))
        yield (lambda sets: apply_sqlite(conn, sets)), sqlite.MIGRATIONS
    else:
        url = request.getfixturevalue("pg_url")
        conn = await postgres_connect.connect(postgres_conninfo(url))
        yield (lambda sets: apply_postgres(conn, sets)), postgres_schema.MIGRATIONS
    await conn.close()


THINGS_SET = MigrationSet("things_component", "schema", prefix="things.")


async def test_a_components_set_is_applied_beside_the_stores_under_its_prefix(
    component: Path, apply: tuple[Apply, MigrationSet]
) -> None:
    run, store_set = apply
    applied = await run([store_set, THINGS_SET])
    assert applied == [m.name for m in store_set.migrations()] + ["things.0001_things"]
    assert await run([store_set, THINGS_SET]) == []


async def test_a_components_applied_file_edited_afterwards_is_refused(
    component: Path, apply: tuple[Apply, MigrationSet]
) -> None:
    run, _ = apply
    await run([THINGS_SET])
    (component / "0001_things.sql").write_text(THINGS.replace("'first'", "'second'"))
    with pytest.raises(MigrationChecksumError, match=r"things\.0001_things"):
        await run([THINGS_SET])


async def test_a_new_file_of_a_set_is_applied_after_the_ones_before(
    component: Path, apply: tuple[Apply, MigrationSet]
) -> None:
    run, _ = apply
    await run([THINGS_SET])
    (component / "0002_more_things.sql").write_text("ALTER TABLE things ADD COLUMN size integer;\n")
    assert await run([THINGS_SET]) == ["things.0002_more_things"]


def test_a_file_not_named_like_a_migration_is_an_error(component: Path) -> None:
    (component / "things.sql").write_text("SELECT 1;\n")
    with pytest.raises(ValueError, match=r"NNNN_name\.sql"):
        THINGS_SET.migrations()


def test_sqlite_statements_end_at_semicolons_outside_literals_and_triggers() -> None:
    script = (
        "CREATE TABLE t (a text DEFAULT 'x;y');\n"
        "CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN UPDATE t SET a = 'z'; END;\n"
        "-- a trailing comment\n"
    )
    assert [s.strip() for s in sqlite_statements(script)] == [
        "CREATE TABLE t (a text DEFAULT 'x;y');",
        "CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN UPDATE t SET a = 'z'; END;",
    ]
