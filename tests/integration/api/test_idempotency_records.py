"""Idempotency records on both dialects: one generation per claim, the first response kept,
expiry after the TTL (an expired key is new again), the prune, one secret per database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cairn.api.idempotency import SQLIdempotencyStore, StoredResponse
from cairn.sql.database import Database
from cairn.sql.factory import open_database


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    database = open_database(url)
    try:
        yield database
    finally:
        await database.close()


def response(body: bytes = b"{}") -> StoredResponse:
    return StoredResponse("h", 201, body, {"etag": '"2"'})


async def test_a_claim_keeps_the_first_response_and_one_secret_serves_every_process(
    db: Database,
) -> None:
    one = await SQLIdempotencyStore.open(db)
    two = await SQLIdempotencyStore.open(db)
    assert one.secret == two.secret

    first = await one.claim("customer:c-1", "k")
    again = await two.claim("customer:c-1", "k")
    assert first.stored is None
    assert again.stored is None
    assert first.generation == again.generation  # racing processes derive the same ids

    await one.put("customer:c-1", "k", response(b"first"))
    await two.put("customer:c-1", "k", response(b"second"))
    stored = (await two.claim("customer:c-1", "k")).stored
    assert stored is not None
    assert stored.body == b"first"
    assert (await one.claim("customer:c-2", "k")).stored is None  # scoped to the principal


async def test_a_record_older_than_the_ttl_is_a_new_key_and_is_pruned(db: Database) -> None:
    store = await SQLIdempotencyStore.open(db, ttl=0.3)
    old = await store.claim("admin:1", "k")
    await store.put("admin:1", "k", response())
    assert (await store.claim("admin:1", "k")).stored is not None
    await store.claim("admin:1", "other")

    await asyncio.sleep(0.5)

    new = await store.claim("admin:1", "k")
    assert new.stored is None
    assert new.generation != old.generation
    assert await store.prune() == 1  # "other"; "k" was claimed anew
    await asyncio.sleep(0.5)
    assert await store.prune() == 1
    rows = await db.fetchall("SELECT key FROM api_idempotency")
    assert rows == []
