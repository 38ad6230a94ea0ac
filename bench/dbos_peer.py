"""The DBOS peer of the saga benchmark: the fulfilment saga as a DBOS Transact workflow.

    python -m bench dbos_peer [--quick]        # one round on its own (a scratch database)

``python -m bench sagas`` runs it in a child process (``python -m bench.dbos_peer CONFIG``, one
round, results as a JSON line), interleaved with cairn's rounds: DBOS is a process-wide
singleton with background threads, so it gets a process of its own and costs nothing to
cairn's figures (and the other way round).

The workflow mirrors the fulfilment saga of one order with one item: reserve stock, authorise
the payment, create the shipment, confirm; a declined payment releases the stock and cancels,
a refused shipment also voids the payment. Each step calls the same fake adapter as cairn's
effect (``FakePaymentGateway``, ``FakeCarrier``, with the step's id as idempotency key) and
records its outcome with one write to an application table (cairn's effect records it as an
event through the command bus). Set-up as cairn's: PostgreSQL, READ COMMITTED (the server's
default), the system database pool at 10 connections and the application's at 3, workflows run
on the event loop (async steps), at most 64 at once (cairn's ``max_in_flight``).

"place → confirmed" is from ``start_workflow_async`` returning (the workflow is recorded) to
the workflow's last step having returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from decimal import Decimal
from typing import Any, ClassVar

from psycopg_pool import AsyncConnectionPool

from bench._phase_costs import Phase, count_statements, database_of
from bench.common import percentile, scratch_pg_database
from cairn.errors import PermanentAdapterError
from cairn.orders.adapters import FakeCarrier, FakePaymentGateway

ADDRESS = {"line1": "1 Main St", "city": "Paris", "postal_code": "75001", "country": "FR"}
SKUS = [f"SKU-{i:02d}" for i in range(20)]
CLIENTS = 8
IN_FLIGHT = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_orders (order_id TEXT PRIMARY KEY, sku TEXT NOT NULL,
    status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bench_stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL,
    reserved INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bench_payments (order_id TEXT PRIMARY KEY, status TEXT NOT NULL,
    authorization_id TEXT);
CREATE TABLE IF NOT EXISTS bench_shipments (order_id TEXT PRIMARY KEY, tracking TEXT NOT NULL);
"""


class Peer:
    """The adapters and the application pool the workflow's steps use (set before launch)."""

    pool: AsyncConnectionPool[Any]
    gateway = FakePaymentGateway()
    carrier = FakeCarrier()
    finished: ClassVar[dict[str, float]] = {}
    slots: asyncio.Semaphore


async def _write(sql: str, params: tuple[Any, ...]) -> None:
    async with Peer.pool.connection() as conn:
        await conn.execute(sql, params)


def _register() -> Any:
    """Define the steps and the workflow (DBOS must exist first); the workflow function."""
    from dbos import DBOS

    @DBOS.step()
    async def reserve_stock(order_id: str, sku: str) -> None:
        await _write(
            "UPDATE bench_stock SET available = available - 1, reserved = reserved + 1"
            " WHERE sku = %s",
            (sku,),
        )

    @DBOS.step()
    async def release_stock(order_id: str, sku: str) -> None:
        await _write(
            "UPDATE bench_stock SET available = available + 1, reserved = reserved - 1"
            " WHERE sku = %s",
            (sku,),
        )

    @DBOS.step()
    async def authorize_payment(order_id: str, token: str) -> str | None:
        answer = await Peer.gateway.authorize(
            idempotency_key=f"{DBOS.workflow_id}:authorize",
            payment_id=order_id,
            amount=Decimal("12.50"),
            currency="EUR",
            payment_method=token,
        )
        await _write(
            "INSERT INTO bench_payments VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (order_id, "authorized" if answer.approved else "declined", answer.authorization_id),
        )
        return answer.authorization_id if answer.approved else None

    @DBOS.step()
    async def void_payment(order_id: str, authorization_id: str) -> None:
        await Peer.gateway.void(
            idempotency_key=f"{DBOS.workflow_id}:void",
            payment_id=order_id,
            authorization_id=authorization_id,
        )
        await _write("UPDATE bench_payments SET status = 'voided' WHERE order_id = %s", (order_id,))

    @DBOS.step()
    async def create_shipment(order_id: str) -> str:
        booking = await Peer.carrier.create_shipment(
            idempotency_key=f"{DBOS.workflow_id}:ship",
            shipment_id=order_id,
            order_id=order_id,
            address=ADDRESS,
        )
        await _write(
            "INSERT INTO bench_shipments VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (order_id, booking.tracking_number),
        )
        return booking.tracking_number

    @DBOS.step()
    async def set_order_status(order_id: str, status: str) -> None:
        await _write("UPDATE bench_orders SET status = %s WHERE order_id = %s", (status, order_id))

    @DBOS.workflow()
    async def fulfil(order_id: str, sku: str, token: str) -> str:
        async with Peer.slots:
            await reserve_stock(order_id, sku)
            authorization = await authorize_payment(order_id, token)
            if authorization is None:
                await release_stock(order_id, sku)
                await set_order_status(order_id, "cancelled")
                return "cancelled"
            try:
                await create_shipment(order_id)
            except PermanentAdapterError:
                await void_payment(order_id, authorization)
                await release_stock(order_id, sku)
                await set_order_status(order_id, "cancelled")
                return "cancelled"
            await set_order_status(order_id, "confirmed")
            Peer.finished[order_id] = time.perf_counter()
            return "confirmed"

    return fulfil


