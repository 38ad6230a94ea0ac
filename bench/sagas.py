"""Fulfilment saga benchmark: sagas completed per second end to end (place → confirmed), with
p50 / p99 place → confirmed latency, on PostgreSQL and SQLite.

    python -m bench sagas [--quick]

Per backend: a fresh database, the command bus, the fake gateway and carrier (no latency) and
one saga runner with default settings, all in this process. N orders of one item each, spread
over 20 products, are created first (not measured), then placed by 8 concurrent clients as
fast as they can; a subscriber to ``$all`` notes when each ``OrderConfirmed`` appears.
Throughput = N / (last confirmation − first place); latency = confirmation time − the moment
``PlaceOrder`` returned (so it includes queueing behind the burst).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from decimal import Decimal

from bench.common import Report, percentile, scratch_pg_database
from cairn.orders.adapters import FakeCarrier, FakePaymentGateway
from cairn.orders.bootstrap import bootstrap
from cairn.orders.components import build_saga_runner
from cairn.orders.domain.inventory import RegisterProduct
from cairn.orders.domain.money import Money
from cairn.orders.domain.orders import CreateOrder, OrderItem, PlaceOrder, ShippingAddress
from cairn.settings import Settings

CLIENTS = 8
#: Orders spread over 20 products (one hot SKU would measure stream contention instead).
SKUS = [f"SKU-{i:02d}" for i in range(20)]


async def measure(
    url: str, orders: int, clients: int = CLIENTS, one_at_a_time: bool = False, prefix: str = ""
) -> tuple[float, list[float]]:
    """(sagas completed per second, place → confirmed latencies in seconds). With
    ``one_at_a_time`` each client waits for its order's confirmation before placing the next."""
    settings = Settings(database_url=url)
    gateway, carrier = FakePaymentGateway(), FakeCarrier()
    container = await bootstrap(settings, gateway=gateway, carrier=carrier)
    bus = container.command_bus
    runner = await build_saga_runner(settings, container.store, bus, gateway, carrier)
    skus = [f"{prefix}{sku}" for sku in SKUS]
    for sku in skus:
        await bus.dispatch(RegisterProduct(sku, sku, Money(Decimal("12.50"), "EUR"), 1_000_000))
    ids = [str(uuid.uuid4()) for _ in range(orders)]
    address = ShippingAddress("1 Main St", "Paris", "75001", "FR")
    for n, order_id in enumerate(ids):
        await bus.dispatch(
            CreateOrder(
                order_id,
                "c-1",
                "Ada",
                "ada@example.com",
                "EUR",
                address,
                (OrderItem(skus[n % len(skus)], 1),),
            )
        )
    start_position = await container.store.head_position()
    placed: dict[str, float] = {}
    confirmed: dict[str, float] = {}
    all_done = asyncio.Event()

    cancelled: set[str] = set()
    done = {order_id: asyncio.Event() for order_id in ids}

    async def watch() -> None:
        async for event in container.store.subscribe(after=start_position):
            if event.type == "OrderConfirmed":
                confirmed[event.data["order_id"]] = time.perf_counter()
                done[event.data["order_id"]].set()
            elif event.type == "OrderCancelled":
                cancelled.add(event.data["order_id"])
                done[event.data["order_id"]].set()
            if len(confirmed) + len(cancelled) == orders:
                all_done.set()
                return

    async def client(mine: list[str]) -> None:
        for order_id in mine:
            await bus.dispatch(PlaceOrder(order_id, "tok_ok"))
            placed[order_id] = time.perf_counter()
            if one_at_a_time:
                await done[order_id].wait()

    watcher = asyncio.create_task(watch())
    worker = asyncio.create_task(runner.run())
    try:
        first = time.perf_counter()
        await asyncio.gather(*(client(ids[i::clients]) for i in range(clients)))
        await asyncio.wait_for(all_done.wait(), timeout=600)
        elapsed = max(confirmed.values()) - first
        if cancelled:
            raise RuntimeError(f"{len(cancelled)} of {orders} orders were cancelled")
    finally:
        for task in (watcher, worker):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.close()
        await container.close()
    return orders / elapsed, [confirmed[o] - placed[o] for o in ids]


async def run(quick: bool) -> Report:
    report = Report("sagas")
    orders = 50 if quick else 300
    single = 10 if quick else 40
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_pg_database("cairn_bench_sagas") as pg_url:
            backends = [("sqlite", f"sqlite:///{tmp}/bench.db"), ("postgres", pg_url)]
            for name, url in backends:
                rate, burst = await measure(url, orders)
                _, lone = await measure(url, single, 1, one_at_a_time=True, prefix="L")
                report.add(
                    f"{name}: sagas completed/s",
                    rate,
                    "sagas/s",
                    f"burst of {orders} orders, {CLIENTS} placing clients",
                )
                for phase, latencies in (("burst", burst), ("lone", lone)):
                    detail = f"{single} orders, one at a time" if phase == "lone" else ""
                    report.add(
                        f"{name}: {phase} place → confirmed p50",
                        percentile(latencies, 50) * 1000,
                        "ms",
                        detail,
                    )
                    report.add(
                        f"{name}: {phase} place → confirmed p99",
                        percentile(latencies, 99) * 1000,
                        "ms",
                    )
    report.notes.append(
        "one process: API-side commands, saga runner and fakes share one event loop and the "
        "machine's 2 cores with the database"
    )
    return report
