"""Projection benchmark: catch-up throughput and append → visible latency on PostgreSQL.

    python -m bench projections [--quick]

* Catch-up: a log of ~200k events (orders of 6 events: OrderCreated, 3 × ItemAdded,
  OrderPlaced, OrderConfirmed; plus one InventoryReserved per order and the product
  registrations) is appended to a fresh PostgreSQL database; then the order view and the
  inventory view are built from position 0 (``run_until_caught_up``, both concurrently, 2,000
  events per transaction). Figure: log events per second until both are at the head. Beside
  it, the client (Python) CPU of the catch-up, the part of it spent in garbage collection, and
  the CPU of one plain ``read_all`` scan of the same log (the store's share: reading and
  decoding, which the catch-up does once for both projections).
* eventsourcing 9.5.6, equivalent work, same run, same server: the same kind of events stored
  with ``PostgresApplicationRecorder.insert_events``, read through its own subscription
  (``recorder.subscribe``, what its ``ProjectionRunner`` iterates) and folded into the same two
  tables by a ``PostgresTrackingRecorder`` view, one transaction per event (read the row, write
  it, ``_insert_tracking``), which is how its runner calls ``process_event``. Its events are not
  decoded into domain objects (that would only slow it down). It runs on a smaller log (its
  rate is flat in log size, and a 200k-event run would take minutes).
* Latency: with the projections running live, 200 commands/s (each appends one event to an
  order stream) for a fixed time; latency from just before the append until the order view's
  checkpoint has passed the event (``engine.wait_for``), p50 and p99.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import cairn
from bench.common import Report, Stopwatch, percentile, scratch_pg_database
from cairn.orders.components import build_projections
from cairn.orders.read_models import InventoryModel, OrdersModel
from cairn.projections import RunnerConfig
from cairn.store import EventStore, NewEvent

SKUS = [f"SKU-{i:03d}" for i in range(50)]
EVENTS_PER_ORDER = 7


def order_events(n: int) -> tuple[str, list[NewEvent], str, NewEvent]:
    oid = str(uuid.uuid4())
    items = [(SKUS[(n + k) % len(SKUS)], 1 + k) for k in range(3)]
    total = sum((Decimal("2.50") * q for _, q in items), Decimal("0"))
    events = [
        NewEvent(
            "OrderCreated",
            {
                "order_id": oid,
                "order_number": f"ORD-2026-{n:06d}",
                "customer_id": f"c-{n % 997}",
                "customer_name": "Bench Customer",
                "customer_email": "bench@example.com",
                "currency": "EUR",
                "shipping_address": {"line1": "1 Main St", "city": "Paris", "country": "FR"},
            },
        ),
        *[
            NewEvent(
                "ItemAdded",
                {
                    "order_id": oid,
                    "sku": sku,
                    "name": sku.title(),
                    "quantity": q,
                    "unit_price": "2.50",
                    "currency": "EUR",
                },
                schema_version=2,
            )
            for sku, q in items
        ],
        NewEvent(
            "OrderPlaced",
            {
                "order_id": oid,
                "payment_method": "tok_ok",
                "total": str(total),
                "currency": "EUR",
                "items": [],
            },
        ),
        NewEvent("OrderConfirmed", {"order_id": oid, "payment_id": "p", "shipment_id": "s"}),
    ]
    sku = items[0][0]
    reserve = NewEvent("InventoryReserved", {"sku": sku, "order_id": oid, "quantity": 1})
    return oid, events, sku, reserve


async def load_cairn(store: EventStore, orders: int, writers: int = 8) -> None:
    for sku in SKUS:
        await store.append(
            f"inventory-{sku}",
            [
                NewEvent(
                    "ProductRegistered",
                    {"sku": sku, "name": sku.title(), "unit_price": "2.50", "currency": "EUR"},
                ),
                NewEvent("StockReplenished", {"sku": sku, "quantity": 1_000_000}),
            ],
        )
    counter = iter(range(orders))

    async def writer() -> None:
        for n in counter:
            oid, events, sku, reserve = order_events(n)
            await store.append(f"order-{oid}", events, expected_version=0)
            await store.append(f"inventory-{sku}", [reserve])

    await asyncio.gather(*(writer() for _ in range(writers)))


class GcClock:
    """Seconds this process spends in garbage collection while the block runs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


async def cairn_catch_up(url: str, store: EventStore) -> tuple[int, float, float, float]:
    """Events, wall seconds, client CPU seconds, of which garbage collection."""
    engine = build_projections(
        url,
        store,
        models=[OrdersModel(), InventoryModel()],
        config=RunnerConfig(batch_size=2000),
    )
    try:
        await engine.migrate()
        head = await store.head_position()
        clock = Stopwatch()
        cpu = time.process_time()
        with GcClock() as collector:
            await asyncio.gather(
                engine.run_until_caught_up("orders"), engine.run_until_caught_up("inventory")
            )
        elapsed = clock.elapsed
        cpu = time.process_time() - cpu
        assert await engine.position_of("orders") == head
        assert await engine.position_of("inventory") == head
        return head, elapsed, cpu, collector.seconds
    finally:
        await engine.close()


