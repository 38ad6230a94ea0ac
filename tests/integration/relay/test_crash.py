"""kill -9 of a relay process at random points: after a restart no event is missing, and only
the unconfirmed tail (at most one batch per kill) is published again."""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3

from relay_helpers import (
    append_orders,
    jetstream_messages,
    kill_9,
    redis_entries,
    start_worker,
    wait_for,
)

import cairn
from cairn.store.urls import sqlite_path

BATCH = 25
KILLS = 4


def _checkpoint(database_url: str) -> int:
    with sqlite3.connect(sqlite_path(database_url)) as conn:
        try:
            row = conn.execute(
                "SELECT MAX(position) FROM checkpoints WHERE name LIKE 'relay:%'"
            ).fetchone()
        except sqlite3.OperationalError:
            return 0  # the relay has not created its table yet
    return int(row[0] or 0)


async def _kill_relay_repeatedly(
    database_url: str, broker_url: str, topic: str, rng: random.Random
) -> int:
    """Append, run and kill -9 the relay KILLS times, then let one run catch up. Returns the
    last position."""
    async with cairn.open_store(database_url) as store:
        await append_orders(store, 1000)
        for round_ in range(KILLS):
            worker = await asyncio.to_thread(start_worker, database_url, broker_url, topic, BATCH)
            await asyncio.sleep(rng.uniform(0.02, 0.4))
            kill_9(worker)
            await append_orders(store, 400, prefix=f"order{round_}")
        head = await store.head_position()
        worker = await asyncio.to_thread(start_worker, database_url, broker_url, topic, BATCH)
        try:
            await wait_for(lambda: _checkpoint(database_url) >= head, 60, "relay to catch up")
        finally:
            kill_9(worker)
    return head


def _assert_no_gap_and_rewinds_within_one_batch(positions: list[int], head: int) -> None:
    assert sorted(set(positions)) == list(range(1, head + 1)), "an event is missing"
    assert positions[0] == 1
    rewinds = 0
    for previous, current in itertools.pairwise(positions):
        if current != previous + 1:
            # A restart resumes after the saved checkpoint: never beyond what was published,
            # and never further back than the one batch that was in flight.
            assert current <= previous, f"gap: {previous} then {current}"
            assert previous - current < BATCH, f"rewound from {previous} to {current}"
            rewinds += 1
    assert rewinds <= KILLS


async def test_redis_gets_every_event_after_kills_with_duplicates_only_from_the_tail(
    sqlite_url: str, redis_url: str, redis_topic: str
) -> None:
    seed = random.randrange(1 << 30)
    head = await _kill_relay_repeatedly(sqlite_url, redis_url, redis_topic, random.Random(seed))
    positions = [ce["position"] for _, ce in await redis_entries(redis_url, redis_topic)]
    _assert_no_gap_and_rewinds_within_one_batch(positions, head)


async def test_jetstream_gets_every_event_exactly_once_after_kills(
    sqlite_url: str, nats_url: str, nats_topic: str
) -> None:
    seed = random.randrange(1 << 30)
    head = await _kill_relay_repeatedly(sqlite_url, nats_url, nats_topic, random.Random(seed))
    positions = [ce["position"] for _, _, ce in await jetstream_messages(nats_url, nats_topic)]
    assert positions == list(range(1, head + 1))
