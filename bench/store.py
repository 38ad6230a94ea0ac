"""Event store benchmark: cairn against the ``eventsourcing`` library and raw psycopg INSERTs.

    python -m bench store [--quick]

All three write to the same PostgreSQL server, each into a fresh database created for the run
and dropped afterwards. A "command" appends 5 events (about 60 bytes of JSON each) to a new
stream in one transaction:

* cairn: ``store.append(stream, [5 × NewEvent], expected_version=0)``.
* eventsourcing 9.5.6: ``PostgresApplicationRecorder.insert_events`` of 5 ``StoredEvent`` rows
  (its notification log: ``LOCK TABLE … EXCLUSIVE`` for ordering), one pooled connection per
  writer thread.
* raw: one multi-row ``INSERT`` of 5 equivalent rows (bigserial position, stream, version, id,
  type, jsonb data and metadata, schema version, timestamp) into a table with the same three
  unique indexes as cairn's events (position, id, stream + version), autocommit (one
  transaction per command, same durability), one connection per writer: the floor of what any
  store can cost. What cairn does beyond it is what its contract needs: the version and
  soft-delete probe, the horizon subtransaction and the transaction id on every row (ADR 0001).

Measured: 8 concurrent writers and 1 sequential writer (events/s, fixed duration each);
``read_all`` full scan in pages of 1000 (decoded events/s, median of 3 scans: the first after
the writes also sets the rows' hint bits); ``read_stream`` of a 10k-event stream (p50); SQLite,
memory and Redis (``redis://``, keys under a prefix of the run's, deleted afterwards; the server
from ``CAIRN_BENCH_REDIS_URL``) appends/s and read_all events/s, and for Redis 8 writers too.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import psycopg

import cairn
from bench.common import Report, Stopwatch, percentile, scratch_pg_database
from cairn import NewEvent
from cairn.store import EventStore

EVENTS_PER_COMMAND = 5


def payload(i: int, k: int) -> dict[str, Any]:
    return {"sku": "MUG-1", "quantity": k + 1, "unit_price": "12.50", "n": i}


def new_events(i: int) -> list[NewEvent]:
    return [
        NewEvent("ItemAdded", payload(i, k), {"correlation_id": "bench"})
        for k in range(EVENTS_PER_COMMAND)
    ]


async def drive(
    writers: int, seconds: float, command: Callable[[int, int], Awaitable[None]]
) -> float:
    """Run ``writers`` concurrent loops of ``command(writer, i)`` for ``seconds``; events/s."""
    deadline = time.perf_counter() + seconds
    counts = [0] * writers

    async def loop(w: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            await command(w, i)
            i += 1
        counts[w] = i

    clock = Stopwatch()
    await asyncio.gather(*(loop(w) for w in range(writers)))
    return sum(counts) * EVENTS_PER_COMMAND / clock.elapsed


# --- cairn -----------------------------------------------------------------------------------


async def cairn_writes(store: EventStore, writers: int, seconds: float, tag: str) -> float:
    async def command(w: int, i: int) -> None:
        await store.append(f"bench-{tag}{w}-{i}", new_events(i), expected_version=0)

    return await drive(writers, seconds, command)


async def cairn_reads(store: EventStore, report: Report, label: str, scans: int = 3) -> float:
    """Median of ``scans`` full scans. The first one after the writes is slower on PostgreSQL:
    it also sets the rows' commit hint bits, which every later reader then finds set."""
    rates: list[float] = []
    total = 0
    for _ in range(scans):
        clock = Stopwatch()
        total = 0
        after = 0
        while batch := await store.read_all(after=after, limit=1000):
            total += len(batch)
            after = batch[-1].position
        rates.append(total / clock.elapsed)
    return report.add(
        f"{label} read_all full scan",
        statistics.median(rates),
        "events/s",
        f"{total} events; scans: " + ", ".join(f"{rate:,.0f}" for rate in rates),
    )


