"""examples/order_counter.py: a real consumer of the relay's messages, idempotent via the inbox."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import aio_pika
from relay_helpers import append_orders, make_relay, running

import cairn
from cairn.store.base import NewEvent

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "order_counter.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("order_counter", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["order_counter"] = module
    spec.loader.exec_module(module)
    return module


order_counter = _load_example()

EXPECTED = {"OrderCreated": 5, "ItemAdded": 5, "OrderPlaced": 5}


async def _publish_orders_and_a_non_order_event(
    store: cairn.EventStore, database_url: str, broker_url: str, topic: str
) -> None:
    await append_orders(store, 5)
    result = await store.append("inventory-MUG-1", [NewEvent("StockReplenished", {"sku": "MUG-1"})])
    async with running(make_relay(store, database_url, broker_url, topic)) as relay:
        await relay.wait_until(result.position)


async def test_counter_counts_every_order_event_from_jetstream_once_even_when_redelivered(
    nats_url: str, nats_topic: str, sqlite_url: str
) -> None:
    async with cairn.open_store("memory://") as store:
        await _publish_orders_and_a_non_order_event(store, "memory://", nats_url, nats_topic)

    counter = await order_counter.OrderCounter.open(sqlite_url)
    try:
        handled = await order_counter.consume_nats(nats_url, nats_topic, counter, idle=0.5)
        assert handled == 15
        assert await counter.counts() == EXPECTED
        # A second durable consumer gets every message again: a full redelivery.
        again = await order_counter.consume_nats(
            nats_url, nats_topic, counter, name="order-counter-2", idle=0.5
        )
        assert again == 15
        assert await counter.counts() == EXPECTED
    finally:
        await counter.close()


async def test_counter_counts_every_order_event_from_redis_once_even_when_redelivered(
    redis_url: str, redis_topic: str, pg_url: str
) -> None:
    async with cairn.open_store("memory://") as store:
        await _publish_orders_and_a_non_order_event(store, "memory://", redis_url, redis_topic)

    counter = await order_counter.OrderCounter.open(pg_url)
    try:
        assert await order_counter.consume_redis(redis_url, redis_topic, counter, idle=0.3) == 15
        assert await counter.counts() == EXPECTED
        again = await order_counter.consume_redis(
            redis_url, redis_topic, counter, name="order-counter-2", idle=0.3
        )
        assert again == 15
        assert await counter.counts() == EXPECTED
    finally:
        await counter.close()


async def test_counter_counts_every_order_event_from_rabbitmq(
    amqp_url: str, topic: str, sqlite_url: str
) -> None:
    queue = f"order-counter-{topic}"
    # Bind the counter's queue first (a RabbitMQ exchange keeps nothing for absent queues).
    counter = await order_counter.OrderCounter.open(sqlite_url)
    try:
        assert await order_counter.consume_amqp(amqp_url, topic, counter, name=queue, idle=0.1) == 0
        async with cairn.open_store("memory://") as store:
            await _publish_orders_and_a_non_order_event(store, "memory://", amqp_url, topic)
        assert (
            await order_counter.consume_amqp(amqp_url, topic, counter, name=queue, idle=0.5) == 15
        )
        assert await counter.counts() == EXPECTED
    finally:
        await counter.close()
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.exchange_delete(topic)
