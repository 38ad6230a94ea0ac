"""examples/kafka_order_counter.py: a consumer group member on the relay's Kafka topic counts
every order event once, even when records arrive twice or the group starts over."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from relay_helpers import append_orders, make_relay, running

import cairn
from cairn.store.base import NewEvent
from tansu_broker import Tansu, start_tansu, stop_tansu, topic_records

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "kafka_order_counter.py"
TOPIC = "cairn.events"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kafka_order_counter", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kafka_order_counter"] = module
    spec.loader.exec_module(module)
    return module


kafka_order_counter = _load_example()

EXPECTED = {"OrderCreated": 3, "ItemAdded": 3, "OrderPlaced": 3}


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Tansu]:
    broker = start_tansu(tmp_path / "tansu.log")
    yield broker
    stop_tansu(broker)


async def test_the_example_counts_each_order_event_once_though_records_repeat(
    tansu: Tansu, sqlite_url: str
) -> None:
    from aiokafka import AIOKafkaProducer

    async with cairn.open_store("memory://") as store:
        await append_orders(store, 3)
        last = await store.append("inventory-MUG-1", [NewEvent("StockReplenished", {})])
        async with running(make_relay(store, "memory://", tansu.url, TOPIC)) as relay:
            await relay.wait_until(last.position)
    # Copies of the first four records, as a re-published unconfirmed tail would add.
    producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap, acks="all")
    await producer.start()
    try:
        for record in (await topic_records(tansu.bootstrap, TOPIC))[:4]:
            await producer.send_and_wait(
                TOPIC, record.value, key=record.key, headers=list(record.headers)
            )
    finally:
        await producer.stop()

    async with await kafka_order_counter.open_inbox(sqlite_url) as inbox:
        done = await kafka_order_counter.consume(tansu.url, TOPIC, inbox, idle=2.0)
        assert (done.applied, done.duplicates) == (10, 4)
        assert await kafka_order_counter.counts(inbox) == EXPECTED
        # The offsets were committed after the counts: a restarted member gets nothing again.
        again = await kafka_order_counter.consume(tansu.url, TOPIC, inbox, idle=2.0)
        assert (again.applied, again.duplicates) == (0, 0)
        assert await kafka_order_counter.counts(inbox) == EXPECTED