async def read_stream_p50(store: EventStore, report: Report, label: str, samples: int) -> float:
    for chunk in range(20):
        events = [NewEvent("ItemAdded", payload(chunk * 500 + k, k)) for k in range(500)]
        await store.append("bench-long", events, expected_version=chunk * 500)
    times = []
    for _ in range(samples):
        clock = Stopwatch()
        read = await store.read_stream("bench-long")
        times.append(clock.elapsed * 1000)
        assert len(read) == 10_000
    return report.add(f"{label} read_stream 10k events p50", percentile(times, 50), "ms")


# --- raw psycopg -----------------------------------------------------------------------------

RAW_DDL = """
CREATE TABLE raw_events (
    position bigserial PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL,
    id uuid NOT NULL UNIQUE, type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL,
    schema_version integer NOT NULL DEFAULT 1,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(), UNIQUE (stream_id, version)
)
"""
RAW_INSERT = (
    "INSERT INTO raw_events (stream_id, version, id, type, data, metadata) VALUES "
    + ", ".join(["(%s, %s, %s, %s, %s::jsonb, %s::jsonb)"] * EVENTS_PER_COMMAND)
)


async def raw_writes(url: str, writers: int, seconds: float, tag: str) -> float:
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(writers)]
    metadata = json.dumps({"correlation_id": "bench"})

    async def command(w: int, i: int) -> None:
        params: list[Any] = []
        for k in range(EVENTS_PER_COMMAND):
            params += [f"raw-{tag}{w}-{i}", k + 1, uuid.uuid4(), "ItemAdded"]
            params += [json.dumps(payload(i, k)), metadata]
        await conns[w].execute(RAW_INSERT, params)

    try:
        return await drive(writers, seconds, command)
    finally:
        for conn in conns:
            await conn.close()


# --- eventsourcing ---------------------------------------------------------------------------


