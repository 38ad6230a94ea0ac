"""Broker-side readers and relay runners shared by the relay tests (real brokers only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from cairn.relay import Relay, build_relay, jetstream_stream_name
from cairn.settings import Settings
from cairn.store.base import EventStore, NewEvent


def make_relay(
    store: EventStore, database_url: str, broker_url: str, topic: str, **options: Any
) -> Relay:
    settings = Settings(database_url=database_url, broker_url=broker_url, broker_topic=topic)
    options.setdefault("backoff_max", 0.5)
    relay = build_relay(settings, store, **options)
    assert relay is not None
    return relay


@contextlib.asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[Relay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay.close()


async def append_orders(store: EventStore, orders: int, prefix: str = "order") -> int:
    """A small order flow per order (3 events each); returns the last position."""
    position = 0
    for n in range(orders):
        stream = f"{prefix}-{n:04d}"
        result = await store.append(
            stream,
            [
                NewEvent("OrderCreated", {"order_id": str(n)}, {"correlation_id": f"c{n}"}),
                NewEvent("ItemAdded", {"order_id": str(n), "sku": "MUG-1", "quantity": 1}),
                NewEvent("OrderPlaced", {"order_id": str(n)}),
            ],
            expected_version=0,
        )
        position = result.position
    return position


async def wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


# --- NATS ------------------------------------------------------------------------------------


async def jetstream_messages(
    nats_url: str, topic: str
) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """Every message stored in the topic's JetStream stream, in stream order:
    (subject, headers, CloudEvent)."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        name = jetstream_stream_name(topic)
        total = (await js.stream_info(name)).state.messages
        sub = await js.pull_subscribe(
            f"{topic}.>", stream=name, config=ConsumerConfig(ack_policy=AckPolicy.NONE)
        )
        out: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        while len(out) < total:
            for msg in await sub.fetch(min(1000, total - len(out)), timeout=5):
                out.append((msg.subject, dict(msg.headers or {}), json.loads(msg.data)))
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def jetstream_count(nats_url: str, topic: str) -> int:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(nats_url)
    try:
        try:
            info = await nc.jetstream().stream_info(jetstream_stream_name(topic))
        except NotFoundError:
            return 0
        return int(info.state.messages)
    finally:
        await nc.close()


async def delete_jetstream(nats_url: str, topic: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    with contextlib.suppress(Exception):
        nc = await nats.connect(nats_url, allow_reconnect=False)
        try:
            with contextlib.suppress(NotFoundError):
                await nc.jetstream().delete_stream(jetstream_stream_name(topic))
        finally:
            await nc.close()


# --- Redis -----------------------------------------------------------------------------------


async def redis_entries(redis_url: str, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """Every entry of the Redis stream: (id field, CloudEvent)."""
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(redis_url)  # (the installed stubs predate redis 8)
    try:
        entries = await client.xrange(topic)
        return [(fields[b"id"].decode(), json.loads(fields[b"event"])) for _, fields in entries]
    finally:
        await client.aclose()


async def delete_redis_key(redis_url: str, topic: str) -> None:
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(redis_url)  # (the installed stubs predate redis 8)
    try:
        await client.delete(topic)
    finally:
        await client.aclose()


# --- private broker processes (outage tests) -------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateServer:
    """A broker process of our own, so a test can stop and restart it."""

    def __init__(self, argv: list[str], port: int) -> None:
        self.argv = argv
        self.port = port
        self.process: Any = None

    def start(self) -> None:
        import socket
        import subprocess

        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"{self.argv[0]} did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except Exception:
                self.process.kill()
                self.process.wait()
        self.process = None


# --- relay processes (crash and failover tests) ----------------------------------------------

WORKER = str(__import__("pathlib").Path(__file__).with_name("relay_worker.py"))


def start_worker(database_url: str, broker_url: str, topic: str, batch_size: int) -> Any:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, WORKER, database_url, broker_url, topic, str(batch_size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "started":
        process.kill()
        process.wait()
        raise AssertionError(f"relay worker did not start: {line!r}")
    return process


def kill_9(process: Any) -> None:
    import signal

    process.send_signal(signal.SIGKILL)
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


async def next_line(process: Any, timeout: float) -> str:
    """The next line the worker prints (read in a thread so the event loop keeps running)."""
    line: str = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout)
    return line.strip()
