"""Fulfilment saga benchmark, against DBOS Transact running the same workflow, on PostgreSQL.

    python -m bench sagas [--quick]

Each round, cairn and the DBOS peer (``bench/dbos_peer.py``, in a child process) run in turn,
each on a fresh database of the same server, first one then the other (the order alternates
from round to round, so the host's swings fall on both):

* burst: N orders of one item each, spread over 20 products, created first (not measured), then
  placed by 8 concurrent clients as fast as they can. Sagas/s = N / (last confirmation − first
  place); latency = confirmation − the moment the place returned (so it includes queueing);
* per saga of the burst: CPU of the client process and of the PostgreSQL backends, statements
  and transactions (``bench/_phase_costs.py`` says how each is counted);
* lone: orders placed one at a time, each after the previous one's confirmation: p50 and p99;
* idle (first round): transactions/s the database commits while the runner (or DBOS) idles
  for 10 s after the lone phase.

cairn: the command bus, the fake gateway and carrier (no latency) and one saga runner with
default settings, in this process; "confirmed" is when the ``confirm_order`` step's command
(which records ``OrderConfirmed``) returned, as the peer's is when its last step returned. The
lone phase starts once the runner holds its partition's lease. The figures table shows every
round; the goals are checked on the medians of the per-round ratios.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from bench import dbos_peer
from bench._phase_costs import Phase, count_statements, database_of
from bench.common import Report, percentile, scratch_pg_database
from cairn.observability.logging import configure_logging
from cairn.observability.tracing import configure_tracing
from cairn.orders.adapters import FakeCarrier, FakePaymentGateway
from cairn.orders.bootstrap import bootstrap
from cairn.orders.components import build_saga_runner
from cairn.orders.domain.inventory import RegisterProduct
from cairn.orders.domain.money import Money
from cairn.orders.domain.orders import CreateOrder, OrderItem, PlaceOrder, ShippingAddress
from cairn.orders.fulfilment import CONFIRM
from cairn.sagas import StepContext
from cairn.settings import Settings

#: cairn's round runs on uvloop, as the saga runner does in ``cairn worker`` and ``cairn serve``
#: (bench/__main__.py); the DBOS peer runs in its own process, as DBOS runs.
SERVICE_LOOP = True
CLIENTS = 8
IDLE_SECONDS = 10.0
ROUNDS = 3
#: Orders spread over 20 products (one hot SKU would measure stream contention instead).
SKUS = [f"SKU-{i:02d}" for i in range(20)]
COLUMNS = (
    ("rate", "sagas/s", "{:.1f}"),
    ("lone_p50_ms", "lone p50 ms", "{:.1f}"),
    ("lone_p99_ms", "lone p99 ms", "{:.1f}"),
    ("burst_p50_ms", "burst p50 ms", "{:.0f}"),
    ("cpu_ms", "CPU ms/saga", "{:.2f}"),
    ("client_cpu_ms", "client", "{:.2f}"),
    ("server_cpu_ms", "server", "{:.2f}"),
    ("statements", "stmts/saga", "{:.1f}"),
    ("transactions", "xacts/saga", "{:.1f}"),
    ("idle_tps", "idle xacts/s", "{:.2f}"),
)


async def measure_cairn(url: str, orders: int, lone: int, idle: float) -> dict[str, Any]:
    """One round of cairn on the (fresh) database at ``url``: burst, lone, idle."""
    count_statements()
    settings = Settings(database_url=url)
    gateway, carrier = FakePaymentGateway(), FakeCarrier()
    container = await bootstrap(settings, gateway=gateway, carrier=carrier)
    bus = container.command_bus
    runner = await build_saga_runner(settings, container.store, bus, gateway, carrier)
    confirmed: dict[str, float] = {}
    done: dict[str, asyncio.Event] = {}
    confirm = runner.steps.effects[CONFIRM]

    async def confirm_and_note(step: StepContext) -> None:
        await confirm(step)
        order_id = str(step.payload["order_id"])
        confirmed[order_id] = time.perf_counter()
        done[order_id].set()

    # The bench's only hook: when the order is confirmed (no $all reader of its own to pay for).
    runner.steps.effects[CONFIRM] = confirm_and_note
    for sku in SKUS:
        await bus.dispatch(RegisterProduct(sku, sku, Money(Decimal("12.50"), "EUR"), 1_000_000))
    address = ShippingAddress("1 Main St", "Paris", "75001", "FR")

    async def create(n: int) -> list[str]:
        ids = [str(uuid.uuid4()) for _ in range(n)]
        for i, order_id in enumerate(ids):
            done[order_id] = asyncio.Event()
            item = OrderItem(SKUS[i % len(SKUS)], 1)
            await bus.dispatch(
                CreateOrder(order_id, "c-1", "Ada", "ada@example.com", "EUR", address, (item,))
            )
        return ids

    async def place(ids: list[str], clients: int, one_at_a_time: bool) -> tuple[float, list[float]]:
        placed: dict[str, float] = {}

        async def client(mine: list[str]) -> None:
            for order_id in mine:
                await bus.dispatch(PlaceOrder(order_id, "tok_ok"))
                placed[order_id] = time.perf_counter()
                if one_at_a_time:
                    await done[order_id].wait()

        first = time.perf_counter()
        await asyncio.gather(*(client(ids[i::clients]) for i in range(clients)))
        await asyncio.wait_for(asyncio.gather(*(done[o].wait() for o in ids)), timeout=600)
        elapsed = max(confirmed[o] for o in ids) - first
        return len(ids) / elapsed, [confirmed[o] - placed[o] for o in ids]

    database = database_of(url)
    worker = asyncio.create_task(runner.run())
    try:
        burst_ids, lone_ids = await create(orders), await create(lone)
        while not runner.owned:  # the lease first: else the first orders wait for it
            await asyncio.sleep(0.01)
        phase = await Phase.start(database)
        rate, burst = await place(burst_ids, CLIENTS, one_at_a_time=False)
        costs = await phase.stop()
        _, lone_latencies = await place(lone_ids, 1, one_at_a_time=True)
        idle_tps = 0.0
        if idle > 0:
            phase = await Phase.start(database)
            await asyncio.sleep(idle)
            idle_tps = (await phase.stop()).transactions / idle
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await runner.close()
        await container.close()
    return {
        "rate": rate,
        "burst_p50_ms": percentile(burst, 50) * 1000,
        "burst_p99_ms": percentile(burst, 99) * 1000,
        "lone_p50_ms": percentile(lone_latencies, 50) * 1000,
        "lone_p99_ms": percentile(lone_latencies, 99) * 1000,
        "idle_tps": idle_tps,
        **costs.per(orders),
    }


async def _dbos_round(url: str, orders: int, lone: int, idle: float) -> dict[str, Any]:
    config = {"url": url, "orders": orders, "lone": lone, "idle": idle}
    return await asyncio.to_thread(dbos_peer.run_child, config)


Contender = Callable[[str, int, int, float], Awaitable[dict[str, Any]]]
CONTENDERS: dict[str, Contender] = {"cairn": measure_cairn, "dbos": _dbos_round}


def _row(label: str, figures: dict[str, Any]) -> str:
    cells = [fmt.format(figures[key]).rjust(max(len(title), 8)) for key, title, fmt in COLUMNS]
    return f"{label:<14}" + "  ".join(cells)


def _header() -> str:
    return f"{'round':<14}" + "  ".join(title.rjust(max(len(title), 8)) for _, title, _ in COLUMNS)


async def run(quick: bool) -> Report:
    configure_logging("WARNING", json=False)  # a debug line per command costs the client CPU
    # As `cairn worker` and `cairn serve` start: the tracer the OTEL_* variables describe (with
    # no exporter, no inner spans are made; the trace context is still passed on).
    configure_tracing()
    report = Report("sagas")
    orders = 50 if quick else 300
    lone = 10 if quick else 40
    rounds = 1 if quick else ROUNDS
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    print(_header(), flush=True)
    for r in range(rounds):
        names = list(CONTENDERS) if r % 2 == 0 else list(reversed(CONTENDERS))
        for name in names:
            async with scratch_pg_database(f"cairn_bench_sagas_{name}") as url:
                idle = IDLE_SECONDS if r == 0 else 0.0
                figures = await CONTENDERS[name](url, orders, lone, idle)
            results[name].append(figures)
            print(_row(f"{r + 1} {name}", figures), flush=True)
    ratios = {
        "rate": [
            c["rate"] / d["rate"] for c, d in zip(results["cairn"], results["dbos"], strict=True)
        ],
        "lone": [
            c["lone_p50_ms"] / d["lone_p50_ms"]
            for c, d in zip(results["cairn"], results["dbos"], strict=True)
        ],
    }
    for name, rows in results.items():
        for key, title, _ in COLUMNS:
            values = [row[key] for row in rows if key != "idle_tps" or row is rows[0]]
            spread = f"rounds: {', '.join(f'{v:.2f}' for v in values)}"
            report.add(f"{name}: {title} (median)", statistics.median(values), "", spread)
    cairn = results["cairn"]
    report.check(
        "cairn/dbos burst sagas/s (median of rounds)", statistics.median(ratios["rate"]), 3
    )
    report.check(
        "cairn/dbos lone p50 (median of rounds)", statistics.median(ratios["lone"]), 0.6, "<="
    )
    report.check(
        "cairn CPU ms per saga (client+server)",
        statistics.median(row["cpu_ms"] for row in cairn),
        8,
        "<=",
    )
    report.check("cairn idle runner transactions/s", cairn[0]["idle_tps"], 2, "<=")
    report.notes.append(
        f"{orders} orders per burst, {CLIENTS} placing clients; {lone} lone orders; {rounds} "
        "rounds. One process per contender (cairn: API-side commands, runner and fakes on one "
        "event loop), sharing the machine's cores with PostgreSQL and everything else running"
    )
    return report