def eventsourcing_writes(url: str, writers: int, seconds: float) -> float:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    parts = urlsplit(url)
    datastore = PostgresDatastore(
        dbname=parts.path.lstrip("/"),
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or "",
        pool_size=writers,
        max_overflow=0,
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name="es_events")
    recorder.create_table()
    deadline = time.perf_counter() + seconds
    counts = [0] * writers

    def loop(w: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            originator = uuid.uuid4()
            recorder.insert_events(
                [
                    StoredEvent(
                        originator_id=originator,
                        originator_version=k + 1,
                        topic="bench:ItemAdded",
                        state=json.dumps(payload(i, k)).encode(),
                    )
                    for k in range(EVENTS_PER_COMMAND)
                ]
            )
            i += 1
        counts[w] = i

    clock = Stopwatch()
    threads = [threading.Thread(target=loop, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = clock.elapsed
    datastore.close()
    return sum(counts) * EVENTS_PER_COMMAND / elapsed


# --- the run ---------------------------------------------------------------------------------


async def checkpoint(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CHECKPOINT")


async def interleaved(
    report: Report, writers: int, seconds: float, rounds: int, url: str, store: EventStore
) -> dict[str, float]:
    """Events/s of each contender over ``rounds`` rounds, run in turn within each round, so that
    load from other processes on the machine falls on all three alike.

    Returns the median events/s of each, and the median over rounds of each round's cairn /
    contender ratio: a ratio of two runs seconds apart cancels the slow swings of a shared
    machine that a ratio of two medians taken over the whole run keeps."""
    runs: dict[str, Callable[[str], Awaitable[float]]] = {
        "cairn": lambda tag: cairn_writes(store, writers, seconds, tag),
        "raw INSERT": lambda tag: raw_writes(url, writers, seconds, tag),
        "eventsourcing": lambda tag: asyncio.to_thread(eventsourcing_writes, url, writers, seconds),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        # Each round starts with another contender, and each turn after a checkpoint, so that
        # the background work one contender's writes leave behind (dirty buffers, autovacuum)
        # does not always fall on the same next one.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            await checkpoint(url)
            samples[name].append(await runs[name](f"{writers}r{r}-"))
    results: dict[str, float] = {}
    label = f"{writers} writers" if writers > 1 else "1 writer"
    for name, values in samples.items():
        spread = ", ".join(f"{v:,.0f}" for v in values)
        results[name] = report.add(
            f"postgres {name}, {label}", statistics.median(values), "events/s", spread
        )
    for name in ("raw INSERT", "eventsourcing"):
        ratios = [c / o for c, o in zip(samples["cairn"], samples[name], strict=True)]
        spread = ", ".join(f"{v:.2f}" for v in ratios)
        results[f"cairn / {name}"] = report.add(
            f"cairn / {name}, {label}", statistics.median(ratios), "x", f"per round: {spread}"
        )
    return results


async def postgres_part(report: Report, seconds: float, rounds: int, samples: int) -> None:
    async with scratch_pg_database("cairn_bench") as url:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(RAW_DDL)
        async with cairn.open_store(url) as store:
            # Warm up pools and prepared statements before measuring.
            await cairn_writes(store, 8, 0.3, "w")
            await raw_writes(url, 8, 0.3, "w")
            eight = await interleaved(report, 8, seconds, rounds, url, store)
            one = await interleaved(report, 1, seconds, rounds, url, store)
            await read_stream_p50(store, report, "postgres", samples)
            scan = await cairn_reads(store, report, "postgres")
            status = await store.horizon()
            report.notes.append(
                f"postgres horizon after the run: head={status.head}, lag={status.lag_events}"
            )
        report.check("cairn / eventsourcing, 8 writers", eight["cairn / eventsourcing"], 3.0)
        report.check("cairn / raw INSERT, 8 writers", eight["cairn / raw INSERT"], 0.7)
        report.check("cairn / raw INSERT, 1 writer", one["cairn / raw INSERT"], 0.8)
        report.check("postgres read_all, events/s", scan, 100_000)


async def embedded_part(report: Report, url: str, label: str, seconds: float, samples: int) -> None:
    async with cairn.open_store(url) as store:
        report.add(
            f"{label} appends, 1 writer", await cairn_writes(store, 1, seconds, "s"), "events/s"
        )
        await read_stream_p50(store, report, label, samples)
        await cairn_reads(store, report, label)


REDIS_URL = os.environ.get("CAIRN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


async def redis_part(report: Report, seconds: float, samples: int) -> None:
    """The Redis Streams store, like the embedded ones, plus 8 concurrent writers (it is a
    server, like PostgreSQL). The bench Redis may keep nothing on disk: ``volatile=ok``."""
    import redis.asyncio as aioredis

    prefix = f"cairn-bench-{uuid.uuid4().hex[:8]}"
    url = f"{REDIS_URL}?volatile=ok&prefix={prefix}"
    try:
        async with cairn.open_store(url) as store:
            report.add(
                "redis appends, 8 writers", await cairn_writes(store, 8, seconds, "m"), "events/s"
            )
        await embedded_part(report, url, "redis", seconds, samples)
    finally:
        client: Any = aioredis.Redis.from_url(REDIS_URL)
        try:
            doomed = [key async for key in client.scan_iter(match=f"{{{prefix}}}*", count=1000)]
            for start in range(0, len(doomed), 1000):
                await client.delete(*doomed[start : start + 1000])
        finally:
            await client.aclose()


async def run(quick: bool) -> Report:
    seconds = 1.0 if quick else 2.0
    rounds = 1 if quick else 5
    samples = 5 if quick else 15
    report = Report("store")
    report.notes.append(
        f"{EVENTS_PER_COMMAND} events per command, each command on a new stream; "
        f"throughput: median of {rounds} round(s) of {seconds:g} s, contenders in turn (each "
        "round starting with the next one, a checkpoint before each turn); "
        "ratios: median of the per-round ratios; "
        "all clients in one Python process"
    )
    await postgres_part(report, seconds, rounds, samples)
    with tempfile.TemporaryDirectory() as tmp:
        await embedded_part(report, f"sqlite:///{tmp}/bench.db", "sqlite", seconds, samples)
    await embedded_part(report, "memory://", "memory", seconds, samples)
    await redis_part(report, seconds, samples)
    return report
