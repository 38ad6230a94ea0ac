"""PostgreSQL: a database written before migration 0008 (events with a stored horizon, streams
with a version column) keeps working once a newer cairn opens it. (Databases made before the
migrations registry: ``test_upgrade_before_registry.py``.)"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass

import psycopg
import pytest

import cairn
from cairn import NewEvent
from cairn.sql.postgres_connect import connect
from cairn.sql.registry import Migration, MigrationSet, apply_postgres
from cairn.store import EventStore, RecordedEvent
from cairn.store.postgres_schema import MIGRATIONS
from cairn.store.urls import postgres_conninfo


@dataclass(frozen=True)
class Before0008(MigrationSet):
    """The store's migrations as they stood before 0008."""

    def migrations(self) -> tuple[Migration, ...]:
        return tuple(m for m in super().migrations() if m.name < "0008")


def batch(*types: str, ids: list[str] | None = None) -> str:
    ids = ids or [str(uuid.uuid4()) for _ in types]
    return json.dumps(
        [{"i": i, "t": t, "v": 1, "d": {}, "m": {}} for i, t in zip(ids, types, strict=True)]
    )


async def read_all_when(store: EventStore, positions: list[int]) -> list[RecordedEvent]:
    """Passing a hole waits for older transactions of the cluster (other tests' included)."""
    events: list[RecordedEvent] = []
    for _ in range(100):
        events = await store.read_all()
        if [e.position for e in events] == positions:
            break
        await asyncio.sleep(0.05)
    return events


async def write_with_0007(pg_url: str) -> None:
    """Positions 1, 2 (stream old-1), a hole at 3, 4 (a failed append), 5 (stream old-2)."""
    conn = await connect(postgres_conninfo(pg_url))
    try:
        await apply_postgres(conn, [Before0008(MIGRATIONS.package, MIGRATIONS.folder)])
        taken = str(uuid.uuid4())
        await conn.execute("SELECT cairn_append('old-1', 0, %s::jsonb)", (batch("A", ids=[taken]),))
        await conn.execute("SELECT cairn_append('old-1', 1, %s::jsonb)", (batch("B"),))
        clash = batch("X", "Y", ids=[str(uuid.uuid4()), taken])
        with pytest.raises(psycopg.errors.UniqueViolation):
            await conn.execute("SELECT cairn_append('x-1', -1, %s::jsonb)", (clash,))
        await conn.execute("SELECT cairn_append('old-2', 0, %s::jsonb)", (batch("C"),))
    finally:
        await conn.close()


async def test_events_written_before_0008_read_in_order_past_their_hole(pg_url: str) -> None:
    await write_with_0007(pg_url)
    async with cairn.open_store(pg_url) as store:
        events = await read_all_when(store, [1, 2, 5])
        assert [(e.position, e.stream_id, e.version, e.type) for e in events] == [
            (1, "old-1", 1, "A"),
            (2, "old-1", 2, "B"),
            (5, "old-2", 1, "C"),
        ]


async def test_streams_written_before_0008_go_on_at_their_version(pg_url: str) -> None:
    await write_with_0007(pg_url)
    async with cairn.open_store(pg_url) as store:
        assert await store.stream_version("old-1") == 2
        assert (await store.stream_info("old-1")).version == 2
        result = await store.append("old-1", [NewEvent("D", {})], expected_version=2)
        assert (result.version, result.position) == (3, 6)
        events = await read_all_when(store, [1, 2, 5, 6])
        assert [e.type for e in events] == ["A", "B", "C", "D"]
