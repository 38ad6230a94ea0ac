"""Aggregate benchmark: load latency and end-to-end command throughput, against the
``eventsourcing`` library doing the same work in the same run.

    python -m bench aggregates [--pg URL] [--counts 10,1000,10000] [--clients 8]
                               [--commands 250] [--no-eventsourcing] [--quick]
    python -m bench.aggregates …            (the same, without bench/__main__.py)

1. Load p50: one aggregate with 10, 1k and 10k events, loaded ``--samples`` times, with no
   snapshot and with a snapshot at its last version (cairn: ``Repository.load``; eventsourcing:
   ``app.repository.get``). On PostgreSQL.
2. Throughput: ``--clients`` concurrent clients, each on its own order, each sending
   ``--commands`` "add an item" commands: load + decide + append (cairn: ``CommandBus.dispatch``
   of ``AddItem``, which also looks the price up in the catalogue, i.e. loads the product too,
   and reads back the written event; eventsourcing: ``repository.get`` → ``add_item`` →
   ``save`` in threads). Both snapshot every 100 events. cairn runs twice: without command ids,
   and with a command id per command (the idempotency check costs one more read).

Each part uses a fresh PostgreSQL database created from ``--pg`` (default the test server) and
dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg

from cairn.application import CommandContext, EveryNEvents
from cairn.orders.codec import domain_upcasters, to_new_events
from cairn.orders.domain import inventory, orders
from cairn.orders.domain.money import Money
from cairn.orders.handlers import order_command_bus
from cairn.orders.repositories import OrderRepositories
from cairn.store import EventStore, open_store

DEFAULT_PG = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ADDRESS = orders.ShippingAddress("1 Main St", "Paris", "75001", "FR")


# --- databases -------------------------------------------------------------------------------


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"cairn_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def eventsourcing_env(url: str, pool_size: int) -> dict[str, str]:
    info = psycopg.conninfo.conninfo_to_dict(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info["dbname"]),
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "CREATE_TABLE": "y",
    }


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


# --- the eventsourcing library's side --------------------------------------------------------


_ES_CLASSES: dict[str, Any] = {}


def _es_order_class() -> Any:
    """The library's aggregate, defined once (the library registers classes by topic)."""
    if "Order" not in _ES_CLASSES:
        from eventsourcing.domain import Aggregate, event

        class Order(Aggregate):
            @event("Created")
            def __init__(self, customer_id: str) -> None:
                self.customer_id = customer_id
                self.lines: dict[str, list[Any]] = {}

            @event("ItemAdded")
            def add_item(self, sku: str, quantity: int, unit_price: Decimal) -> None:
                line = self.lines.setdefault(sku, [0, unit_price])
                line[0] += quantity

        _ES_CLASSES["Order"] = Order
    return _ES_CLASSES["Order"]


def eventsourcing_app(env: dict[str, str], snapshot_every: int | None) -> Any:
    from eventsourcing.application import Application

    order_class = _es_order_class()

    class Orders(Application[Any]):
        is_snapshotting_enabled = True
        snapshotting_intervals = {order_class: snapshot_every} if snapshot_every else {}

    app = Orders(env=env)
    app.order_class = order_class  # type: ignore[attr-defined]
    return app


def es_load_p50(url: str, count: int, samples: int) -> tuple[float, float]:
    app = eventsourcing_app(eventsourcing_env(url, 2), None)
    try:
        order = app.order_class("c-1")
        for i in range(count - 1):
            order.add_item("MUG-1", 1, Decimal("12.50"))
            if i % 500 == 499:
                app.save(order)
        app.save(order)
        plain = timed_sync(lambda: app.repository.get(order.id), samples_for(count, samples))
        app.take_snapshot(order.id)
        snap = timed_sync(lambda: app.repository.get(order.id), samples)
        return p50_ms(plain), p50_ms(snap)
    finally:
        app.close()


