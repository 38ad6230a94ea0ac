"""The working set and table helpers every read model shares (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from cairn.projections.read_model import Rows, Table, money, sort_key
from cairn.sql.database import Dialect, Params, Row, Tx

T = Table(
    base="things",
    key=("id",),
    columns=(("id", "TEXT NOT NULL"), ("n", "BIGINT NOT NULL"), ("tags", "TEXT")),
    json_columns=frozenset({"tags"}),
    indexes=(("n",),),
)


class RecordingTx(Tx):
    dialect = Dialect.SQLITE

    def __init__(self, stored: list[Row] | None = None) -> None:
        self.stored = stored or []
        self.statements: list[tuple[str, list[Any]]] = []

    async def execute(self, sql: str, params: Params = ()) -> None:
        self.statements.append((sql, list(params)))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.statements.append((sql, [tuple(r) for r in rows]))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return [r for r in self.stored if r["id"] in params]


async def test_a_failed_event_is_undone_without_touching_earlier_changes() -> None:
    rows = Rows(RecordingTx([{"id": "a", "n": 1, "tags": "[]"}]), {"things": T}, 1)
    first = await rows.get("things", ("a",))
    assert first is not None
    rows.put("things", ("a",), {**first, "n": 2})
    mark = rows.mark()
    rows.put("things", ("a",), {**first, "n": 99})
    rows.put("things", ("b",), {"id": "b", "n": 1, "tags": []})

    rows.rollback_to(mark)

    assert await rows.get("things", ("a",)) == {"id": "a", "n": 2, "tags": []}
    assert await rows.get("things", ("b",)) is None
    assert set(rows.dirty) == {("things", ("a",))}


async def test_save_upserts_changed_rows_in_one_statement_and_deletes_removed_ones() -> None:
    tx = RecordingTx()
    rows = Rows(tx, {"things": T}, 3)
    rows.put("things", ("a",), {"id": "a", "n": 1, "tags": ["x"]})
    rows.put("things", ("b",), {"id": "b", "n": 2, "tags": []})
    rows.put("things", ("c",), None)

    await rows.save()

    (upsert, values), (delete, keys) = tx.statements
    assert upsert.startswith("INSERT INTO things_v3 (id, n, tags)")
    assert "ON CONFLICT (id) DO UPDATE SET n = excluded.n, tags = excluded.tags" in upsert
    assert values == [("a", 1, '["x"]'), ("b", 2, "[]")]
    assert (delete, keys) == ("DELETE FROM things_v3 WHERE id = ?", [("c",)])


def test_ddl_is_versioned_and_idempotent_per_dialect() -> None:
    sqlite = T.ddl(2, Dialect.SQLITE)
    pg = T.ddl(2, Dialect.POSTGRES)
    assert sqlite[0].startswith("CREATE TABLE IF NOT EXISTS things_v2 (id TEXT NOT NULL, n INTEGER")
    assert "n BIGINT NOT NULL" in pg[0]
    assert sqlite[1] == "CREATE INDEX IF NOT EXISTS things_v2_n ON things_v2 (n)"


@pytest.mark.parametrize(
    ("raw", "expected"), [("59.98", Decimal("59.98")), (12.5, Decimal("12.5")), (None, Decimal(0))]
)
def test_money_reads_strings_exactly_and_old_floats_by_their_repr(
    raw: object, expected: Decimal
) -> None:
    assert money(raw) == expected


def test_sort_key_orders_amounts_exactly() -> None:
    assert sort_key(Decimal("100.00")) > sort_key(Decimal("99.9999")) > sort_key(Decimal("9.99"))
    assert sort_key(Decimal("0.10")) == 1000
