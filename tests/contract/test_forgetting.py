"""SPEC §12, forgetting: the streams carrying a subject's personal data are found in the log
(every backend), and a deleted key leaves no bytes behind in the database (SQLite file and
write-ahead log; PostgreSQL's table once vacuumed)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

import cairn
from cairn import NewEvent
from cairn.store import EventStore
from cairn.store.personal import PersonalDataPolicy, PersonalFields
from cairn.store.urls import sqlite_path

POLICY = PersonalDataPolicy(
    {
        "AccountOpened": PersonalFields("customer_id", frozenset({"name"})),
        "ParcelSent": PersonalFields("recipient", frozenset({"address"})),
    }
)


def opened(customer: str) -> NewEvent:
    return NewEvent("AccountOpened", {"customer_id": customer, "name": "Ada"})


@pytest.fixture
async def sealing(store_url: str) -> AsyncIterator[EventStore]:
    async with cairn.open_store(store_url, personal_data=POLICY) as store:
        yield store


async def test_streams_of_a_subject_are_listed_in_order_of_their_first_event(
    sealing: EventStore,
) -> None:
    await sealing.append("account-2", [opened("c-1")])
    await sealing.append("parcel-9", [NewEvent("ParcelSent", {"recipient": "c-1", "address": "x"})])
    await sealing.append("account-1", [opened("c-1")])
    await sealing.append("account-2", [opened("c-1")])
    assert await sealing.streams_of_subject("c-1") == ["account-2", "parcel-9", "account-1"]


async def test_streams_of_a_subject_leave_out_other_subjects_and_unlisted_types(
    sealing: EventStore,
) -> None:
    await sealing.append("account-1", [opened("c-1")])
    await sealing.append("account-2", [opened("c-2")])
    # The subject's id in a type the policy does not list is no personal data of theirs.
    await sealing.append("note-1", [NewEvent("Noted", {"customer_id": "c-1"})])
    # Nor is it in another type's field that does not name the subject.
    await sealing.append(
        "parcel-1", [NewEvent("ParcelSent", {"recipient": "c-2", "customer_id": "c-1"})]
    )
    assert await sealing.streams_of_subject("c-1") == ["account-1"]


async def test_streams_of_a_subject_are_still_found_after_the_forget(sealing: EventStore) -> None:
    await sealing.append("account-1", [opened("c-1")])
    await sealing.forget_subject("c-1")
    assert await sealing.streams_of_subject("c-1") == ["account-1"]


async def test_a_store_without_personal_data_lists_no_streams(store: EventStore) -> None:
    await store.append("account-1", [opened("c-1")])
    assert await store.streams_of_subject("c-1") == []


async def test_a_forgotten_key_is_not_left_in_the_sqlite_files(sqlite_url: str) -> None:
    path = Path(sqlite_path(sqlite_url))
    async with cairn.open_store(sqlite_url, personal_data=POLICY) as store:
        await store.append("account-1", [opened("c-1")])
        with sqlite3.connect(path) as conn:
            (key,) = conn.execute("SELECT key FROM subject_keys").fetchone()
        assert key in _files_bytes(path)
        assert await store.forget_subject("c-1")
        assert key not in _files_bytes(path)


def _files_bytes(path: Path) -> bytes:
    """The database file and its write-ahead log, as they are on disk."""
    files = [path, path.with_name(path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def test_a_forgotten_key_row_is_vacuumed_from_the_postgres_table(pg_url: str) -> None:
    async with cairn.open_store(pg_url, personal_data=POLICY) as store:
        await store.append("account-1", [opened("c-1")])
        await store.append("account-2", [opened("c-2")])
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
            cur = await conn.execute("SELECT key FROM subject_keys WHERE subject = 'c-1'")
            (key,) = await cur.fetchone() or (b"",)
            assert key in await _heap_tuples(conn)
            assert await store.forget_subject("c-1")
            assert key not in await _heap_tuples(conn)


async def _heap_tuples(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> bytes:
    """Every tuple stored in the keys table's pages, dead ones too (what a file copy shows)."""
    cur = await conn.execute(
        "SELECT coalesce(string_agg(t_data, ''::bytea), ''::bytea) "
        "FROM generate_series(0, pg_relation_size('subject_keys') / 8192 - 1) AS page, "
        "LATERAL heap_page_items(get_raw_page('subject_keys', page::int))"
    )
    row = await cur.fetchone()
    return bytes(row[0]) if row else b""


async def test_a_key_row_an_older_transaction_still_sees_is_vacuumed_once_it_ends(
    pg_url: str,
) -> None:
    async with cairn.open_store(pg_url, personal_data=POLICY) as store:
        await store.append("account-1", [opened("c-1")])
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
            cur = await conn.execute("SELECT key FROM subject_keys WHERE subject = 'c-1'")
            (key,) = await cur.fetchone() or (b"",)
            async with await psycopg.AsyncConnection.connect(pg_url) as reader:
                await reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                await reader.execute("SELECT count(*) FROM subject_keys")
                forgetting = asyncio.create_task(store.forget_subject("c-1"))
                await asyncio.sleep(0.5)
                # The reader's snapshot still sees the row: VACUUM has to leave it for now.
                assert key in await _heap_tuples(conn)
                await reader.execute("COMMIT")
                assert await forgetting
            assert key not in await _heap_tuples(conn)