def es_throughput(url: str, clients: int, commands: int) -> float:
    app = eventsourcing_app(eventsourcing_env(url, clients), 100)
    try:
        ids = []
        for _ in range(clients):
            order = app.order_class("c-1")
            app.save(order)
            ids.append(order.id)
        barrier = threading.Barrier(clients + 1)

        def client(order_id: Any) -> None:
            barrier.wait()
            for _ in range(commands):
                order = app.repository.get(order_id)
                order.add_item("MUG-1", 1, Decimal("12.50"))
                app.save(order)

        threads = [threading.Thread(target=client, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        return clients * commands / (time.perf_counter() - started)
    finally:
        app.close()


def timed_sync(fn: Callable[[], Any], samples: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


# --- cairn's side ----------------------------------------------------------------------------


def samples_for(count: int, samples: int) -> int:
    """Fewer samples where one load folds 10k events (it is the slow case being shown)."""
    return max(5, samples // 4) if count >= 10_000 else samples


async def timed(fn: Callable[[], Awaitable[Any]], samples: int) -> list[float]:
    await fn()  # warm-up
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - started)
    return out


async def seed_stream(store: EventStore, stream: str, count: int) -> None:
    events: list[Any] = [
        inventory.ProductRegistered("BENCH-1", "Bench", Decimal("1.00"), "EUR"),
        *(inventory.StockReplenished("BENCH-1", 1) for _ in range(count - 1)),
    ]
    version = 0
    for start in range(0, count, 500):
        batch = events[start : start + 500]
        ids = [uuid.uuid4() for _ in batch]
        result = await store.append(stream, to_new_events(batch, ids, {}), version)
        version = result.version


async def cairn_load_p50(url: str, count: int, samples: int) -> tuple[float, float]:
    store = await open_store(url, upcasters=domain_upcasters())
    try:
        stream = f"inventory-BENCH-{count}"
        await seed_stream(store, stream, count)
        # No in-process cache here: this measures a load from the store.
        plain = OrderRepositories.build(store, cache_size=0).inventory
        snapshotting = OrderRepositories.build(
            store, snapshots=EveryNEvents(100), cache_size=0
        ).inventory
        without = await timed(lambda: plain.load(stream), samples_for(count, samples))
        await snapshotting.snapshot_now(stream)
        loaded = await snapshotting.load(stream)
        assert loaded.from_snapshot
        assert loaded.version == count
        with_snapshot = await timed(lambda: snapshotting.load(stream), samples)
        return p50_ms(without), p50_ms(with_snapshot)
    finally:
        await store.close()


async def cairn_throughput(url: str, clients: int, commands: int, command_ids: bool) -> float:
    store = await open_store(url, upcasters=domain_upcasters())
    try:
        repositories = OrderRepositories.build(store, snapshots=EveryNEvents(100))
        bus = order_command_bus(store, repositories=repositories)
        await bus.dispatch(inventory.RegisterProduct("MUG-1", "Mug", Money.of("12.50", "EUR"), 10))
        order_ids = [str(uuid.uuid4()) for _ in range(clients)]
        for order_id in order_ids:
            await bus.dispatch(
                orders.CreateOrder(order_id, "c-1", "Ada", "a@example.com", "EUR", ADDRESS)
            )

        async def client(order_id: str) -> None:
            for _ in range(commands):
                context = CommandContext(command_id=str(uuid.uuid4()) if command_ids else None)
                await bus.dispatch(orders.AddItem(order_id, "MUG-1", 1), context)

        started = time.perf_counter()
        await asyncio.gather(*(client(o) for o in order_ids))
        elapsed = time.perf_counter() - started
        loaded = await repositories.orders.load(orders.stream_id(order_ids[0]))
        assert loaded.version == commands + 1, loaded.version
        return clients * commands / elapsed
    finally:
        await store.close()


# --- report ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(30)  # warnings and up only
    )
    counts = [int(c) for c in args.counts.split(",")]
    print(f"aggregate load p50 on PostgreSQL ({args.samples} samples; fewer at 10k unsnapshotted)")
    print(f"  {'events':>7}  {'cairn':>10} {'cairn+snap':>11}   {'es':>10} {'es+snap':>9}")
    for count in counts:
        with fresh_database(args.pg) as url:
            plain, snap = asyncio.run(cairn_load_p50(url, count, args.samples))
        es = "", ""
        if not args.no_eventsourcing:
            with fresh_database(args.pg) as url:
                es_plain, es_snap = es_load_p50(url, count, args.samples)
            es = f"{es_plain:8.2f}ms", f"{es_snap:7.2f}ms"
        print(f"  {count:>7}  {plain:8.2f}ms {snap:9.2f}ms   {es[0]:>10} {es[1]:>9}")

    print(
        f"command throughput on PostgreSQL: {args.clients} clients on distinct orders, "
        f"{args.commands} commands each (load + decide + append), snapshots every 100"
    )
    with fresh_database(args.pg) as url:
        plain_rate = asyncio.run(cairn_throughput(url, args.clients, args.commands, False))
    print(f"  cairn CommandBus, no command ids:      {plain_rate:8.0f} commands/s")
    with fresh_database(args.pg) as url:
        ids_rate = asyncio.run(cairn_throughput(url, args.clients, args.commands, True))
    print(f"  cairn CommandBus, with command ids:    {ids_rate:8.0f} commands/s")
    if not args.no_eventsourcing:
        with fresh_database(args.pg) as url:
            es_rate = es_throughput(url, args.clients, args.commands)
        print(f"  eventsourcing Application, {args.clients} threads: {es_rate:8.0f} commands/s")
        print(
            f"  ratio cairn/eventsourcing: {plain_rate / es_rate:.2f}x (no ids), "
            f"{ids_rate / es_rate:.2f}x (with ids)"
        )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench aggregates", description=__doc__.split("\n")[0]
    )
    p.add_argument("--pg", default=DEFAULT_PG, help="admin URL of a PostgreSQL server")
    p.add_argument("--counts", default="10,1000,10000")
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--commands", type=int, default=250)
    p.add_argument("--no-eventsourcing", action="store_true")
    p.add_argument("--quick", action="store_true", help="1k events at most, fewer commands")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.counts, args.samples, args.commands = "10,1000", 10, 50
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