async def store_scan_cpu(store: EventStore, page: int = 2000) -> float:
    """Client CPU seconds of reading and decoding the whole log once (what the catch-up's
    shared reader does), to tell the store's share of the catch-up from the projections'."""
    cpu = time.process_time()
    after = 0
    while batch := await store.read_all(after=after, limit=page):
        after = batch[-1].position
    return time.process_time() - cpu


async def cairn_latency(url: str, store: EventStore, rate: int, seconds: float) -> list[float]:
    engine = build_projections(url, store, config=RunnerConfig(batch_size=500))
    task = asyncio.create_task(engine.run())
    try:
        await engine.wait_for(await store.head_position(), timeout=120)
        oids = []
        for n in range(50):
            oid, events, _, _ = order_events(900_000 + n)
            await store.append(f"order-{oid}", events[:1], expected_version=0)
            oids.append(oid)
        await engine.wait_for(await store.head_position(), timeout=30)
        samples: list[float] = []

        async def command(i: int) -> None:
            oid = oids[i % len(oids)]
            start = time.perf_counter()
            result = await store.append(
                f"order-{oid}",
                [
                    NewEvent(
                        "ItemAdded",
                        {
                            "order_id": oid,
                            "sku": SKUS[i % len(SKUS)],
                            "name": "x",
                            "quantity": 1,
                            "unit_price": "1.00",
                            "currency": "EUR",
                        },
                        schema_version=2,
                    )
                ],
            )
            if await engine.wait_for("orders", result.position, timeout=10):
                samples.append(time.perf_counter() - start)

        pending: list[asyncio.Task[None]] = []
        begin = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(command(i)))
        await asyncio.gather(*pending)
        return samples
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.close()


# --- eventsourcing -----------------------------------------------------------------------------

ES_VIEW_DDL = """
CREATE TABLE IF NOT EXISTS es_orders_view (order_id TEXT PRIMARY KEY, customer_id TEXT,
    status TEXT, items TEXT, total TEXT, version BIGINT, updated_at TEXT);
CREATE TABLE IF NOT EXISTS es_inventory_view (sku TEXT PRIMARY KEY, name TEXT, on_hand BIGINT,
    reserved BIGINT, version BIGINT, updated_at TEXT);
"""


