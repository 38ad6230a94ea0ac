"""PostgreSQL: the store's connection pool is sized from the URL's pool parameters."""

from __future__ import annotations

import asyncio

import cairn
from cairn import NewEvent
from cairn.store.postgres import PostgresEventStore


async def test_the_url_sizes_the_pool_and_concurrent_appends_share_it(pg_url: str) -> None:
    async with cairn.open_store(f"{pg_url}?pool_min=1&pool_max=2") as store:
        assert isinstance(store, PostgresEventStore)
        assert store.pool_size == (1, 2)
        await asyncio.gather(
            *(store.append(f"s-{n}", [NewEvent("E", {"n": n})], 0) for n in range(8))
        )
        assert len(await store.read_all()) == 8
