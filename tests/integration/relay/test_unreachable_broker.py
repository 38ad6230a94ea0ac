"""SPEC §12, an unreachable broker: the relay shows ``backing_off`` with its last error within
5 s (not after the client library's own two minutes of retries), logs one line per state change
rather than one per retry, its breaker opens, and it recovers by itself when the broker returns.
Against closed ports and against the real NATS and RabbitMQ behind a forwarder we switch on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
from relay_helpers import (
    PrivateServer,
    append_orders,
    free_port,
    jetstream_count,
    make_relay,
    running,
    wait_for,
)

import cairn
from cairn.relay import Relay

DETECTION_SECONDS = 5.0


class Forwarder:
    """A TCP port that forwards to a real broker only while switched on: a broker that goes
    away and comes back, without touching the shared service."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()


@contextlib.asynccontextmanager
async def forwarder_to(port: int) -> AsyncIterator[Forwarder]:
    forwarder = Forwarder(port)
    try:
        yield forwarder
    finally:
        await forwarder.stop()


@pytest.mark.parametrize("scheme", ["nats", "amqp"])
async def test_a_broker_on_a_closed_port_shows_backing_off_with_its_error_within_5_s(
    scheme: str,
) -> None:
    url = f"{scheme}://guest:guest@127.0.0.1:{free_port()}/"
    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", url, "cairn.events")
        async with running(relay):
            started = time.monotonic()
            await wait_for(
                lambda: relay.state == "backing_off",
                timeout=DETECTION_SECONDS,
                what="relay backing off",
            )
            assert time.monotonic() - started < DETECTION_SECONDS
            status = await relay.status()
            assert status.last_error
            assert "refused" in status.last_error.lower() or "connect" in status.last_error.lower()


async def test_the_breaker_opens_and_the_relay_fails_fast_while_the_broker_stays_away() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", url, "cairn.events", backoff_max=0.1)
        async with running(relay):
            await wait_for(lambda: relay.breaker.status().state == "open", what="breaker open")
            calls = relay.breaker.status().failures
            await wait_for(
                lambda: _last_error_is(relay, "CircuitOpenError"),
                what="a call refused by the open breaker",
            )
            assert relay.state == "backing_off"
            assert relay.breaker.status().failures == calls


async def _last_error_is(relay: Relay, kind: str) -> bool:
    return ((await relay.status()).last_error or "").startswith(kind)


async def test_the_relay_logs_one_line_per_state_change_not_per_retry() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", url, "cairn.events", backoff_max=0.05)
        with structlog.testing.capture_logs() as logs:
            async with running(relay):
                await wait_for(lambda: relay.breaker.status().failures >= 3, what="3 failures")
    lines = [e["event"] % tuple(e.get("positional_args", ())) for e in logs]
    changes = [line.split(": ")[1] for line in lines if line.startswith("relay") and "->" in line]
    assert changes == ["stopped -> backing_off", "backing_off -> stopped"]


@pytest.fixture
def stopped_nats(tmp_path: Path) -> PrivateServer:
    port = free_port()
    argv = [
        "/usr/sbin/nats-server",
        "-js",
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-sd",
        str(tmp_path),
    ]
    return PrivateServer(argv, port)


async def test_the_relay_recovers_by_itself_when_nats_comes_up(stopped_nats: PrivateServer) -> None:
    url = f"nats://127.0.0.1:{stopped_nats.port}"
    try:
        async with cairn.open_store("memory://") as store:
            last = await append_orders(store, 5)
            relay = make_relay(store, "memory://", url, "cairn.events")
            async with running(relay):
                await wait_for(lambda: relay.state == "backing_off", what="relay backing off")
                stopped_nats.start()
                await relay.wait_until(last, timeout=30)
                assert (await relay.status()).state == "running"
        assert await jetstream_count(url, "cairn.events") == last
    finally:
        stopped_nats.stop()


async def test_the_relay_recovers_by_itself_when_rabbitmq_comes_back(topic: str) -> None:
    async with forwarder_to(5672) as broker, cairn.open_store("memory://") as store:
        last = await append_orders(store, 5)
        url = f"amqp://guest:guest@127.0.0.1:{broker.port}/"
        relay = make_relay(store, "memory://", url, topic)
        async with running(relay):
            await wait_for(lambda: relay.state == "backing_off", what="relay backing off")
            await broker.start()
            await relay.wait_until(last, timeout=30)
            assert (await relay.status()).state == "running"
