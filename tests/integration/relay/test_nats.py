"""Relay → NATS JetStream (SPEC §6), against the running server."""

from __future__ import annotations

import json

import nats
from nats.aio.msg import Msg
from relay_helpers import append_orders, jetstream_messages, make_relay, running, wait_for

import cairn
from cairn.relay import jetstream_stream_name
from cairn.store.base import NewEvent


async def test_events_reach_jetstream_in_position_order_with_spec_subjects(
    nats_url: str, nats_topic: str
) -> None:
    async with cairn.open_store("memory://") as store:
        last = await append_orders(store, 20)
        async with running(make_relay(store, "memory://", nats_url, nats_topic)) as relay:
            await relay.wait_until(last)
        messages = await jetstream_messages(nats_url, nats_topic)
        events = await store.read_all(limit=1000)

    assert [ce["position"] for _, _, ce in messages] == list(range(1, last + 1))
    assert [subject for subject, _, _ in messages] == [
        f"{nats_topic}.order.{e.type}" for e in events
    ]
    assert [headers["Nats-Msg-Id"] for _, headers, _ in messages] == [str(e.id) for e in events]


async def test_relay_creates_the_jetstream_stream_with_spec_name_subjects_and_file_storage(
    nats_url: str, nats_topic: str
) -> None:
    async with cairn.open_store("memory://") as store:
        last = await append_orders(store, 1)
        async with running(make_relay(store, "memory://", nats_url, nats_topic)) as relay:
            await relay.wait_until(last)

    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(jetstream_stream_name(nats_topic))
    finally:
        await nc.close()
    assert info.config.name == nats_topic.upper().replace(".", "_")
    assert info.config.subjects == [f"{nats_topic}.>"]
    assert info.config.storage == "file"
    assert info.config.duplicate_window == 120


async def test_traceparent_travels_from_metadata_into_nats_headers(
    nats_url: str, nats_topic: str
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with cairn.open_store("memory://") as store:
        r = await store.append(
            "order-1", [NewEvent("OrderCreated", {"order_id": "1"}, {"traceparent": traceparent})]
        )
        async with running(make_relay(store, "memory://", nats_url, nats_topic)) as relay:
            await relay.wait_until(r.position)
    [(_, headers, ce)] = await jetstream_messages(nats_url, nats_topic)
    assert headers["traceparent"] == traceparent
    assert ce["traceparent"] == traceparent


async def test_a_live_subscriber_receives_every_event_appended_while_the_relay_runs(
    nats_url: str, nats_topic: str
) -> None:
    received: list[int] = []
    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", nats_url, nats_topic)
        async with running(relay):
            await relay.wait_until(0)
            nc = await nats.connect(nats_url)
            try:
                # Ordered push consumer over the whole stream, created once the relay made it.
                await append_orders(store, 1, prefix="warmup")
                await relay.wait_until(3)

                async def on_message(msg: Msg) -> None:
                    received.append(json.loads(msg.data)["position"])

                sub = await nc.jetstream().subscribe(
                    f"{nats_topic}.order.>", cb=on_message, ordered_consumer=True
                )
                last = await append_orders(store, 10)
                await relay.wait_until(last)
                await wait_for(lambda: len(received) >= 30, what="30 live messages")
                await sub.unsubscribe()
            finally:
                await nc.close()
    assert received == list(range(4, last + 1))
