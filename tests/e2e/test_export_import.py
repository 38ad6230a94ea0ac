"""SPEC §16, ``cairn export FILE`` / ``cairn import FILE`` as a user runs them: SQLite →
PostgreSQL and PostgreSQL → SQLite. The target holds the same events (ids, positions, versions,
types, payloads as stored, metadata), its rebuilt read models show the same orders, a forgotten
customer stays forgotten while a remembered one decrypts, a second import is refused and writes
nothing, and a saga runner started on the target repeats no effect of the imported orders."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_cli import cairn as run_cairn

import cairn as lib
from cairn.orders.adapters import FakeCarrier, FakePaymentGateway, Ledger
from cairn.orders.bootstrap import bootstrap
from cairn.orders.codec import domain_personal_data, domain_upcasters
from cairn.orders.components import build_projections, build_saga_runner
from cairn.orders.domain.inventory import RegisterProduct
from cairn.orders.domain.money import Money
from cairn.orders.domain.orders import CreateOrder, OrderItem, PlaceOrder, ShippingAddress
from cairn.orders.forgetting import forget_customer
from cairn.sagas import StepPolicy
from cairn.settings import Settings
from cairn.sql.checkpoints import load_checkpoint
from cairn.store import EventStore

FAST = StepPolicy(
    timeout=0.5, attempts=3, backoff=0.05, max_backoff=0.2, compensation_attempts=3, deadline=20
)
CUSTOMERS = {"c-1": ("Ada", "ada@example.com"), "c-2": ("Grace", "grace@example.com")}


def cairn(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cairn(*args, database_url=url, cwd=cwd, timeout=120)


@contextlib.asynccontextmanager
async def fulfilment(url: str, gateway: FakePaymentGateway) -> Any:
    """The order system with a running fulfilment saga runner."""
    settings = Settings(database_url=url)
    carrier = FakeCarrier(ledger=Ledger())
    container = await bootstrap(settings, gateway=gateway, carrier=carrier)
    runner = await build_saga_runner(
        settings, container.store, container.command_bus, gateway, carrier, policy=FAST
    )
    runner.poll_interval = 0.02
    task = asyncio.create_task(runner.run())
    try:
        yield container, runner
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.close()
        await container.close()


async def seed(url: str) -> list[str]:
    """Orders of two customers, placed and fulfilled by the saga; then c-2 is forgotten."""
    gateway = FakePaymentGateway(ledger=Ledger())
    async with fulfilment(url, gateway) as (container, _):
        bus = container.command_bus
        await bus.dispatch(RegisterProduct("MUG", "Mug", Money(Decimal("12.50"), "EUR"), 100))
        order_ids: list[str] = []
        for i in range(6):
            customer = "c-1" if i % 2 == 0 else "c-2"
            name, email = CUSTOMERS[customer]
            order_id = str(uuid.uuid4())
            await bus.dispatch(
                CreateOrder(
                    order_id=order_id,
                    customer_id=customer,
                    customer_name=name,
                    customer_email=email,
                    currency="EUR",
                    shipping_address=ShippingAddress("1 Main St", "Paris", "75001", "FR"),
                    items=(OrderItem("MUG", i + 1),),
                )
            )
            await bus.dispatch(PlaceOrder(order_id, "tok_ok"))
            order_ids.append(order_id)
        deadline = time.monotonic() + 30
        for order_id in order_ids:
            while "OrderConfirmed" not in await types(container.store, f"order-{order_id}"):
                assert time.monotonic() < deadline, f"order {order_id} was never confirmed"
                await asyncio.sleep(0.05)
        assert len(gateway.ledger.entries("authorize")) == len(order_ids)
        await forget_customer(container.store, container.repositories, "c-2")
    return order_ids


async def types(store: EventStore, stream: str) -> list[str]:
    return [e.type for e in await store.read_stream(stream)]


def domain_store(url: str) -> Any:
    return lib.open_store(
        url,
        migrate=False,
        upcasters=domain_upcasters(),
        personal_data=domain_personal_data(),
    )


async def stored_log(url: str) -> list[Any]:
    async with lib.open_store(url, migrate=False) as raw:
        return await raw.read_stored(after=0, limit=100_000)


async def read_models(url: str) -> dict[str, Any]:
    """The order read models, rebuilt from the log by a fresh projection engine."""
    async with domain_store(url) as store:
        engine = build_projections(url, store)
        try:
            await engine.run_until_caught_up()
            q = engine.queries
            page = await q.list_orders(limit=500)
            ids = sorted(o["order_id"] for o in page.orders)
            return {
                "list": sorted(page.orders, key=lambda o: o["order_id"]),
                "orders": [await q.get_order(i) for i in ids],
                "customers": {c: await q.customer_summary(c) for c in CUSTOMERS},
                "inventory": await q.list_inventory(limit=100),
            }
        finally:
            await engine.close()


async def saga_after_import(url: str) -> tuple[int, int, int, int]:
    """(head before, head after, authorisations, checkpoint) around a saga runner's 2 s."""
    async with lib.open_store(url, migrate=False) as raw:
        before = await raw.head_position()
    gateway = FakePaymentGateway(ledger=Ledger())
    async with fulfilment(url, gateway) as (container, runner):
        await asyncio.sleep(2.0)
        after = await container.store.head_position()
        checkpoint = await load_checkpoint(runner.db, runner.checkpoint_name(0))
    return before, after, len(gateway.ledger.entries("authorize")), checkpoint


