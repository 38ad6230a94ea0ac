"""``cairn demo``: the whole order flow on embedded SQLite, shown with Rich.

No configuration and no service: a fresh SQLite file in the working directory, the composition
root, and the workers (projections, fulfilment saga) in this process. It registers a catalogue,
drives one order down every saga path (happy, declined card, out of stock, carrier refusal, flaky
gateway, gateway timeout), ships and delivers one, cancels one, rebuilds a projection with a
progress bar, shows an order as it was at an earlier version, and prints the read models.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cairn.api.temporal import order_at
from cairn.application.messages import CommandContext, CommandResult
from cairn.errors import ApplicationError
from cairn.orders import forgetting
from cairn.orders.bootstrap import Container
from cairn.orders.components import OrderComponents, OrderProjections, build_components
from cairn.orders.domain import inventory, orders
from cairn.orders.domain.money import Money
from cairn.orders.views import ReadModelQueries
from cairn.projections import ProjectionEngine
from cairn.settings import Settings
from cairn.store.urls import Backend, backend_of, sqlite_path
from cairn.workers import Workers

#: (label, payment method, country, SKU, quantity, expected final status)
SCENARIOS: Sequence[tuple[str, str, str, str, int, str]] = (
    ("happy path", "tok_ok", "FR", "MUG-1", 2, "confirmed"),
    ("card declined", "tok_decline", "DE", "MUG-1", 1, "cancelled"),
    ("out of stock", "tok_ok", "FR", "LAMP-1", 5, "cancelled"),
    ("carrier refuses ZZ", "tok_ok", "ZZ", "TEE-1", 1, "cancelled"),
    ("flaky gateway", "tok_flaky", "NL", "TEE-1", 2, "confirmed"),
    ("gateway timeout", "tok_timeout", "ES", "MUG-1", 1, "cancelled"),
)
CATALOGUE: Sequence[tuple[str, str, str, int]] = (
    ("MUG-1", "Stoneware mug", "12.50", 10),
    ("TEE-1", "Cotton tee", "19.90", 5),
    ("LAMP-1", "Desk lamp", "49.00", 1),
)
CUSTOMERS = ("ada", "grace", "linus", "barbara", "edsger", "margaret")


def _fresh(database_url: str) -> None:
    """Start from an empty database file (the demo's own, never anything else)."""
    if backend_of(database_url) is not Backend.SQLITE:
        return
    path = Path(sqlite_path(database_url))
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()


async def run_demo(database_url: str, console: Console) -> None:
    from cairn.observability.logging import configure_logging

    configure_logging("WARNING", json=False)
    started = time.monotonic()
    _fresh(database_url)
    settings = Settings(
        database_url=database_url,
        # Short step timeout and backoff so the timeout path finishes in seconds, not tens.
        saga_step_timeout=1.0,
        saga_retry_backoff=0.05,
        auth="disabled",
    )
    from cairn.orders.bootstrap import bootstrap

    console.print(Panel.fit(f"cairn demo on [bold]{database_url}[/]", style="cyan"))
    container = await bootstrap(settings)
    components = await build_components(settings, container)
    workers = Workers(components.items())
    await workers.start()
    try:
        await _script(container, components, console)
    finally:
        await workers.stop()
        await components.close()
        await container.close()
    console.print(f"\n[green]demo finished in {time.monotonic() - started:.1f} s[/]")


async def _send(container: Container, command: object, user: str = "demo") -> CommandResult:
    context = CommandContext(command_id=str(uuid.uuid4()), user=user)
    return await container.command_bus.dispatch(command, context)


async def _script(container: Container, components: OrderComponents, console: Console) -> None:
    engine = components.projections
    if engine is None:
        raise ApplicationError("app.unavailable", "the demo needs the projections package")
    queries = engine.queries

    console.rule("1. catalogue")
    for sku, name, price, stock in CATALOGUE:
        await _send(container, inventory.RegisterProduct(sku, name, Money.of(price, "EUR"), stock))
        console.print(f"registered {sku} ({name}, {price} EUR, {stock} in stock)", markup=False)

    console.rule("2. one order down every saga path")
    placed: list[tuple[str, str, str]] = []
    for (label, token, country, sku, qty, expected), customer in zip(
        SCENARIOS, CUSTOMERS, strict=True
    ):
        order_id = str(uuid.uuid4())
        await _send(
            container,
            orders.CreateOrder(
                order_id=order_id,
                customer_id=customer,
                customer_name=customer.title(),
                customer_email=f"{customer}@example.com",
                currency="EUR",
                shipping_address=orders.ShippingAddress(
                    line1="1 Main St", city="Paris", postal_code="75001", country=country
                ),
                items=(orders.OrderItem(sku, qty),),
            ),
            user=customer,
        )
        await _send(container, orders.PlaceOrder(order_id, token), user=customer)
        placed.append((label, order_id, expected))
        console.print(f"placed: {label:<20} {qty} x {sku} paying with {token}", markup=False)

    draft_id = str(uuid.uuid4())
    await _send(
        container,
        orders.CreateOrder(
            order_id=draft_id,
            customer_id="ada",
            customer_name="Ada",
            customer_email="ada@example.com",
            currency="EUR",
            shipping_address=orders.ShippingAddress(
                line1="1 Main St", city="Paris", postal_code="75001", country="FR"
            ),
            items=(orders.OrderItem("TEE-1", 1),),
        ),
        user="ada",
    )
    await _send(container, orders.AddItem(draft_id, "MUG-1", 3), user="ada")
    await _send(container, orders.CancelOrder(draft_id, "changed my mind"), user="ada")
    console.print("created, grew and cancelled a draft order (changed my mind)", markup=False)

    with console.status("waiting for the sagas to finish…"):
        final = await _wait_final(queries, placed, timeout=40)
    for label, order_id, expected in placed:
        status = final[order_id]["status"]
        mark = "[green]✓[/]" if status == expected else "[red]✗[/]"
        reason = final[order_id].get("cancellation_reason") or ""
        console.print(mark, Text(f"{label:<20} {status:<10} {reason}"))

    console.rule("3. ship and deliver the happy order")
    happy = placed[0][1]
    await _send(container, orders.ShipOrder(happy), user="operator")
    await _send(container, orders.DeliverOrder(happy), user="operator")
    head = await container.store.head_position()
    await engine.wait_for(head, timeout=10)
    view = await queries.get_order(happy)
    console.print(f"order {happy} is {view['status'] if view else 'unknown'}", markup=False)

    console.rule("4. rebuild the orders projection")
    await _rebuild(engine, container, console)

    console.rule("5. the happy order as it was at version 2")
    then = await order_at(container.query_bus, happy, version=2)
    now = await queries.get_order(happy)
    assert then is not None
    assert now is not None
    console.print(
        Text(
            f"version 2: status {then['status']}, total {then['total']}  →  "
            f"now (version {now['version']}): status {now['status']}"
        )
    )

    console.rule("6. forget a customer (crypto-shredding)")
    await _forget(container, engine, "grace", console)

    console.rule("7. read models")
    await engine.wait_for(await container.store.head_position(), timeout=10)
    await _tables(engine, components, console)


async def _forget(
    container: Container, engine: OrderProjections, customer: str, console: Console
) -> None:
    order_ids = await engine.queries.customer_order_ids(customer)
    before = (await container.store.read_stream(orders.stream_id(order_ids[0])))[0].data
    done = await forgetting.forget_customer(
        container.store,
        container.repositories,
        customer,
        read_side=engine,
        metadata={"user": "demo"},
    )
    after = (await container.store.read_stream(orders.stream_id(order_ids[0])))[0].data
    console.print(
        Text(
            f"{customer}'s key deleted; OrderCreated now reads: name {after['customer_name']!r}, "
            f"email {after['customer_email']!r} (was {before['customer_name']!r}, "
            f"{before['customer_email']!r}); order total and status untouched"
        )
    )
    await engine.wait_for(done.position, timeout=10)


async def _wait_final(
    queries: ReadModelQueries, placed: list[tuple[str, str, str]], timeout: float
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    final: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for _, order_id, _ in placed:
            view = await queries.get_order(order_id)
            if view is not None and view["status"] in ("confirmed", "cancelled"):
                final[order_id] = view
        if len(final) == len(placed):
            return final
        await asyncio.sleep(0.1)
    missing = [label for label, oid, _ in placed if oid not in final]
    raise ApplicationError("app.timeout", f"orders still in flight after {timeout:g} s: {missing}")


async def _rebuild(engine: ProjectionEngine, container: Container, console: Console) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    total = await container.store.head_position()
    with Progress(
        TextColumn("[bold]orders[/]"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("rebuild", total=total)

        def on_progress(done: int, all_: int) -> None:
            progress.update(task, completed=done, total=max(all_, 1))

        version = await engine.rebuild("orders", progress=on_progress)
        progress.update(task, completed=total)
    console.print(f"swapped to table version {version}; queries answered throughout", markup=False)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    return table


async def _tables(engine: OrderProjections, components: OrderComponents, console: Console) -> None:
    q = engine.queries
    page = await q.list_orders(limit=50)
    console.print(
        _table(
            "orders",
            ("number", "customer", "status", "total", "reason"),
            [
                (
                    o["order_number"],
                    o["customer_id"],
                    o["status"],
                    o["total"],
                    o.get("cancellation_reason"),
                )
                for o in page.orders
            ],
        )
    )
    console.print(
        _table(
            "inventory",
            ("sku", "name", "on hand", "reserved", "available"),
            [
                (i["sku"], i["name"], i["on_hand"], i["reserved"], i["available"])
                for i in await q.list_inventory()
            ],
        )
    )
    summaries = [await q.customer_summary(c) for c in CUSTOMERS]
    console.print(
        _table(
            "customers",
            ("customer", "name", "orders", "total spent", "last order"),
            [
                (
                    s["customer_id"],
                    s["customer_name"],
                    s["orders"],
                    s["total_spent"],
                    s["last_order_at"],
                )
                for s in summaries
                if s is not None
            ],
        )
    )
    console.print(
        _table(
            "sales by day",
            ("day", "currency", "orders", "revenue"),
            [(d["day"], d["currency"], d["orders"], d["revenue"]) for d in await q.sales_by_day()],
        )
    )
    sagas = await components.sagas.list(None, 100) if components.sagas is not None else []
    console.print(
        _table(
            "fulfilment sagas",
            ("order", "status", "step"),
            [(s.key[:8], s.status.value, s.step) for s in sagas],
        )
    )
