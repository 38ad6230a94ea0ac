"""The Kafka relay target: ``kafka://host:port[,host:port][?partitions=N&replication=R]``
(SPEC §18).

Each event becomes one record of topic ``<topic>`` (created if missing, ``partitions`` 1 and
``replication`` 1 unless the URL says otherwise): key = stream id, so one stream stays on one
partition and in version order; value = the CloudEvents JSON of SPEC §6; headers
``content-type: application/cloudevents+json``, ``ce_id``, ``ce_type`` and the trace context
(``traceparent``, ``tracestate``) when the event carries it.

``acks=all`` and NO idempotent or transactional producer: Kafka-protocol brokers without them
(Tansu) must work, so a re-published unconfirmed tail can duplicate records, and consumers drop
duplicates by ``ce_id`` (:mod:`cairn.relay.kafka_consumer`). Order: aiokafka keeps one request
in flight per broker connection and retries in place, so a partition receives records in the
order they were sent. A batch's future resolves once every record is acknowledged; a failure or
``confirm_timeout`` without acknowledgement reports the acknowledged prefix (the relay saves
exactly that), and the relay closes, backs off and reconnects, as for NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from cairn.errors import PublishError, UnsupportedBrokerURL
from cairn.relay.brokers import (
    DEFAULT_CONNECT_TIMEOUT,
    Publisher,
    _await_all,
    _confirmed_prefix,
)
from cairn.relay.cloudevents import OutgoingMessage

#: The structured-mode content type, as SPEC §18 names it for the Kafka header.
KAFKA_CONTENT_TYPE: Final = b"application/cloudevents+json"
#: Kafka's error code for "the topic exists already" (CreateTopics).
_TOPIC_ALREADY_EXISTS: Final = 36
#: How long closing may wait for records still buffered before it drops the connection.
_CLOSE_GRACE: Final = 1.0


def kafka_bootstrap(url: str) -> list[str]:
    """``kafka://a:9092,b:9092`` → ``["a:9092", "b:9092"]`` (port 9092 where none is given)."""
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1]
    servers = [s.strip() for s in netloc.split(",") if s.strip()]
    if not servers:
        raise UnsupportedBrokerURL(f"kafka URL names no broker: {url!r} (kafka://host:9092)")
    return [s if ":" in s.rsplit("]", 1)[-1] else f"{s}:9092" for s in servers]


def _count(url: str, name: str, default: int) -> int:
    text = dict(parse_qsl(urlsplit(url).query)).get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UnsupportedBrokerURL(f"{name} must be an integer, got {text!r}") from None
    if value < 1:
        raise UnsupportedBrokerURL(f"{name} must be at least 1, got {value}")
    return value


def kafka_headers(message: OutgoingMessage) -> list[tuple[str, bytes]]:
    headers = [
        ("content-type", KAFKA_CONTENT_TYPE),
        ("ce_id", message.id.encode()),
        ("ce_type", message.type.encode()),
    ]
    headers += [(name, value.encode()) for name, value in message.headers.items()]
    return headers


class KafkaPublisher(Publisher):
    kind = "kafka"

    def __init__(self, url: str, topic: str, **kwargs: Any) -> None:
        super().__init__(url, topic, **kwargs)
        self.bootstrap = kafka_bootstrap(url)
        self.partitions = _count(url, "partitions", 1)
        self.replication = _count(url, "replication", 1)
        self._producer: Any = None

    def describe(self) -> str:
        return f"kafka://{','.join(self.bootstrap)}"

    async def connect(self) -> None:
        from aiokafka import AIOKafkaProducer

        timeout_ms = int(self.confirm_timeout * 1000)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=False,
            request_timeout_ms=timeout_ms,
        )
        try:
            await asyncio.wait_for(producer.start(), DEFAULT_CONNECT_TIMEOUT * 2)
            await asyncio.wait_for(self._ensure_topic(), self.confirm_timeout)
        except BaseException:
            await _stop(producer)
            raise
        self._producer = producer

    async def _ensure_topic(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.confirm_timeout * 1000)
        )
        await admin.start()
        try:
            if self.topic in await admin.list_topics():
                return
            response = await admin.create_topics(
                [NewTopic(self.topic, self.partitions, self.replication)]
            )
        finally:
            await admin.close()
        for _topic, code, *rest in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise PublishError(f"Kafka refused to create topic {self.topic!r}: {rest}", 0)

    async def send(self, messages: Sequence[OutgoingMessage]) -> asyncio.Future[None]:
        producer = self._producer
        if producer is None:
            raise PublishError("not connected to Kafka", 0)
        futures: list[asyncio.Future[Any]] = []
        try:
            # send() only appends to the producer's per-partition buffers (it waits only when
            # they are full): the records leave in this order, and the acks are awaited together.
            for message in messages:
                futures.append(
                    await producer.send(
                        self.topic,
                        value=message.body,
                        key=message.stream_id.encode(),
                        headers=kafka_headers(message),
                    )
                )
        except Exception as exc:
            sent = asyncio.ensure_future(_await_all(futures, self.confirm_timeout, "Kafka"))
            with contextlib.suppress(PublishError):
                await sent
            confirmed = _confirmed_prefix(futures)
            raise PublishError(f"Kafka send failed after {confirmed}: {exc!r}", confirmed) from exc
        return asyncio.ensure_future(_await_all(futures, self.confirm_timeout, "Kafka"))

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop(producer)


async def _stop(producer: Any) -> None:
    """Stop a producer without waiting long for records a stalled broker will not take:
    ``stop()`` flushes first, so it gets a short grace, then the connections are dropped."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), _CLOSE_GRACE)
    with contextlib.suppress(Exception):
        await producer.client.close()
