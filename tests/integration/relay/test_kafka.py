"""SPEC §18, the Kafka relay target, against a real Kafka-protocol broker (Tansu, private per
test): every event reaches the topic as a CloudEvent keyed by its stream id with the headers,
in stream order, also across a broker stall; the checkpoint never passes an unacknowledged
event; and the inbound consumer drops duplicates through the inbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from relay_helpers import append_orders, make_relay, running, wait_for

import cairn
from cairn.relay.inbox import Inbox
from cairn.relay.kafka_consumer import KafkaInboxConsumer
from cairn.sql.database import Tx
from cairn.store.base import EventStore, RecordedEvent
from tansu_broker import Tansu, start_tansu, stop_tansu, topic_records

TOPIC = "cairn.events"


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Tansu]:
    broker = start_tansu(tmp_path / "tansu.log")
    yield broker
    stop_tansu(broker)


def headers_of(record: Any) -> dict[str, bytes]:
    return {name: bytes(value) for name, value in record.headers}


def first_copies(records: list[Any]) -> list[dict[str, Any]]:
    """The CloudEvents in topic order, each ce_id's first copy only (what a de-duplicating
    consumer sees)."""
    seen: set[bytes] = set()
    out = []
    for record in records:
        ce_id = headers_of(record)["ce_id"]
        if ce_id not in seen:
            seen.add(ce_id)
            out.append(json.loads(record.value))
    return out


async def test_every_event_reaches_the_topic_as_a_cloudevent_with_key_and_headers_in_order(
    tansu: Tansu,
) -> None:
    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", tansu.url, TOPIC)
        async with running(relay):
            last = await append_orders(store, 5)
            await relay.wait_until(last)
        stored = await store.read_all()
    records = await topic_records(tansu.bootstrap, TOPIC)
    assert len(records) == len(stored) == 15
    for record, event in zip(records, stored, strict=True):
        assert record.key == event.stream_id.encode()
        headers = headers_of(record)
        assert headers["content-type"] == b"application/cloudevents+json"
        assert headers["ce_id"] == str(event.id).encode()
        assert headers["ce_type"] == event.type.encode()
        ce = json.loads(record.value)
        assert (ce["specversion"], ce["id"], ce["type"]) == ("1.0", str(event.id), event.type)
        assert (ce["subject"], ce["position"], ce["streamversion"]) == (
            event.stream_id,
            event.position,
            event.version,
        )
        assert ce["data"] == event.data


async def test_the_traceparent_of_an_event_travels_as_a_header(tansu: Tansu) -> None:
    from cairn import NewEvent

    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", tansu.url, TOPIC)
        async with running(relay):
            result = await store.append(
                "order-1", [NewEvent("OrderCreated", {}, {"traceparent": traceparent})]
            )
            await relay.wait_until(result.position)
    (record,) = await topic_records(tansu.bootstrap, TOPIC)
    assert headers_of(record)["traceparent"] == traceparent.encode()


async def test_the_topic_is_created_with_the_partitions_the_url_asks_for(tansu: Tansu) -> None:
    from aiokafka import AIOKafkaConsumer

    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", f"{tansu.url}?partitions=3", TOPIC)
        async with running(relay):
            last = await append_orders(store, 6)
            await relay.wait_until(last)
    consumer = AIOKafkaConsumer(bootstrap_servers=tansu.bootstrap)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster metadata
        assert consumer.partitions_for_topic(TOPIC) == {0, 1, 2}
    finally:
        await consumer.stop()
    records = await topic_records(tansu.bootstrap, TOPIC)
    by_stream: dict[bytes, list[int]] = {}
    for record in records:
        by_stream.setdefault(record.key, []).append(json.loads(record.value)["streamversion"])
    assert len(by_stream) == 6
    assert all(versions == [1, 2, 3] for versions in by_stream.values())


async def checkpoint(store: EventStore, relay: Any) -> int:
    return int(await relay.checkpoints.load(relay.name))


async def test_a_broker_stall_loses_nothing_keeps_order_and_holds_the_checkpoint(
    tansu: Tansu, sqlite_url: str
) -> None:
    async with cairn.open_store(sqlite_url) as store:
        relay = make_relay(store, sqlite_url, tansu.url, TOPIC, backoff_max=0.3)
        relay.publisher.confirm_timeout = 1.5
        async with running(relay):
            before = await append_orders(store, 5, prefix="order")
            await relay.wait_until(before)

            tansu.stall()
            try:
                last = await append_orders(store, 10, prefix="order2")
                await wait_for(lambda: relay.state == "backing_off", what="relay backing off")
                # Nothing after ``before`` was acknowledged: the checkpoint stays there.
                assert relay.position == before
                assert await checkpoint(store, relay) == before
                assert (await relay.status()).lag_events == last - before
            finally:
                tansu.resume()
            await relay.wait_until(last, timeout=60)
            assert await checkpoint(store, relay) == last
        stored: list[RecordedEvent] = await store.read_all()
    events = first_copies(await topic_records(tansu.bootstrap, TOPIC))
    assert [e["id"] for e in events] == [str(e.id) for e in stored]
    assert [e["position"] for e in events] == list(range(1, last + 1))


async def test_after_an_outage_the_backlog_reaches_the_broker_that_came_back(
    tansu: Tansu, tmp_path: Path
) -> None:
    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", tansu.url, TOPIC, backoff_max=0.3)
        relay.publisher.confirm_timeout = 1.5
        async with running(relay):
            before = await append_orders(store, 2, prefix="order")
            await relay.wait_until(before)
            stop_tansu(tansu)  # gone: connections refused (its memory storage goes with it)
            last = await append_orders(store, 4, prefix="order2")
            await wait_for(lambda: relay.state == "backing_off", what="relay backing off")
            assert relay.position == before
            tansu.process = start_tansu(tmp_path / "tansu.log", port=tansu.port).process
            await relay.wait_until(last, timeout=60)
            assert (await relay.status()).state == "running"
    events = first_copies(await topic_records(tansu.bootstrap, TOPIC))
    assert [e["position"] for e in events] == list(range(before + 1, last + 1))


async def test_the_inbound_consumer_applies_each_cloudevent_once(
    tansu: Tansu, sqlite_url: str
) -> None:
    from aiokafka import AIOKafkaProducer

    async with cairn.open_store("memory://") as store:
        relay = make_relay(store, "memory://", tansu.url, TOPIC)
        async with running(relay):
            last = await append_orders(store, 4)
            await relay.wait_until(last)
    # The relay re-publishes an unconfirmed tail: copies of records already on the topic.
    producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap, acks="all")
    await producer.start()
    try:
        for record in (await topic_records(tansu.bootstrap, TOPIC))[:5]:
            await producer.send_and_wait(
                TOPIC, value=record.value, key=record.key, headers=list(record.headers)
            )
    finally:
        await producer.stop()

    seen: list[str] = []

    async def handle(event: dict[str, Any], tx: Tx) -> None:
        seen.append(event["id"])

    async with await Inbox.open(sqlite_url, "order-counter") as inbox:
        async with KafkaInboxConsumer(tansu.url, TOPIC, inbox, handle) as consumer:
            done = await consumer.run(idle=2.0)
        assert (done.applied, done.duplicates) == (12, 5)
        assert len(seen) == len(set(seen)) == 12
        # Offsets were committed after handling: the group starts after them next time.
        async with KafkaInboxConsumer(tansu.url, TOPIC, inbox, handle) as again:
            assert (await again.run(idle=2.0)).applied == 0
