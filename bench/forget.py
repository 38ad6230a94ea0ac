"""Forgetting a customer (SPEC §12): the cost of finding their streams in the log, and of the
key delete that leaves no bytes behind; and what a circuit breaker adds to a call.

    python -m bench forget [--quick]

A log of ``ORDERS`` orders (``OrderCreated`` with the order domain's personal-data policy, so
the customer's fields are sealed, plus two more events each) of ``CUSTOMERS`` customers, on
SQLite and on PostgreSQL. Measured per backend: ``streams_of_subject`` (the scan a forget makes
instead of asking the read models; median and p95 over 20 customers) and ``forget_subject``
(the key DELETE, then SQLite's WAL truncation or PostgreSQL's ``VACUUM subject_keys``; median
over 20 customers). Then one ``Breaker.call`` around a trivial coroutine against awaiting it
directly (µs per call).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import cairn
from bench.common import Report, percentile, scratch_pg_database
from cairn import NewEvent
from cairn.breakers import Breakers
from cairn.orders.codec import domain_personal_data
from cairn.store import EventStore

SAMPLES = 20


def _order_events(n: int, customer: str) -> list[NewEvent]:
    order = f"o{n}"
    return [
        NewEvent(
            "OrderCreated",
            {
                "order_id": order,
                "customer_id": customer,
                "customer_name": f"Name {customer}",
                "customer_email": f"{customer}@example.com",
                "currency": "EUR",
            },
        ),
        NewEvent("ItemAdded", {"order_id": order, "sku": "MUG-1", "quantity": 1}),
        NewEvent("OrderPlaced", {"order_id": order}),
    ]


async def _fill(store: EventStore, orders: int, customers: int) -> None:
    for n in range(orders):
        await store.append(f"order-o{n}", _order_events(n, f"c{n % customers}"), 0)


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def _measure(report: Report, backend: str, url: str, orders: int, customers: int) -> None:
    async with cairn.open_store(url, personal_data=domain_personal_data()) as store:
        await _fill(store, orders, customers)
        events = await store.head_position()
        finds = []
        for c in range(SAMPLES):
            finds.append(await _timed(lambda c=c: store.streams_of_subject(f"c{c}")))  # type: ignore[misc]
        found = len(await store.streams_of_subject("c0"))
        detail = f"{events} events, {found} streams of the customer"
        report.add(f"{backend}: streams_of_subject p50", statistics.median(finds), "ms", detail)
        report.add(f"{backend}: streams_of_subject p95", percentile(finds, 95), "ms", detail)
        forgets = []
        for c in range(SAMPLES):
            forgets.append(await _timed(lambda c=c: store.forget_subject(f"c{c}")))  # type: ignore[misc]
        report.add(f"{backend}: forget_subject p50", statistics.median(forgets), "ms", detail)


async def _breaker_overhead(report: Report, calls: int) -> None:
    breaker = Breakers().get("bench")

    async def answer() -> int:
        return 1

    started = time.perf_counter()
    for _ in range(calls):
        await answer()
    direct = (time.perf_counter() - started) / calls * 1e6
    started = time.perf_counter()
    for _ in range(calls):
        await breaker.call(answer)
    guarded = (time.perf_counter() - started) / calls * 1e6
    report.add("await a coroutine directly", direct, "µs/call")
    report.add("the same through Breaker.call", guarded, "µs/call", "closed breaker, 4 s timeout")


async def run(quick: bool) -> Report:
    orders, customers = (2_000, 200) if quick else (50_000, 2_000)
    report = Report("forget")
    report.notes.append(f"{orders} orders (3 events each) of {customers} customers per backend")
    with tempfile.TemporaryDirectory() as tmp:
        await _measure(report, "sqlite", f"sqlite:///{tmp}/forget.db", orders, customers)
    async with scratch_pg_database("bench_forget") as url:
        await _measure(report, "postgres", url, orders, customers)
    await _breaker_overhead(report, 2_000 if quick else 20_000)
    return report