@pytest.mark.parametrize("direction", ["sqlite-to-postgres", "postgres-to-sqlite"])
def test_export_then_import_moves_the_whole_store(
    direction: str, tmp_path: Path, pg_url: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/cairn.db"
    source, target = (
        (sqlite_url, pg_url) if direction == "sqlite-to-postgres" else (pg_url, sqlite_url)
    )
    order_ids = asyncio.run(seed(source))
    dump = tmp_path / "cairn.jsonl"

    exported = cairn("export", str(dump), url=source, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    lines = dump.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["kind"] == "header"
    assert header["source_backend"] == source.split(":")[0].replace("postgresql", "postgres")
    assert header["events"] == len(lines) - 2 - header["subject_keys"] - header["streams"]
    assert "Ada" not in dump.read_text()  # sealed as stored

    assert cairn("migrate", url=target, cwd=tmp_path).returncode == 0
    imported = cairn("import", str(dump), url=target, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert f"imported {header['events']} events" in imported.stdout

    # The same events, as stored.
    assert asyncio.run(stored_log(target)) == asyncio.run(stored_log(source))

    # The same orders in the rebuilt read models; c-2 forgotten, c-1 readable.
    models = asyncio.run(read_models(target))
    assert models == asyncio.run(read_models(source))
    assert [o["order_id"] for o in models["orders"]] == sorted(order_ids)
    assert models["customers"]["c-1"]["customer_name"] == "Ada"
    assert models["customers"]["c-2"]["customer_name"] == "[redacted]"

    async def history(order_id: str) -> list[Any]:
        async with domain_store(target) as store:
            return await store.read_stream(f"order-{order_id}")

    ada = asyncio.run(history(order_ids[0]))[0].data
    grace = asyncio.run(history(order_ids[1]))[0].data
    assert (ada["customer_name"], ada["customer_email"]) == CUSTOMERS["c-1"]
    assert grace["customer_name"] == "[redacted]"

    # A second import is refused, on one line, and writes nothing.
    head = asyncio.run(stored_log(target))[-1].position
    again = cairn("import", str(dump), url=target, cwd=tmp_path)
    assert again.returncode != 0
    assert len(again.stderr.strip().splitlines()) == 1
    assert "not empty" in again.stderr
    assert "store.not_empty" in again.stderr
    assert asyncio.run(stored_log(target))[-1].position == head

    # The saga runner on the target repeats nothing: no command, no event, no payment.
    before, after, authorisations, checkpoint = asyncio.run(saga_after_import(target))
    assert (before, after, authorisations) == (head, head, 0)
    assert checkpoint == head