async def _orders(n: int, prefix: str) -> list[tuple[str, str]]:
    orders = [(str(uuid.uuid4()), SKUS[i % len(SKUS)]) for i in range(n)]
    async with Peer.pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO bench_orders VALUES (%s, %s, 'created')",
            [(f"{prefix}{o}", sku) for o, sku in orders],
        )
    return [(f"{prefix}{o}", sku) for o, sku in orders]


async def _phase(
    fulfil: Any, orders: list[tuple[str, str]], clients: int, one_at_a_time: bool
) -> tuple[float, list[float]]:
    from dbos import DBOS

    placed: dict[str, float] = {}
    handles = []

    async def client(mine: list[tuple[str, str]]) -> None:
        for order_id, sku in mine:
            handle = await DBOS.start_workflow_async(fulfil, order_id, sku, "tok_ok")
            placed[order_id] = time.perf_counter()
            handles.append(handle)
            if one_at_a_time:
                await handle.get_result()

    first = time.perf_counter()
    await asyncio.gather(*(client(orders[i::clients]) for i in range(clients)))
    results = [await h.get_result() for h in handles]
    if any(r != "confirmed" for r in results):
        raise RuntimeError(f"{sum(r != 'confirmed' for r in results)} workflows did not confirm")
    elapsed = max(Peer.finished[o] for o, _ in orders) - first
    return len(orders) / elapsed, [Peer.finished[o] - placed[o] for o, _ in orders]


async def measure(url: str, orders: int, lone: int, idle: float) -> dict[str, Any]:
    """One round on the (fresh) database at ``url``: burst, lone, idle. JSON-ready figures."""
    from dbos import DBOS

    count_statements()
    DBOS(
        config={
            "name": "cairn-bench-peer",
            "system_database_url": url,
            "sys_db_pool_size": 10,
            "log_level": "WARNING",
            "max_executor_threads": IN_FLIGHT,
        }
    )
    fulfil = _register()
    Peer.slots = asyncio.Semaphore(IN_FLIGHT)
    Peer.pool = AsyncConnectionPool(
        url.replace("postgresql+psycopg://", "postgresql://"),
        min_size=3,
        max_size=3,
        kwargs={"autocommit": True},
        open=False,
    )
    await Peer.pool.open()
    database = database_of(url)
    try:
        async with Peer.pool.connection() as conn:
            await conn.execute(_SCHEMA)
            await conn.execute(
                "INSERT INTO bench_stock SELECT unnest(%s::text[]), 1000000, 0", (SKUS,)
            )
        DBOS.launch()
        burst_orders = await _orders(orders, "B")
        phase = await Phase.start(database)
        rate, burst = await _phase(fulfil, burst_orders, CLIENTS, one_at_a_time=False)
        costs = await phase.stop()
        _, lone_latencies = await _phase(fulfil, await _orders(lone, "L"), 1, one_at_a_time=True)
        idle_tps = 0.0
        if idle > 0:
            phase = await Phase.start(database)
            await asyncio.sleep(idle)
            idle_tps = (await phase.stop()).transactions / idle
    finally:
        with contextlib.suppress(Exception):
            DBOS.destroy(destroy_registry=True)
        await Peer.pool.close()
    return {
        "rate": rate,
        "burst_p50_ms": percentile(burst, 50) * 1000,
        "burst_p99_ms": percentile(burst, 99) * 1000,
        "lone_p50_ms": percentile(lone_latencies, 50) * 1000,
        "lone_p99_ms": percentile(lone_latencies, 99) * 1000,
        "idle_tps": idle_tps,
        **costs.per(orders),
    }


def run_child(config: dict[str, Any]) -> dict[str, Any]:
    """Run one round in a child process (see the module docstring); its figures."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "bench.dbos_peer", json.dumps(config)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None) -> int:
    quick = "--quick" in (argv or [])

    async def one_round() -> dict[str, Any]:
        async with scratch_pg_database("cairn_bench_dbos") as url:
            return await measure(url, 50 if quick else 300, 10 if quick else 40, 0 if quick else 10)

    print(json.dumps(asyncio.run(one_round()), indent=2))
    return 0


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    figures = asyncio.run(
        measure(settings["url"], settings["orders"], settings["lone"], settings["idle"])
    )
    print(json.dumps(figures), flush=True)
