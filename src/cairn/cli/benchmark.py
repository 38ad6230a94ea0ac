"""``cairn bench``: command throughput and latency through the command bus (no HTTP). Creates
and places ``orders`` orders from ``concurrency`` concurrent clients; reports commands/s and
latency percentiles. ``bench/http.py`` measures the same workload over HTTP against
``cairn serve``.

It never writes into the configured database (``CAIRN_DATABASE_URL``): by default it runs on a
scratch SQLite file in a temporary directory, removed afterwards; ``cairn bench --database URL``
runs on that database instead (and leaves its orders there)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cairn.application.messages import CommandContext
from cairn.orders.domain import inventory, orders
from cairn.orders.domain.money import Money
from cairn.settings import Settings


def _percentile(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else 0.0
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


@asynccontextmanager
async def bench_settings(settings: Settings, database_url: str | None) -> AsyncIterator[Settings]:
    """``settings`` on the database the benchmark may write to: ``database_url`` when given,
    else a scratch SQLite file (migrated whatever ``CAIRN_AUTO_MIGRATE`` says) that is removed
    on exit. Never the configured ``settings.database_url``."""
    if database_url is not None:
        yield settings.model_copy(update={"database_url": database_url})
        return
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as scratch:
        url = f"sqlite:///{scratch}/bench.db"
        yield settings.model_copy(update={"database_url": url, "auto_migrate": True})


async def run_bench(settings: Settings, count: int, concurrency: int, console: Console) -> None:
    """The benchmark on ``settings.database_url`` (see :func:`bench_settings` for which)."""
    from cairn.orders.bootstrap import bootstrap

    container = await asyncio.wait_for(bootstrap(settings), 20)
    try:
        sku = f"BENCH-{uuid.uuid4().hex[:8]}"
        bus = container.command_bus
        await bus.dispatch(
            inventory.RegisterProduct(sku, "Bench item", Money.of("1.00", "EUR"), 1_000_000)
        )
        latencies: list[float] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)

        async def timed(command: object) -> None:
            started = time.perf_counter()
            await bus.dispatch(command, CommandContext(command_id=str(uuid.uuid4()), user="bench"))
            latencies.append(time.perf_counter() - started)

        with Progress(
            TextColumn("orders"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
            task = progress.add_task("orders", total=count)

            async def client() -> None:
                while not queue.empty():
                    queue.get_nowait()
                    order_id = str(uuid.uuid4())
                    await timed(
                        orders.CreateOrder(
                            order_id=order_id,
                            customer_id="bench",
                            customer_name="Bench",
                            customer_email="bench@example.com",
                            currency="EUR",
                            shipping_address=orders.ShippingAddress(
                                line1="1 Main St", city="Paris", postal_code="75001", country="FR"
                            ),
                            items=(orders.OrderItem(sku, 1),),
                        )
                    )
                    await timed(orders.PlaceOrder(order_id, "tok_ok"))
                    progress.advance(task)

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
    finally:
        await container.close()
    ms = [x * 1000 for x in latencies]
    table = Table(title=f"{len(latencies)} commands, {concurrency} concurrent clients")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("commands/s", f"{len(latencies) / elapsed:,.1f}")
    for q in (50, 95, 99):
        table.add_row(f"latency p{q}", f"{_percentile(ms, q):,.1f} ms")
    table.add_row("backend", settings.database_url.split("://", 1)[0])
    console.print(table)
