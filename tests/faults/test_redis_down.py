"""The order-view cache (Redis, ``CAIRN_REDIS_URL``) going away under load, or never there
(SPEC §12): every answer stays correct and nothing fails; health says the cache is down
(``degraded``, still 200: only the event store makes the service unhealthy).

The Redis here is this test's own ``redis-server`` on a free port (never the shared one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_server import ADMIN, CUSTOMER_1, Server, free_port
from scenario import (
    ORDER,
    Load,
    OwnRedis,
    Settled,
    Target,
    problems,
    report,
    settled,
    setup_catalogue,
    under_load,
)

pytestmark = pytest.mark.faults
CLIENTS = 6


@pytest.fixture(scope="module")
def redis_run(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[Load, Settled]]:
    pg_url = request.getfixturevalue("module_pg_url")
    workdir = tmp_path_factory.mktemp("redis")
    redis = OwnRedis(workdir)
    server = Server(pg_url, workdir, CAIRN_REDIS_URL=redis.url)
    try:
        asyncio.run(setup_catalogue(server.url))

        async def stop_redis() -> None:
            await asyncio.to_thread(redis.stop)
            await asyncio.sleep(4.0)

        load = asyncio.run(under_load(Target(server.url), stop_redis, clients=CLIENTS))
        after = asyncio.run(settled(server.url, load, since=load.fault_ended, timeout=30.0))
        print(f"\n{report('Redis (order-view cache) stopped', CLIENTS, load, after).table()}")
        yield load, after
    finally:
        redis.stop()
        assert server.stop() == 0, server.log()


def test_with_the_cache_gone_no_request_fails(redis_run: tuple[Load, Settled]) -> None:
    load, _ = redis_run
    assert problems(load) == []
    assert not [s for s in load.statuses() if s is None or s >= 500]


def test_with_the_cache_gone_every_order_reads_back_settled(
    redis_run: tuple[Load, Settled],
) -> None:
    _, after = redis_run
    assert (after.lost, after.behind) == ([], [])


def test_health_says_the_cache_is_down_and_the_service_degraded_not_unavailable(
    redis_run: tuple[Load, Settled],
) -> None:
    _, after = redis_run
    status, body = after.health
    assert status == 200
    assert body["status"] == "degraded"
    assert body["components"]["redis"]["status"] == "down"


def test_a_cache_that_was_never_reachable_changes_no_answer(
    module_pg_url: str, tmp_path: Path
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    server = Server(module_pg_url, tmp_path, CAIRN_REDIS_URL=closed)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            created = client.post("/api/v1/orders", json=ORDER, headers=CUSTOMER_1)
            assert created.status_code == 201, created.text
            order_id = created.json()["order_id"]
            deadline = time.monotonic() + 10
            while (
                read := client.get(f"/api/v1/orders/{order_id}", headers=ADMIN)
            ).status_code != 200:
                assert time.monotonic() < deadline, read.text
                time.sleep(0.1)
            assert read.json()["status"] == "draft"
            health = client.get("/api/v1/admin/health", headers=ADMIN)
        assert health.status_code == 200
        assert health.json()["components"]["redis"]["status"] == "down"
    finally:
        assert server.stop() == 0, server.log()
