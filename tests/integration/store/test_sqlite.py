"""SQLite specifics: a file outlives the process that wrote it; several stores share one file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import cairn
from cairn import ConcurrencyError, NewEvent


async def test_reopened_file_keeps_events_versions_and_positions(sqlite_url: str) -> None:
    async with cairn.open_store(sqlite_url) as store:
        await store.append("order-1", [NewEvent("A", {"n": 1}), NewEvent("B", {"n": 2})])
        await store.delete_stream("order-1")
        await store.append("order-2", [NewEvent("C", {"n": 3})])
    async with cairn.open_store(sqlite_url) as store:
        assert [e.position for e in await store.read_all()] == [1, 2, 3]
        assert (await store.stream_info("order-1")).deleted is True
        result = await store.append("order-2", [NewEvent("D", {})], expected_version=1)
        assert (result.version, result.position) == (2, 4)


async def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with cairn.open_store("sqlite:///rel.db") as store:
        await store.append("a-1", [NewEvent("A", {})])
    assert "rel.db" in os.listdir(tmp_path)


async def test_file_uses_write_ahead_logging(sqlite_url: str, tmp_path: Path) -> None:
    async with cairn.open_store(sqlite_url) as store:
        await store.append("a-1", [NewEvent("A", {})])
        assert "cairn.db-wal" in os.listdir(tmp_path)


async def test_stores_opening_a_new_file_together_all_open(tmp_path: Path) -> None:
    # Switching a new file to WAL needs it to itself, and SQLite answers "database is locked"
    # at once rather than wait: opening 6 stores at once failed about 2% of the time.
    for n in range(25):
        stores = await asyncio.gather(
            *(cairn.open_store(f"sqlite:///{tmp_path}/new-{n}.db") for _ in range(6))
        )
        for store in stores:
            await store.close()


async def test_one_winner_among_stores_sharing_a_file(sqlite_url: str) -> None:
    stores = [await cairn.open_store(sqlite_url) for _ in range(4)]
    try:
        await stores[0].append("order-1", [NewEvent("A", {})], expected_version=0)

        async def attempt(n: int) -> bool:
            try:
                await stores[n].append("order-1", [NewEvent("B", {"n": n})], expected_version=1)
            except ConcurrencyError:
                return False
            return True

        outcomes = await asyncio.gather(*(attempt(n) for n in range(4)))
        assert outcomes.count(True) == 1
        assert [e.position for e in await stores[3].read_all()] == [1, 2]
    finally:
        for store in stores:
            await store.close()


async def test_subscriber_sees_appends_of_another_store_on_the_file(sqlite_url: str) -> None:
    async with cairn.open_store(sqlite_url) as reader, cairn.open_store(sqlite_url) as writer:

        async def first() -> int:
            async for event in reader.subscribe(after=0):
                return event.position
            raise AssertionError("subscription ended")

        task = asyncio.create_task(first())
        await asyncio.sleep(0.05)
        await writer.append("a-1", [NewEvent("A", {})])
        assert await asyncio.wait_for(task, 5) == 1


async def test_private_in_memory_sqlite_database_works() -> None:
    async with cairn.open_store("sqlite://") as store:
        await store.append("a-1", [NewEvent("A", {})], expected_version=0)
        assert len(await store.read_all()) == 1
