"""A broker outage only delays publishing (SPEC §6): private broker processes are stopped while
events are appended, then started again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from relay_helpers import (
    PrivateServer,
    append_orders,
    free_port,
    jetstream_messages,
    make_relay,
    redis_entries,
    running,
    wait_for,
)

import cairn


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateServer]:
    port = free_port()
    server = PrivateServer(
        ["/usr/sbin/nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path)],
        port,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateServer]:
    port = free_port()
    # --save "" as asked, but with an append-only file so entries from before the outage are
    # still there afterwards and the test can check the whole log arrived.
    server = PrivateServer(
        [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--dir", str(tmp_path),
        ],
        port,
    )  # fmt: skip
    server.start()
    yield server
    server.stop()


async def test_jetstream_gets_every_event_exactly_once_after_an_outage(
    private_nats: PrivateServer,
) -> None:
    url = f"nats://127.0.0.1:{private_nats.port}"
    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", url, "cairn.events", backoff_max=0.3)
        async with running(relay):
            before = await append_orders(store, 10, prefix="order")
            await relay.wait_until(before)

            private_nats.stop()
            last = await append_orders(store, 20, prefix="order2")
            await wait_for(lambda: relay.state == "backing_off", what="relay backing off")
            status = await relay.status()
            assert status.lag_events == last - before
            assert status.last_error

            private_nats.start()
            await relay.wait_until(last, timeout=60)
            assert (await relay.status()).state == "running"

    positions = [ce["position"] for _, _, ce in await jetstream_messages(url, "cairn.events")]
    assert positions == list(range(1, last + 1))


async def test_redis_stream_gets_every_event_within_60_s_of_its_return_with_default_backoff(
    private_redis: PrivateServer,
) -> None:
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", url, "cairn.events", backoff_max=5.0)
        async with running(relay):
            before = await append_orders(store, 10, prefix="order")
            await relay.wait_until(before)

            private_redis.stop()
            last = await append_orders(store, 20, prefix="order2")
            await wait_for(lambda: relay.state == "backing_off", what="relay backing off")
            await asyncio.sleep(2)  # long enough for the backoff to grow

            private_redis.start()
            returned = time.monotonic()
            await relay.wait_until(last, timeout=60)
            # One capped backoff step (5 s) and the publishing: far inside SPEC's 60 s.
            assert time.monotonic() - returned < 15

    positions = [ce["position"] for _, ce in await redis_entries(url, "cairn.events")]
    # At least once, in order: every position, first occurrences ascending.
    assert sorted(set(positions)) == list(range(1, last + 1))
    first_seen = list(dict.fromkeys(positions))
    assert first_seen == list(range(1, last + 1))


async def test_jetstream_gets_every_event_exactly_once_when_the_server_stops_mid_backlog(
    private_nats: PrivateServer,
) -> None:
    url = f"nats://127.0.0.1:{private_nats.port}"
    async with cairn.open_store("memory://") as store:
        last = await append_orders(store, 3000)  # 9,000 events: many batches in flight
        relay = make_relay(store, "memory://", url, "cairn.events", backoff_max=0.3)
        async with running(relay):
            await wait_for(lambda: relay.position > 0, what="a first confirmed batch")
            private_nats.stop()
            assert relay.position < last, "the backlog was gone before the outage began"
            await wait_for(lambda: relay.state == "backing_off", what="relay backing off")
            private_nats.start()
            await relay.wait_until(last, timeout=60)

    positions = [ce["position"] for _, _, ce in await jetstream_messages(url, "cairn.events")]
    assert positions == list(range(1, last + 1))