def eventsourcing_catch_up(url: str, orders: int) -> tuple[int, float]:
    from eventsourcing.persistence import StoredEvent, Tracking
    from eventsourcing.postgres import (
        PostgresApplicationRecorder,
        PostgresDatastore,
        PostgresTrackingRecorder,
    )

    parts = urlsplit(url)

    def datastore() -> PostgresDatastore:
        return PostgresDatastore(
            dbname=parts.path.lstrip("/"),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or "",
            pool_size=2,
            max_overflow=0,
        )

    app_store = datastore()
    recorder = PostgresApplicationRecorder(app_store, events_table_name="es_events")
    recorder.create_table()
    versions: dict[str, int] = {}

    def stored(stream: str, event: NewEvent) -> StoredEvent:
        versions[stream] = versions.get(stream, 0) + 1
        return StoredEvent(
            originator_id=uuid.uuid5(uuid.NAMESPACE_URL, stream),
            originator_version=versions[stream],
            topic=f"cairn:{stream.split('-', 1)[0]}:{event.type}",
            state=json.dumps(dict(event.data)).encode(),
        )

    for sku in SKUS:
        recorder.insert_events(
            [
                stored(
                    f"inventory-{sku}",
                    NewEvent("ProductRegistered", {"sku": sku, "name": sku, "unit_price": "2.50"}),
                ),
                stored(
                    f"inventory-{sku}",
                    NewEvent("StockReplenished", {"sku": sku, "quantity": 10**6}),
                ),
            ]
        )
    for n in range(orders):
        oid, events, sku, reserve = order_events(n)
        recorder.insert_events([stored(f"order-{oid}", e) for e in events])
        recorder.insert_events([stored(f"inventory-{sku}", reserve)])
    total = sum(versions.values())

    view_store = datastore()
    view = PostgresTrackingRecorder(view_store, tracking_table_name="es_tracking")
    view.create_table()
    with view_store.transaction(commit=True) as curs:
        curs.execute(ES_VIEW_DDL)

    def process(notification: Any, tracking: Tracking) -> None:
        _, category, kind = notification.topic.split(":", 2)
        data = json.loads(notification.state)
        with view_store.transaction(commit=True) as curs:
            if category == "order":
                curs.execute(
                    "SELECT * FROM es_orders_view WHERE order_id = %s FOR UPDATE",
                    (data["order_id"],),
                )
                row = curs.fetchone()
                items = json.loads(row["items"]) if row else []
                status = row["status"] if row else "draft"
                total_ = row["total"] if row else "0"
                if kind == "ItemAdded":
                    price = Decimal(data["unit_price"])
                    items.append(
                        {
                            "sku": data["sku"],
                            "quantity": data["quantity"],
                            "unit_price": data["unit_price"],
                            "line_total": str(price * data["quantity"]),
                        }
                    )
                    total_ = str(sum((Decimal(i["line_total"]) for i in items), Decimal("0")))
                elif kind == "OrderPlaced":
                    status, total_ = "placed", data["total"]
                elif kind == "OrderConfirmed":
                    status = "confirmed"
                curs.execute(
                    "INSERT INTO es_orders_view VALUES (%s, %s, %s, %s, %s, %s, now()::text) "
                    "ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, "
                    "items = excluded.items, total = excluded.total, version = excluded.version, "
                    "updated_at = excluded.updated_at",
                    (
                        data["order_id"],
                        data.get("customer_id"),
                        status,
                        json.dumps(items),
                        total_,
                        notification.originator_version,
                    ),
                )
            else:
                curs.execute(
                    "SELECT * FROM es_inventory_view WHERE sku = %s FOR UPDATE", (data["sku"],)
                )
                row = curs.fetchone()
                on_hand = row["on_hand"] if row else 0
                reserved = row["reserved"] if row else 0
                if kind == "StockReplenished":
                    on_hand += data["quantity"]
                elif kind == "InventoryReserved":
                    reserved += data["quantity"]
                curs.execute(
                    "INSERT INTO es_inventory_view VALUES (%s, %s, %s, %s, %s, now()::text) "
                    "ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand, "
                    "reserved = excluded.reserved, version = excluded.version, "
                    "updated_at = excluded.updated_at",
                    (
                        data["sku"],
                        data.get("name"),
                        on_hand,
                        reserved,
                        notification.originator_version,
                    ),
                )
            view._insert_tracking(curs, tracking)

    done = 0
    clock = Stopwatch()
    with recorder.subscribe(gt=None) as subscription:
        for notification in subscription:
            process(
                notification, Tracking(application_name="bench", notification_id=notification.id)
            )
            done += 1
            if done >= total:
                break
    elapsed = clock.elapsed
    assert view.max_tracking_id("bench") == total
    app_store.close()
    view_store.close()
    return total, elapsed


# --- the run -----------------------------------------------------------------------------------


async def run(quick: bool) -> Report:
    report = Report("projections")
    orders = 3_000 if quick else 28_500  # ~7 events per order: ~20k / ~200k events
    es_orders = 700 if quick else 1_450  # ~5k / ~10k events
    latency_seconds = 3.0 if quick else 10.0
    rate = 200

    async with scratch_pg_database("cairn_bench_proj") as url:
        async with cairn.open_store(url) as store:
            clock = Stopwatch()
            await load_cairn(store, orders)
            report.add("log loaded (cairn appends)", clock.elapsed, "s", f"{orders} orders")
            events, elapsed, cpu, collecting = await cairn_catch_up(url, store)
            cairn_rate = report.add(
                "cairn catch-up, order view + inventory",
                events / elapsed,
                "events/s",
                f"{events} events in {elapsed:.1f} s",
            )
            report.add(
                "catch-up client CPU",
                cpu,
                "s",
                f"{cpu / elapsed:.0%} of the wall time; garbage collection {collecting:.2f} s",
            )
            scan = await store_scan_cpu(store)
            report.add(
                "of which store read_all + decode (a separate scan)",
                scan,
                "s",
                f"{scan / cpu:.0%} of the catch-up client CPU",
            )
            samples = await cairn_latency(url, store, rate, latency_seconds)
        es_events, es_elapsed = await asyncio.to_thread(eventsourcing_catch_up, url, es_orders)
        es_rate = report.add(
            "eventsourcing catch-up, same two views",
            es_events / es_elapsed,
            "events/s",
            f"{es_events} events in {es_elapsed:.1f} s, one transaction per event",
        )
    p50 = percentile(samples, 50) * 1000
    p99 = percentile(samples, 99) * 1000
    report.add(f"append → visible p50 at {rate} commands/s", p50, "ms", f"{len(samples)} commands")
    report.add(f"append → visible p99 at {rate} commands/s", p99, "ms")
    report.check("cairn catch-up events/s", cairn_rate, 20_000)
    report.check("cairn / eventsourcing catch-up", cairn_rate / es_rate, 3.0)
    report.check("append → visible p99 ms", p99, 50, "<=")
    if len(samples) < int(rate * latency_seconds):
        report.notes.append(f"{int(rate * latency_seconds) - len(samples)} commands timed out")
    if quick:
        report.notes.append("--quick: ~20k-event log; the goal is stated for 200k events")
    return report
