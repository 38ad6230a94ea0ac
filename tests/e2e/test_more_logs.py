"""SPEC §18 end to end: ``cairn serve`` on a Redis Streams event store (read models and saga
state in ``CAIRN_READ_MODEL_URL``), and ``cairn serve`` relaying an order flow to Kafka."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from e2e_server import ADMIN, Server, wait_for
from order_flow import TRACE_ID, place_and_deliver

import cairn
from tansu_broker import Tansu, start_tansu, stop_tansu, topic_records


@pytest.fixture
def redis_store_url(redis_url: str) -> Iterator[str]:
    prefix = f"cairn-e2e-{uuid.uuid4().hex[:12]}"
    yield f"{redis_url}?volatile=ok&prefix={prefix}"
    with redis.Redis.from_url(redis_url) as client:
        doomed = list(client.scan_iter(match=f"{{{prefix}}}*", count=1000))
        if doomed:
            client.delete(*doomed)


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Tansu]:
    broker = start_tansu(tmp_path / "tansu.log")
    yield broker
    stop_tansu(broker)


def test_serve_runs_the_order_flow_on_a_redis_event_store(
    redis_store_url: str, tmp_path: Path
) -> None:
    server = Server(redis_store_url, tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            oid = place_and_deliver(client)
            inventory = wait_for(client, "/api/v1/inventory/MUG-1", lambda i: i["on_hand"] == 8)
            assert inventory["reserved"] == 0
    finally:
        assert server.stop() == 0, server.log()
    # The events are in Redis; the read models and saga state in the default read-model
    # database beside the working directory.
    assert (tmp_path / "cairn-read.db").exists()
    assert not (tmp_path / "cairn.db").exists()
    events = asyncio.run(_read_stream(redis_store_url, f"order-{oid}"))
    assert [e["type"] for e in events][-1] == "OrderDelivered"


def test_migrate_with_a_redis_store_creates_the_read_model_database(
    redis_store_url: str, tmp_path: Path
) -> None:
    import subprocess

    from e2e_server import CAIRN, cairn_env

    result = subprocess.run(
        [CAIRN, "migrate"],
        cwd=tmp_path,
        env=cairn_env(redis_store_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "applied" in result.stdout
    assert (tmp_path / "cairn-read.db").exists()


async def _read_stream(url: str, stream_id: str) -> list[dict[str, Any]]:
    async with cairn.open_store(url) as store:
        return [{"type": e.type, "data": e.data} for e in await store.read_stream(stream_id)]


def test_serve_relays_every_event_of_an_order_flow_to_kafka_in_stream_order(
    sqlite_url: str, tansu: Tansu, tmp_path: Path
) -> None:
    server = Server(sqlite_url, tmp_path, CAIRN_BROKER_URL=tansu.url)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            place_and_deliver(client)
            head = client.get("/api/v1/admin/health", headers=ADMIN).json()
            position = (
                head["components"]["relay"]["lag_events"] + head["components"]["relay"]["position"]
            )
            wait_for(
                client,
                "/api/v1/admin/health",
                lambda b: b["components"]["relay"].get("position", 0) >= position,
            )
    finally:
        assert server.stop() == 0, server.log()
    records = asyncio.run(topic_records(tansu.bootstrap, "cairn.events"))
    events = [json.loads(r.value) for r in records]
    assert [e["position"] for e in events] == list(range(1, position + 1))
    for record, event in zip(records, events, strict=True):
        assert record.key == event["subject"].encode()
        headers = dict(record.headers)
        assert headers["content-type"] == b"application/cloudevents+json"
        assert headers["ce_id"] == event["id"].encode()
        assert headers["ce_type"] == event["type"].encode()
    types = [e["type"] for e in events]
    assert {"OrderPlaced", "PaymentAuthorized", "OrderShipped", "OrderDelivered"} <= set(types)
    created = next(r for r, e in zip(records, events, strict=True) if e["type"] == "OrderCreated")
    assert TRACE_ID in dict(created.headers)["traceparent"].decode()
