"""Relay → RabbitMQ topic exchange (SPEC §6), against the running broker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from relay_helpers import append_orders, make_relay, running, wait_for

import cairn
from cairn.store.base import NewEvent


@pytest.fixture
async def bound_queue(
    amqp_url: str, topic: str
) -> AsyncIterator[tuple[list[aio_pika.abc.AbstractIncomingMessage], str]]:
    """A queue bound to ``<topic>`` with ``#`` before anything is published; collects messages.
    The exchange is deleted afterwards."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        topic, aio_pika.ExchangeType.TOPIC, durable=True, auto_delete=False
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="#")
    received: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        received.append(message)
        await message.ack()

    await queue.consume(collect)
    try:
        yield received, topic
    finally:
        await exchange.delete()
        await connection.close()


async def test_events_reach_the_topic_exchange_in_order_with_spec_routing_keys(
    amqp_url: str, bound_queue: tuple[list[Any], str]
) -> None:
    received, topic = bound_queue
    async with cairn.open_store("memory://") as store:
        last = await append_orders(store, 400)  # 1,200 events: more than one relay batch
        async with running(make_relay(store, "memory://", amqp_url, topic)) as relay:
            await relay.wait_until(last)
            await wait_for(lambda: len(received) >= last, what=f"{last} AMQP messages")
        events = await store.read_all(limit=10_000)

    bodies = [json.loads(m.body) for m in received]
    assert [b["position"] for b in bodies] == list(range(1, last + 1))
    assert [m.routing_key for m in received] == [f"order.{e.type}" for e in events]
    assert [m.message_id for m in received] == [str(e.id) for e in events]
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in received)
    assert {b["source"] for b in bodies} == {"/cairn"}


async def test_relay_declares_a_durable_non_auto_delete_topic_exchange_without_arguments(
    amqp_url: str, topic: str
) -> None:
    async with cairn.open_store("memory://") as store:
        last = await append_orders(store, 1)
        async with running(make_relay(store, "memory://", amqp_url, topic)) as relay:
            await relay.wait_until(last)
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        # A passive declare succeeds only if the exchange exists; re-declaring with exactly
        # SPEC's properties succeeds only if they match (else PRECONDITION_FAILED).
        await channel.declare_exchange(topic, passive=True)
        exchange = await channel.declare_exchange(
            topic, aio_pika.ExchangeType.TOPIC, durable=True, auto_delete=False
        )
        await exchange.delete()
    finally:
        await connection.close()


async def test_traceparent_travels_from_metadata_into_amqp_headers(
    amqp_url: str, bound_queue: tuple[list[Any], str]
) -> None:
    received, topic = bound_queue
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with cairn.open_store("memory://") as store:
        r = await store.append(
            "order-1", [NewEvent("OrderCreated", {"order_id": "1"}, {"traceparent": traceparent})]
        )
        async with running(make_relay(store, "memory://", amqp_url, topic)) as relay:
            await relay.wait_until(r.position)
            await wait_for(lambda: len(received) == 1, what="one AMQP message")
    assert received[0].headers["traceparent"] == traceparent
