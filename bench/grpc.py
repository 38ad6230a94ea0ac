"""gRPC against a real ``cairn serve`` on PostgreSQL: SubscribeAll catch-up, and commands over
gRPC beside the same commands over REST.

    .venv/bin/python -m bench grpc [--quick]

(Run it as a module: executed as a file, ``bench/grpc.py`` would shadow the ``grpc`` package.)

1. **SubscribeAll catch-up**: a fresh database is filled with ``EVENTS`` events (order-like
   payloads of about 150 bytes, 100 per append); then ``cairn serve --no-workers`` with
   ``CAIRN_GRPC_PORT`` streams the whole log to one ``grpc.aio`` client in this process
   (``SubscribeAll`` from ``after`` unset) until it has the last event. Reported: events/s (best
   of ``ROUNDS``), and the server's and the client's CPU microseconds per event.
   Goal (issue 19): >= 50,000 events/s on this machine.
2. **Commands, gRPC vs REST**: on a second fresh database, one ``cairn serve --no-workers``
   serving both, a product with plenty of stock, then ``CONCURRENCY`` client loops each doing
   CreateOrder (one item) then PlaceOrder, for ``SECONDS`` over gRPC (``grpc.aio`` stubs of
   ``cairn.v1``), then the same over REST (httpx, as ``bench/http.py`` does without wrk), one
   after the other against the same process. Reported: commands/s, p50/p99 latency, errors,
   and CPU milliseconds per command of the server and of the client. Workers are off so that
   the two transports' own costs are compared (``bench/http.py`` measures the deployments).

Everything (clients, server, PostgreSQL) shares the machine's cores: the figures are noisy.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

import cairn
from bench.common import Report, percentile, scratch_pg_database
from bench.http import (
    CAIRN,
    ORDER,
    PLACE,
    TOKEN,
    Run,
    _client_cpu,
    _cpu_seconds,
    _env,
    _free_port,
    _load_httpx,
    _register_product,
    _stop,
    _wait_ready,
)
from cairn.store.base import ANY, NewEvent
from cairn.v1 import event_store_pb2, event_store_pb2_grpc, orders_pb2, orders_pb2_grpc

EVENTS = 200_000
QUICK_EVENTS = 50_000
ROUNDS = 3
SECONDS = 10.0
QUICK_SECONDS = 4.0
CONCURRENCY = 16
GOAL_EVENTS_PER_SECOND = 50_000.0
METADATA = (("authorization", f"Bearer {TOKEN}"),)


def _start(database_url: str, http_port: int, grpc_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = _env(database_url) | {"CAIRN_GRPC_PORT": str(grpc_port)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [CAIRN, "serve", "--port", str(http_port), "--no-workers"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


# --- 1. SubscribeAll catch-up ----------------------------------------------------------------


async def _fill(database_url: str, events: int) -> None:
    """``events`` order-like events, 100 per append, in streams of 100."""
    async with cairn.open_store(database_url) as store:
        for batch in range(events // 100):
            order_id = str(uuid.uuid4())
            await store.append(
                f"bench-{order_id}",
                [
                    NewEvent(
                        "BenchItemAdded",  # no upcaster or projection knows it
                        {
                            "order_id": order_id,
                            "sku": f"SKU-{i % 50}",
                            "name": "Bench mug",
                            "quantity": 1 + i % 3,
                            "unit_price": "12.50",
                        },
                        {"correlation_id": order_id, "user": "bench", "batch": batch},
                    )
                    for i in range(100)
                ],
                expected_version=ANY,
            )


async def _catch_up(target: str, events: int) -> float:
    """Seconds to receive ``events`` events from SubscribeAll (after=0)."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = event_store_pb2_grpc.EventStoreStub(channel)
        started = time.perf_counter()
        call = stub.SubscribeAll(event_store_pb2.SubscribeAllRequest(), metadata=METADATA)
        received = 0
        async for event in call:
            received += 1
            if event.position >= events:
                break
        elapsed = time.perf_counter() - started
        call.cancel()
    if received != events:
        raise RuntimeError(f"received {received} events, expected {events}")
    return elapsed


async def _best_catch_up(
    target: str, events: int, proc: subprocess.Popen[bytes]
) -> tuple[float, float, float]:
    """(seconds, server CPU, client CPU) of the fastest of ``ROUNDS`` catch-ups, after a
    warm-up (connections, caches)."""
    await _catch_up(target, min(events, 10_000))
    best = (float("inf"), 0.0, 0.0)
    for _ in range(ROUNDS):
        server0, client0 = _cpu_seconds(proc.pid), _client_cpu()
        seconds = await _catch_up(target, events)
        if seconds < best[0]:
            best = (seconds, _cpu_seconds(proc.pid) - server0, _client_cpu() - client0)
    return best


def _start_ceiling(port: int, events: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bench._grpc_ceiling", str(port), str(events)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _ceiling(events: int, workdir: Path) -> float:
    """Events/s of grpcio alone (``bench/_grpc_ceiling.py``: pre-built messages)."""
    port = _free_port()
    proc = _start_ceiling(port, events, workdir / "ceiling.log")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), timeout=60)
        seconds, _, _ = await _best_catch_up(f"127.0.0.1:{port}", events, proc)
    finally:
        _stop(proc)
    return events / seconds


