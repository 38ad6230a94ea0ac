"""SPEC §1: ``open_store`` creates the schema if it is missing, idempotently, even when several
processes start at once on an empty database."""

from __future__ import annotations

import asyncio

import cairn
from cairn import NewEvent
from cairn.store import EventStore
from cairn.store.migrate import migrate


async def test_concurrent_opens_of_an_empty_database_all_succeed(db_url: str) -> None:
    stores: list[EventStore] = list(
        await asyncio.gather(*(cairn.open_store(db_url) for _ in range(4)))
    )
    try:
        results = await asyncio.gather(
            *(s.append(f"a-{n}", [NewEvent("A", {})]) for n, s in enumerate(stores))
        )
        assert sorted(r.position for r in results) == [1, 2, 3, 4]
    finally:
        for store in stores:
            await store.close()
    assert await migrate(db_url) == []


async def test_reopening_keeps_the_events(db_url: str) -> None:
    async with cairn.open_store(db_url) as store:
        await store.append("a-1", [NewEvent("A", {"n": 1})])
    async with cairn.open_store(db_url) as store:
        (event,) = await store.read_all()
        assert (event.position, event.data) == (1, {"n": 1})
