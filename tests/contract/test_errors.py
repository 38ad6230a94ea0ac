"""SPEC §1 and §9: bad input raises a typed error with a clear message and writes nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest

import cairn
from cairn import NewEvent
from cairn.errors import (
    InvalidEventError,
    InvalidExpectedVersion,
    InvalidStreamIdError,
    SchemaMissingError,
    StoreUnavailableError,
    UnsupportedStoreURL,
)
from cairn.store import EventStore
from cairn.store.migrate import migrate


async def test_empty_event_list_is_refused(store: EventStore) -> None:
    with pytest.raises(InvalidEventError, match="at least one event"):
        await store.append("order-1", [])


@pytest.mark.parametrize(
    "data",
    [
        {"when": object()},
        {"x": float("nan")},
        {"x": float("inf")},
        {1j: 1},
        ["not", "a", "dict"],
        {"text": "nul\u0000"},
        {"key\u0000": 1},
    ],
)
async def test_payload_that_is_not_a_json_object_is_refused(store: EventStore, data: Any) -> None:
    with pytest.raises(InvalidEventError):
        await store.append("order-1", [NewEvent("X", data)])
    assert await store.read_all() == []


async def test_metadata_that_is_not_json_is_refused(store: EventStore) -> None:
    with pytest.raises(InvalidEventError, match="metadata"):
        await store.append("order-1", [NewEvent("X", {}, metadata={"at": object()})])
    assert await store.read_all() == []


@pytest.mark.parametrize("stream_id", ["", "x" * 256, "bad\nid", "tab\tid", "$all", 42, None])
async def test_bad_stream_id_is_refused(store: EventStore, stream_id: Any) -> None:
    with pytest.raises(InvalidStreamIdError):
        await store.append(stream_id, [NewEvent("X", {})])
    assert await store.read_all() == []


@pytest.mark.parametrize("expected", [-1, "1", 1.0, True, None])
async def test_bad_expected_version_is_refused(store: EventStore, expected: Any) -> None:
    with pytest.raises(InvalidExpectedVersion):
        await store.append("order-1", [NewEvent("X", {})], expected_version=expected)
    assert await store.read_all() == []


@pytest.mark.parametrize("type_", ["", "   ", "T" * 256])
async def test_bad_event_type_is_refused(store: EventStore, type_: str) -> None:
    with pytest.raises(InvalidEventError):
        await store.append("order-1", [NewEvent(type_, {})])


async def test_duplicate_event_id_within_a_batch_is_refused(store: EventStore) -> None:
    event = NewEvent("X", {})
    with pytest.raises(InvalidEventError):
        await store.append("order-1", [event, event])
    assert await store.read_all() == []


@pytest.mark.parametrize("after", [-1, "0", None])
async def test_bad_read_all_arguments_are_refused(store: EventStore, after: Any) -> None:
    with pytest.raises(InvalidEventError):
        await store.read_all(after=after)


@pytest.mark.parametrize("url", ["mysql://localhost/db", "cairn.db", "", "sqlite:/x.db"])
async def test_unknown_or_malformed_url_is_refused(url: str) -> None:
    with pytest.raises(UnsupportedStoreURL):
        await cairn.open_store(url)


async def test_unreachable_postgres_fails_fast_naming_the_host() -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1") as caught:
        await cairn.open_store("postgresql://postgres@127.0.0.1:1/nowhere")
    assert time.monotonic() - start < 10
    assert "\n" not in str(caught.value)


async def test_sqlite_file_in_a_missing_directory_is_unavailable(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/missing/dir/cairn.db"
    with pytest.raises(StoreUnavailableError, match="missing/dir"):
        await cairn.open_store(url)


async def test_open_without_migrate_on_an_empty_database_raises(db_url: str) -> None:
    with pytest.raises(SchemaMissingError):
        await cairn.open_store(db_url, migrate=False)


async def test_migrate_applies_each_migration_once(db_url: str) -> None:
    first = await migrate(db_url)
    assert first
    assert first == sorted(first)
    assert await migrate(db_url) == []
    async with cairn.open_store(db_url, migrate=False) as store:
        assert (await store.append("a-1", [NewEvent("X", {})])).position == 1
