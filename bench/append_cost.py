"""Server CPU per append: ``cairn_append`` against a raw multi-row INSERT of the same rows.

    python -m bench append_cost [--quick]

Throughput on a shared 2-core machine mixes the client's CPU, the server's and the host's
swings; this measures the server's share alone, as CPU time rather than rate, so it holds up on
a noisy host. Each contender gets its own connection; the PostgreSQL backend's ``utime +
stime`` (``/proc/<pid>/stat``, so the server must run on this machine) is read around a block of
sequential 5-event appends to new streams, the blocks interleaved over several rounds. The
cairn call is the statement ``PostgresEventStore`` sends, with the batch it encodes; the raw
INSERT is the one of ``bench/store.py``. Resolution: one clock tick (10 ms) per block.
"""

from __future__ import annotations

import json
import os
import statistics
import uuid
from pathlib import Path

import psycopg

from bench.common import Report, scratch_pg_database
from bench.store import EVENTS_PER_COMMAND, RAW_DDL, RAW_INSERT, new_events, payload
from cairn.sql.registry import apply_postgres
from cairn.store import postgres
from cairn.store.encoding import encode_batch
from cairn.store.postgres_schema import MIGRATIONS

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


async def cairn_append(conn: psycopg.AsyncConnection[object], stream: str, i: int) -> None:
    events = new_events(i)
    batch = encode_batch(
        [{"i": str(e.event_id), "t": e.type, "v": 1, "d": e.data, "m": e.metadata} for e in events],
        events,
    )
    await postgres._APPEND.run(conn, [stream.encode(), b"0", batch.encode()])


async def raw_insert(conn: psycopg.AsyncConnection[object], stream: str, i: int) -> None:
    metadata = json.dumps({"correlation_id": "bench"})
    params: list[object] = []
    for k in range(EVENTS_PER_COMMAND):
        params += [stream, k + 1, uuid.uuid4(), "ItemAdded", json.dumps(payload(i, k)), metadata]
    await conn.execute(RAW_INSERT, params, prepare=True)


async def run(quick: bool) -> Report:
    calls, rounds = (1000, 3) if quick else (2000, 5)
    report = Report("append_cost")
    report.notes.append(
        f"server CPU of one backend per 5-event append to a new stream; {rounds} interleaved "
        f"rounds of {calls} sequential appends each; median and per-round values"
    )
    contenders = {"cairn_append": cairn_append, "raw INSERT": raw_insert}
    async with scratch_pg_database("cairn_append_cost") as url:
        conns = {
            name: await psycopg.AsyncConnection.connect(url, autocommit=True) for name in contenders
        }
        try:
            setup = conns["raw INSERT"]
            await apply_postgres(setup, [MIGRATIONS])
            await setup.execute(RAW_DDL)
            for name, append in contenders.items():  # warm the plans and caches
                for i in range(200):
                    await append(conns[name], f"warm-{name}-{i}", i)
            samples: dict[str, list[float]] = {name: [] for name in contenders}
            for r in range(rounds):
                for name, append in contenders.items():
                    pid = conns[name].info.backend_pid
                    before = backend_cpu_seconds(pid)
                    for i in range(calls):
                        await append(conns[name], f"r{r}-{name}-{i}", i)
                    samples[name].append((backend_cpu_seconds(pid) - before) / calls * 1e6)
        finally:
            for conn in conns.values():
                await conn.close()
    for name, values in samples.items():
        spread = ", ".join(f"{v:.0f}" for v in values)
        report.add(f"server CPU per append, {name}", statistics.median(values), "µs", spread)
    ratios = [c / r for c, r in zip(samples["cairn_append"], samples["raw INSERT"], strict=True)]
    report.add(
        "cairn_append / raw INSERT, server CPU",
        statistics.median(ratios),
        "x",
        "per round: " + ", ".join(f"{v:.2f}" for v in ratios),
    )
    return report
