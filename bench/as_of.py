"""Time travel for read models: latency of ``ProjectionEngine.as_of`` (what
``GET /api/v1/admin/projections/{name}/as-of`` runs) by distance from the nearest save point,
on PostgreSQL and SQLite.

    python -m bench as_of [--quick]

A log of orders (``bench.projections``: 7 events per order plus one inventory reservation) is
appended; the order view catches up on the first ``BASE`` events (save points off), and one
save point is made there (a copy of the order view: ~``BASE / 7`` rows). Then ``DISTANCE`` more
events are appended, and the order view as it was at ``BASE + d`` is asked for, d = 1k, 10k and
100k events after the save point (each the best and the median of three): the copy is read,
then the model's ``apply`` replays the ``d`` events in memory. SPEC §17's goal: within 2 s at
100k events. ``--quick``: 1k and 10k only, on a smaller base.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile

import cairn
from bench.common import Report, Stopwatch, scratch_pg_database
from bench.projections import EVENTS_PER_ORDER, load_cairn, order_events
from cairn.orders.components import build_projections
from cairn.orders.read_models import OrdersModel
from cairn.projections import RunnerConfig
from cairn.projections.save_points import SavePointMaker
from cairn.store import EventStore

REPEAT = 3


async def append_orders(store: EventStore, events: int, writers: int = 8) -> None:
    """At least ``events`` more events of orders (``EVENTS_PER_ORDER`` each: 6 on the order's
    stream, one reservation), after what the log holds."""
    counter = iter(range(500_000, 500_000 + events // EVENTS_PER_ORDER + 1))

    async def writer() -> None:
        for n in counter:
            oid, batch, sku, reserve = order_events(n)
            await store.append(f"order-{oid}", batch, expected_version=0)
            await store.append(f"inventory-{sku}", [reserve])

    await asyncio.gather(*(writer() for _ in range(writers)))


async def measure(report: Report, backend: str, url: str, base: int, distances: list[int]) -> None:
    async with cairn.open_store(url) as store:
        clock = Stopwatch()
        await load_cairn(store, base // EVENTS_PER_ORDER)
        engine = build_projections(
            url, store, models=[OrdersModel()], config=RunnerConfig(save_point_interval=0)
        )
        try:
            await engine.run_until_caught_up("orders")
            origin = await engine.position_of("orders")
            maker = SavePointMaker(engine.runner("orders").model, interval=1, retention=1)
            async with engine.db.transaction() as tx:
                await maker.after_batch(tx, 1, origin)
            await append_orders(store, max(distances))
            assert origin + max(distances) <= await store.head_position()
            report.add(
                f"{backend}: log loaded",
                clock.elapsed,
                "s",
                f"save point at {origin}, head {await store.head_position()}",
            )
            for distance in distances:
                samples = []
                for _ in range(REPEAT):
                    timer = Stopwatch()
                    found = await engine.as_of("orders", origin + distance)
                    samples.append(timer.elapsed)
                    assert found.save_point == origin
                rows = len(found.rows["orders_view"])
                report.add(
                    f"{backend}: as-of {distance:,} events after the save point",
                    statistics.median(samples) * 1000,
                    "ms",
                    f"median of {REPEAT}, best {min(samples) * 1000:.0f} ms; "
                    f"{found.replayed} applied, {rows} rows",
                )
                if distance == 100_000:
                    report.check(f"{backend}: as-of at 100k events (s)", min(samples), 2.0, "<=")
        finally:
            await engine.close()


async def run(quick: bool) -> Report:
    report = Report("as_of")
    base = 4_000 if quick else 20_000
    distances = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    async with scratch_pg_database("cairn_bench_as_of") as url:
        await measure(report, "postgres", url, base, distances)
    with tempfile.TemporaryDirectory() as folder:
        await measure(report, "sqlite", f"sqlite:///{folder}/as_of.db", base, distances)
    report.notes.append(
        "One copy of the order view is the save point; the replay reads the log from the store "
        "(decode, upcast) and folds it with the order view's own apply, in memory."
    )
    return report
