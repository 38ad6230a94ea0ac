"""Array parameters written as literals read back, on PostgreSQL, as the values they came from."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.sql.array_literal import array_literal
from cairn.sql.database import Database
from cairn.sql.factory import open_database

# PostgreSQL text cannot hold NUL (nor UTF-8 a lone surrogate); anything else, quotes,
# backslashes, braces and the word NULL included, must come back unchanged.
_TEXT = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=30
) | st.sampled_from(["NULL", "null", "", " ", "{}", "a,b", '"', "\\", '\\"', '{"a": [1, "}"]}'])


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    database = open_database(pg_url)
    try:
        yield database
    finally:
        await database.close()


async def _round_trip(db: Database, values: list[Any], kind: str) -> Any:
    row = await db.fetchone(f"SELECT ?::{kind}[] AS a", (array_literal(values),))
    assert row is not None
    return row["a"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.none() | _TEXT, max_size=8))
async def test_texts_and_nulls_come_back_unchanged(db: Database, values: list[str | None]) -> None:
    assert await _round_trip(db, values, "text") == values


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(_TEXT, max_size=8))
async def test_a_column_of_texts_only_comes_back_unchanged(db: Database, values: list[str]) -> None:
    assert await _round_trip(db, values, "text") == values


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), max_size=8))
async def test_integers_come_back_unchanged(db: Database, values: list[int | None]) -> None:
    assert await _round_trip(db, values, "bigint") == values


async def test_instants_uuids_decimals_and_booleans_come_back_unchanged(db: Database) -> None:
    at = datetime.datetime(2026, 12, 6, 4, 30, 1, 123456, tzinfo=datetime.UTC)
    ids = [uuid.uuid4(), uuid.uuid4()]
    assert await _round_trip(db, [at, None], "timestamptz") == [at, None]
    assert await _round_trip(db, ids, "uuid") == ids
    assert await _round_trip(db, [Decimal("12.50"), Decimal("-0.001")], "numeric") == [
        Decimal("12.50"),
        Decimal("-0.001"),
    ]
    assert await _round_trip(db, [True, False, None], "boolean") == [True, False, None]


async def test_a_literal_matches_with_any_like_the_list_it_replaces(db: Database) -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    row = await db.fetchone("SELECT ?::uuid = ANY(?) AS found", (ids[1], array_literal(ids)))
    assert row == {"found": True}


def test_elements_it_cannot_write_are_left_to_the_driver() -> None:
    assert array_literal([b"\x00raw", "text"]) == [b"\x00raw", "text"]


def test_a_text_holding_nul_is_left_to_the_driver_not_split_in_two() -> None:
    assert array_literal(["a\x00b", "c"]) == ["a\x00b", "c"]
