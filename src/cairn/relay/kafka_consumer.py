"""An inbound Kafka consumer of the relay's CloudEvents: a consumer group, the inbox, and manual
offset commits (SPEC §18).

Kafka delivers at least once, and the relay's producer is not idempotent (Tansu has no such
producer), so a record can arrive twice: re-published after an unconfirmed batch, or redelivered
to a consumer that died before committing. Each record's effect therefore runs through the
:class:`~cairn.relay.inbox.Inbox` under its ``ce_id``, in the same transaction that records the
id; the offset is committed only after that transaction, so a crash in between redelivers and
the inbox drops the copy::

    async with await Inbox.open(database_url, consumer="order-counter") as inbox:
        consumer = KafkaInboxConsumer("kafka://127.0.0.1:9092", "cairn.events", inbox, handle)
        await consumer.run()          # handle(event, tx) runs once per ce_id
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cairn.closing import Closing
from cairn.relay.inbox import Inbox
from cairn.relay.kafka import kafka_bootstrap
from cairn.sql.database import Tx

#: The effect of one CloudEvent (its parsed JSON), in the inbox's transaction.
Handler = Callable[[dict[str, Any], Tx], Awaitable[None]]


@dataclass(slots=True)
class Consumed:
    """What one poll did: effects applied, and copies the inbox recognised and dropped."""

    applied: int = 0
    duplicates: int = 0

    def add(self, other: Consumed) -> None:
        self.applied += other.applied
        self.duplicates += other.duplicates


def ce_id_of(headers: Any, event: dict[str, Any]) -> str:
    """The record's ``ce_id`` header, or the CloudEvent's own ``id`` when the header is absent."""
    for name, value in headers or ():
        if name == "ce_id" and value:
            return bytes(value).decode()
    return str(event["id"])


class KafkaInboxConsumer(Closing):
    """One member of consumer group ``inbox.consumer`` on ``topic``."""

    def __init__(self, url: str, topic: str, inbox: Inbox, handler: Handler) -> None:
        self.bootstrap = kafka_bootstrap(url)
        self.topic = topic
        self.inbox = inbox
        self.handler = handler
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.inbox.consumer,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer

    async def poll(self, timeout: float = 1.0) -> Consumed:
        """Handle what arrives within ``timeout`` seconds; commit each partition's offsets
        after its records were handled."""
        if self._consumer is None:
            await self.start()
        consumer = self._consumer
        done = Consumed()
        batches = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=500)
        for partition, records in batches.items():
            for record in records:
                event = json.loads(record.value)

                async def effect(tx: Tx, event: dict[str, Any] = event) -> None:
                    await self.handler(event, tx)

                if await self.inbox.process(ce_id_of(record.headers, event), effect):
                    done.applied += 1
                else:
                    done.duplicates += 1
            await consumer.commit({partition: records[-1].offset + 1})
        return done

    async def run(self, *, idle: float | None = None) -> Consumed:
        """Consume until cancelled or, with ``idle``, until a poll of that many seconds
        brings nothing; what was done."""
        total = Consumed()
        while True:
            done = await self.poll(idle if idle is not None else 1.0)
            total.add(done)
            if idle is not None and not (done.applied or done.duplicates):
                return total

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
