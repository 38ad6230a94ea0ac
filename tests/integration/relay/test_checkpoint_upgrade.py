"""A relay upgraded to the one checkpoint table resumes where the old ``relay_checkpoints`` row
said, on both dialects: its migration copies the row, nothing is published twice."""

from __future__ import annotations

import pytest
from relay_helpers import append_orders, make_relay, redis_entries, running

import cairn
from cairn.sql.checkpoints import load_checkpoint
from cairn.sql.factory import open_database

#: The table (and its row) exactly as the relay kept them before the move.
_OLD_TABLE = """
CREATE TABLE relay_checkpoints (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at TEXT NOT NULL
)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


async def test_a_relay_resumes_after_the_checkpoint_its_old_table_held(
    database_url: str, redis_url: str, redis_topic: str
) -> None:
    async with cairn.open_store(database_url) as store:
        published_before = await append_orders(store, 4)
        last = await append_orders(store, 3, prefix="later")
        old = open_database(database_url)
        try:
            await old.execute(_OLD_TABLE)
            await old.execute(
                "INSERT INTO relay_checkpoints (name, position, updated_at) VALUES (?, ?, ?)",
                (f"redis:{redis_topic}", published_before, "2026-01-01T00:00:00.000000Z"),
            )
        finally:
            await old.close()

        async with running(make_relay(store, database_url, redis_url, redis_topic)) as relay:
            await relay.wait_until(last)

        db = open_database(database_url)
        try:
            assert await load_checkpoint(db, f"relay:redis:{redis_topic}") == last
            # The old table is left as it was: nothing writes it any more.
            row = await db.fetchone("SELECT position FROM relay_checkpoints")
            assert row is not None
            assert int(row["position"]) == published_before
        finally:
            await db.close()

    entries = await redis_entries(redis_url, redis_topic)
    assert [ce["position"] for _, ce in entries] == list(range(published_before + 1, last + 1))
