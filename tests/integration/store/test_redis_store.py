"""SPEC §18, the Redis Streams store beyond the shared contract (tests/contract runs that on
Redis too): it refuses a Redis that keeps nothing on disk unless the URL accepts the loss, its
URL parameters never reach the Redis client, prefixes keep stores apart, and a subscriber waits
on a blocking read rather than polling."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import cairn
from cairn import NewEvent
from cairn.errors import StoreUnavailableError, UnsupportedStoreURL
from cairn.store.redis_store import RedisEventStore
from cairn.store.urls import redis_target


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"cairn-t-{uuid.uuid4().hex[:12]}"
    yield name
    with redis.Redis.from_url(redis_url) as client:
        doomed = list(client.scan_iter(match=f"{{{name}*", count=1000))
        if doomed:
            client.delete(*doomed)


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private redis-server of this test's, with an append-only file."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "yes", "--dir", str(tmp_path)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        process.kill()
        process.wait()


async def test_a_redis_with_an_append_only_file_is_accepted_without_volatile_ok(
    persistent_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, _ = persistent_redis
    async with cairn.open_store(url) as store:
        assert (await store.append("a-1", [NewEvent("A", {})])).position == 1


async def test_a_redis_that_goes_away_is_store_unavailable_naming_it(
    persistent_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, server = persistent_redis
    async with cairn.open_store(url) as store:
        await store.append("a-1", [NewEvent("A", {})])
        server.kill()
        server.wait()
        with pytest.raises(StoreUnavailableError, match=url.rsplit(":", 1)[1]) as lost:
            await asyncio.wait_for(store.append("a-1", [NewEvent("A", {})]), 30)
        assert lost.value.code == "store.unavailable"
        with pytest.raises(StoreUnavailableError):
            await asyncio.wait_for(store.read_all(), 30)


def test_the_test_redis_really_keeps_nothing_on_disk(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert client.config_get("save")["save"] == ""


async def test_a_redis_without_persistence_is_refused_naming_persistence_and_volatile_ok(
    redis_url: str, prefix: str
) -> None:
    with pytest.raises(StoreUnavailableError, match="persistence") as refused:
        await cairn.open_store(f"{redis_url}?prefix={prefix}")
    assert "volatile=ok" in str(refused.value)
    assert refused.value.code == "store.unavailable"
    with redis.Redis.from_url(redis_url) as client:
        assert list(client.scan_iter(match=f"{{{prefix}*")) == []


async def test_volatile_ok_accepts_the_same_redis(redis_url: str, prefix: str) -> None:
    async with cairn.open_store(f"{redis_url}?volatile=ok&prefix={prefix}") as store:
        assert isinstance(store, RedisEventStore)
        assert (await store.append("a-1", [NewEvent("A", {})])).position == 1


def test_cairn_parameters_are_removed_from_the_url_redis_connects_with() -> None:
    target = redis_target("redis://h:6380/3?volatile=ok&prefix=shop&socket_timeout=5")
    assert target.connection_url == "redis://h:6380/3?socket_timeout=5"
    assert (target.prefix, target.volatile_ok) == ("shop", True)


@pytest.mark.parametrize("query", ["volatile=yes", "prefix=", "prefix=a:b", "prefix={x}"])
def test_a_malformed_redis_store_url_is_refused(query: str) -> None:
    with pytest.raises(UnsupportedStoreURL):
        redis_target(f"redis://h/0?{query}")


async def test_an_unreachable_redis_fails_fast_naming_it() -> None:
    with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1:1"):
        await asyncio.wait_for(cairn.open_store("redis://127.0.0.1:1/0?volatile=ok"), 10)


async def test_two_prefixes_in_one_database_are_two_stores(redis_url: str, prefix: str) -> None:
    async with (
        cairn.open_store(f"{redis_url}?volatile=ok&prefix={prefix}-a") as a,
        cairn.open_store(f"{redis_url}?volatile=ok&prefix={prefix}-b") as b,
    ):
        await a.append("a-1", [NewEvent("A", {})])
        assert await b.read_all() == []
        assert (await b.append("a-1", [NewEvent("B", {})])).position == 1


async def test_a_waiting_subscriber_is_woken_by_an_append_in_another_process(
    redis_url: str, prefix: str
) -> None:
    url = f"{redis_url}?volatile=ok&prefix={prefix}"
    async with cairn.open_store(url) as reader, cairn.open_store(url) as writer:
        reader.poll_interval = 60.0  # a poll would come far too late: only XREAD BLOCK wakes it
        waiting = asyncio.create_task(reader.wait_for_append(0, timeout=30))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await writer.append("a-1", [NewEvent("A", {})])
        await asyncio.wait_for(waiting, 2)
