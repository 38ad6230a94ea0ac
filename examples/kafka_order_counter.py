"""Example Kafka consumer: counts the order events cairn publishes, once per CloudEvent.

A member of consumer group ``order-counter`` reads the relay's topic. The relay's producer is
not idempotent (it must work on brokers without that, such as Tansu), so a record can arrive
twice; each record's effect runs through the inbox under its ``ce_id`` header in the same
transaction as the count, and the offsets are committed only after that transaction::

    python examples/kafka_order_counter.py kafka://127.0.0.1:9092 sqlite:///counter.db
    python examples/kafka_order_counter.py kafka://a:9092,b:9092 postgresql://…/db cairn.events

Table ``kafka_order_event_counts(type, count)``: the number of ``OrderPlaced`` is the number of
orders placed. Stop it with Ctrl-C.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from cairn.relay.inbox import Inbox, InboxTransaction
from cairn.relay.kafka_consumer import Consumed, KafkaInboxConsumer

GROUP = "order-counter"


async def count(event: dict[str, Any], tx: InboxTransaction) -> None:
    """The effect: one more of this event type, for order streams only."""
    if event["subject"].split("-", 1)[0] != "order":
        return
    await tx.execute(
        "INSERT INTO kafka_order_event_counts (type, count) VALUES (?, 1) "
        "ON CONFLICT (type) DO UPDATE SET count = kafka_order_event_counts.count + 1",
        (event["type"],),
    )


async def open_inbox(database_url: str, group: str = GROUP) -> Inbox:
    inbox = await Inbox.open(database_url, group)
    async with inbox.transaction() as tx:
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS kafka_order_event_counts "
            "(type TEXT PRIMARY KEY, count INTEGER NOT NULL)"
        )
    return inbox


async def counts(inbox: Inbox) -> dict[str, int]:
    async with inbox.transaction() as tx:
        rows = await tx.fetchall("SELECT type, count FROM kafka_order_event_counts")
    return {str(row["type"]): int(row["count"]) for row in rows}


async def consume(
    broker_url: str, topic: str, inbox: Inbox, *, idle: float | None = None
) -> Consumed:
    """Consume until cancelled (or, with ``idle``, until that many seconds bring nothing)."""
    async with KafkaInboxConsumer(broker_url, topic, inbox, count) as consumer:
        return await consumer.run(idle=idle)


async def main(argv: list[str]) -> None:
    if len(argv) < 2:
        print(__doc__)
        raise SystemExit(2)
    broker_url, database_url = argv[0], argv[1]
    topic = argv[2] if len(argv) > 2 else "cairn.events"
    async with await open_inbox(database_url) as inbox:
        await consume(broker_url, topic, inbox)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
