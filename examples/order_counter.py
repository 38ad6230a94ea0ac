"""Example consumer: counts the order events cairn publishes, once per message, in a table.

The relay delivers at least once; this consumer records each message id in its inbox in the same
transaction as the count, so a redelivered message changes nothing. It acks only after commit.

    python examples/order_counter.py nats://127.0.0.1:4222 sqlite:///counter.db
    python examples/order_counter.py amqp://guest:guest@127.0.0.1:5672/ postgresql://…/db
    python examples/order_counter.py redis://127.0.0.1:6379/0 sqlite:///counter.db

Optional third argument: the topic (default ``cairn.events``). Table:
``order_event_counts(type, count)``; e.g. the number of ``OrderPlaced`` is the number of orders
placed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from cairn.relay import jetstream_stream_name
from cairn.relay.inbox import Inbox, InboxTransaction

CONSUMER = "order-counter"


class OrderCounter:
    """The effect: one more of this event type."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    @classmethod
    async def open(cls, database_url: str) -> OrderCounter:
        inbox = await Inbox.open(database_url, CONSUMER)
        async with inbox.transaction() as tx:
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS order_event_counts "
                "(type TEXT PRIMARY KEY, count INTEGER NOT NULL)"
            )
        return cls(inbox)

    async def handle(self, message_id: str, body: bytes) -> bool:
        """Count one CloudEvent; False (and no change) if this message was counted before."""
        event = json.loads(body)

        async def count(tx: InboxTransaction) -> None:
            await tx.execute(
                "INSERT INTO order_event_counts (type, count) VALUES (?, 1) "
                "ON CONFLICT (type) DO UPDATE SET count = order_event_counts.count + 1",
                (event["type"],),
            )

        return await self.inbox.process(message_id, count)

    async def counts(self) -> dict[str, int]:
        async with self.inbox.transaction() as tx:
            rows = await tx.fetchall("SELECT type, count FROM order_event_counts")
        return {str(row["type"]): int(row["count"]) for row in rows}

    async def close(self) -> None:
        await self.inbox.close()


async def consume_nats(
    url: str, topic: str, counter: OrderCounter, *, name: str = CONSUMER, idle: float | None
) -> int:
    """Pull order events from JetStream; ack each after its commit. Returns messages handled.
    With ``idle`` set, stop after that many seconds without a message."""
    import nats

    nc = await nats.connect(url)
    handled = 0
    try:
        sub = await nc.jetstream().pull_subscribe(
            f"{topic}.order.>", durable=name, stream=jetstream_stream_name(topic)
        )
        while True:
            try:
                batch = await sub.fetch(100, timeout=idle or 5.0)
            except TimeoutError:  # nats.errors.TimeoutError, or asyncio's from a late 408
                if idle is not None:
                    return handled
                continue
            for msg in batch:
                message_id = (msg.headers or {}).get("Nats-Msg-Id") or json.loads(msg.data)["id"]
                await counter.handle(message_id, msg.data)
                await msg.ack()
                handled += 1
    finally:
        await nc.close()


async def consume_amqp(
    url: str, topic: str, counter: OrderCounter, *, name: str = CONSUMER, idle: float | None
) -> int:
    """Consume order events from a durable queue bound to the topic exchange with ``order.#``."""
    import aio_pika

    connection = await aio_pika.connect(url)
    handled = 0
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        exchange = await channel.declare_exchange(
            topic, aio_pika.ExchangeType.TOPIC, durable=True, auto_delete=False
        )
        queue = await channel.declare_queue(name, durable=True)
        await queue.bind(exchange, routing_key="order.#")
        async with queue.iterator() as messages:
            while True:
                try:
                    message = await asyncio.wait_for(anext(messages), timeout=idle)
                except TimeoutError:
                    return handled
                assert message.message_id is not None
                await counter.handle(message.message_id, message.body)
                await message.ack()
                handled += 1
    finally:
        await connection.close()


async def consume_redis(
    url: str, topic: str, counter: OrderCounter, *, name: str = CONSUMER, idle: float | None
) -> int:
    """Read the Redis stream through a consumer group; XACK after each commit."""
    import redis.asyncio as aioredis
    from redis.exceptions import ResponseError

    client: Any = aioredis.Redis.from_url(url)  # (the installed stubs predate redis 8)
    handled = 0
    try:
        try:
            await client.xgroup_create(topic, name, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        block_ms = int((idle or 5.0) * 1000)
        while True:
            # "0" first re-reads what this consumer was given but never acked (a crash), then ">"
            # asks for new entries.
            for cursor in ("0", ">"):
                reply = await client.xreadgroup(name, name, {topic: cursor}, 100, block_ms)
                entries = reply[0][1] if reply else []
                for entry_id, fields in entries:
                    event = json.loads(fields[b"event"])
                    if event["subject"].split("-", 1)[0] == "order":
                        await counter.handle(fields[b"id"].decode(), fields[b"event"])
                        handled += 1
                    await client.xack(topic, name, entry_id)
                if cursor == ">" and not entries and idle is not None:
                    return handled
    finally:
        await client.aclose()


async def main(argv: list[str]) -> None:
    if len(argv) < 2:
        print(__doc__)
        raise SystemExit(2)
    broker_url, database_url = argv[0], argv[1]
    topic = argv[2] if len(argv) > 2 else "cairn.events"
    counter = await OrderCounter.open(database_url)
    consume = {"nats": consume_nats, "amqp": consume_amqp, "redis": consume_redis}[
        broker_url.split("://", 1)[0]
    ]
    try:
        await consume(broker_url, topic, counter, idle=None)
    finally:
        await counter.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