async def measure_catch_up(report: Report, events: int, workdir: Path) -> None:
    async with scratch_pg_database("cairn_bench_grpc") as url:
        await _fill(url, events)
        http_port, grpc_port = _free_port(), _free_port()
        proc = _start(url, http_port, grpc_port, workdir / "catch-up.log")
        try:
            await _wait_ready(f"http://127.0.0.1:{http_port}", proc)
            best, server_cpu, client_cpu = await _best_catch_up(
                f"127.0.0.1:{grpc_port}", events, proc
            )
        finally:
            _stop(proc)
    ceiling = await _ceiling(events, workdir)
    rate = events / best
    report.add("SubscribeAll catch-up", rate, "events/s", f"{events:,} events, best of {ROUNDS}")
    report.add("  server CPU per event", server_cpu / events * 1e6, "µs")
    report.add("  client CPU per event", client_cpu / events * 1e6, "µs")
    report.add(
        "  grpcio alone, pre-built messages", ceiling, "events/s", "the transport's ceiling here"
    )
    report.check("SubscribeAll catch-up events/s", rate, GOAL_EVENTS_PER_SECOND)
    report.checks["catch-up / grpcio alone"] = {
        "value": round(rate / ceiling, 3),
        "goal": "report",
        "met": True,
    }


# --- 2. commands over gRPC and REST ----------------------------------------------------------


def _create_request() -> orders_pb2.CreateOrderRequest:
    address = ORDER["shipping_address"]
    assert isinstance(address, dict)
    return orders_pb2.CreateOrderRequest(
        customer_id=str(ORDER["customer_id"]),
        customer_name=str(ORDER["customer_name"]),
        customer_email=str(ORDER["customer_email"]),
        currency=str(ORDER["currency"]),
        shipping_address=orders_pb2.ShippingAddress(**address),
        items=[orders_pb2.OrderItem(sku="BENCH-1", quantity=1)],
    )


async def _load_grpc(target: str, seconds: float, concurrency: int, run: Run) -> None:
    latencies: list[float] = []
    errors = 0
    create = _create_request()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = orders_pb2_grpc.OrdersStub(channel)
        stop_at = time.perf_counter() + seconds

        async def client_loop() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    created = await stub.CreateOrder(create, metadata=METADATA, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                t1 = time.perf_counter()
                latencies.append(t1 - t0)
                place = orders_pb2.PlaceOrderRequest(
                    order_id=created.order_id, payment_method=str(PLACE["payment_method"])
                )
                try:
                    await stub.PlaceOrder(place, metadata=METADATA, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t1)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    run.commands, run.errors = len(ms), errors
    run.p50, run.p95, run.p99 = (percentile(ms, q) for q in (50, 95, 99))


async def measure_commands(report: Report, seconds: float, workdir: Path) -> None:
    runs: dict[str, Run] = {}
    async with scratch_pg_database("cairn_bench_grpc") as url:
        http_port, grpc_port = _free_port(), _free_port()
        proc = _start(url, http_port, grpc_port, workdir / "commands.log")
        http_url, target = f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}"
        try:
            await _wait_ready(http_url, proc)
            await _register_product(http_url)
            for transport in ("gRPC", "REST"):
                run = Run(transport)
                warm = min(2.0, seconds / 4)
                if transport == "gRPC":
                    await _load_grpc(target, warm, CONCURRENCY, Run(transport))
                else:
                    await _load_httpx(http_url, warm, CONCURRENCY, Run(transport))
                server0, client0 = _cpu_seconds(proc.pid), _client_cpu()
                if transport == "gRPC":
                    await _load_grpc(target, seconds, CONCURRENCY, run)
                else:
                    await _load_httpx(http_url, seconds, CONCURRENCY, run)
                run.server_cpu = _cpu_seconds(proc.pid) - server0
                run.client_cpu = _client_cpu() - client0
                runs[transport] = run
        finally:
            _stop(proc)
    for transport, run in runs.items():
        per = max(run.commands, 1)
        detail = f"{CONCURRENCY} clients, {run.seconds:.1f} s, {run.errors} errors"
        report.add(f"{transport} CreateOrder+PlaceOrder", run.rate, "commands/s", detail)
        report.add(f"  {transport} p50 / p99", run.p50, "ms", f"p99 {run.p99:.1f} ms")
        report.add(f"  {transport} server CPU per command", run.server_cpu / per * 1000, "ms")
        report.add(f"  {transport} client CPU per command", run.client_cpu / per * 1000, "ms")
    if runs["REST"].rate:
        report.checks["gRPC/REST commands/s"] = {
            "value": round(runs["gRPC"].rate / runs["REST"].rate, 3),
            "goal": "report",
            "met": True,
        }
    report.notes.append(
        "REST client: httpx (Python); gRPC client: grpc.aio; server: cairn serve --no-workers "
        "on PostgreSQL, its CPU from /proc; a bearer token on both"
    )


async def run(quick: bool) -> Report:
    report = Report("grpc")
    with tempfile.TemporaryDirectory(prefix="cairn-bench-grpc-") as tmp:
        workdir = Path(tmp)
        await measure_catch_up(report, QUICK_EVENTS if quick else EVENTS, workdir)
        await measure_commands(report, QUICK_SECONDS if quick else SECONDS, workdir)
    report.notes.append(f"cores: {os.cpu_count()}; everything shares them (noisy)")
    return report
