"""The Kafka target's URL and record headers (SPEC §18), without a broker; the broker tests are
in tests/integration/relay/test_kafka.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from cairn.errors import UnsupportedBrokerURL
from cairn.relay.brokers import publisher_for
from cairn.relay.cloudevents import OutgoingMessage
from cairn.relay.kafka import KafkaPublisher, kafka_headers
from cairn.store.base import RecordedEvent


def test_a_kafka_url_lists_its_bootstrap_brokers_with_the_default_port() -> None:
    publisher = publisher_for("kafka://a:9093,b", "cairn.events")
    assert isinstance(publisher, KafkaPublisher)
    assert publisher.bootstrap == ["a:9093", "b:9092"]
    assert publisher.describe() == "kafka://a:9093,b:9092"


def test_partitions_and_replication_come_from_the_url_and_default_to_one() -> None:
    assert isinstance(p := publisher_for("kafka://a:9092", "t"), KafkaPublisher)
    assert (p.partitions, p.replication) == (1, 1)
    assert isinstance(
        q := publisher_for("kafka://a:9092?partitions=6&replication=3", "t"), KafkaPublisher
    )
    assert (q.partitions, q.replication) == (6, 3)


@pytest.mark.parametrize("query", ["partitions=0", "partitions=many", "replication=-1"])
def test_a_bad_partition_count_is_refused(query: str) -> None:
    with pytest.raises(UnsupportedBrokerURL):
        publisher_for(f"kafka://a:9092?{query}", "t")


def test_a_kafka_url_without_a_broker_is_refused() -> None:
    with pytest.raises(UnsupportedBrokerURL, match="names no broker"):
        publisher_for("kafka://", "t")


def test_headers_carry_content_type_ce_id_ce_type_and_trace_context() -> None:
    event = RecordedEvent(
        uuid.uuid4(),
        "order-1",
        "OrderPlaced",
        {},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        1,
        1,
        datetime.now(UTC),
    )
    headers = dict(kafka_headers(OutgoingMessage.from_event(event)))
    assert headers == {
        "content-type": b"application/cloudevents+json",
        "ce_id": str(event.id).encode(),
        "ce_type": b"OrderPlaced",
        "traceparent": b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
