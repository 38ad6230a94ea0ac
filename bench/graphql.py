"""GraphQL against REST on one real ``cairn serve`` (PostgreSQL), and subscription fan-out.

    .venv/bin/python -m bench graphql [--quick]

(Run it as a module: executed as a file, ``bench/graphql.py`` would shadow the ``graphql``
package.)

1. Reads: 50 orders of 3 lines each, read as one page, over REST (``GET /api/v1/orders?limit=50``)
   and over GraphQL (``orders(first: 50) { nodes { … items { … } } }``, the same fields), by
   ``CONCURRENCY`` keep-alive httpx clients, in alternating rounds of the same length so that
   both see the same machine. Reported: requests/s and latency percentiles of each, and the
   ratio GraphQL / REST (goal: >= 0.7).
2. Fan-out: ``SUBSCRIBERS`` websockets in this process, each subscribed to
   ``orderStatusChanged`` of its own order; every order is then placed, and the saga confirms
   it. Each subscriber checks it got ``placed`` then ``confirmed``, in order; the delivery
   latency of a change is when it arrived here minus when its event was recorded
   (``recordedAt``; one clock, one machine). Reported: delivery p50/p99/max, and how many
   subscriptions missed a change (goal: none).

The client shares the machine's cores with the server and PostgreSQL: figures are the service
and its load generator together; compare the two sides of one run, not runs on other hosts.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.common import Report, percentile, scratch_pg_database
from bench.http import HEADERS, ORDER, _free_port, _start, _stop, _wait_ready

CONCURRENCY = 8
ORDERS_IN_PAGE = 50
SUBSCRIBERS = 500
GOAL_RATIO = 0.7
#: How long a subscriber waits for its next message: the saga confirms 500 orders one after
#: another on a shared machine, so the last ones wait minutes.
RECEIVE_TIMEOUT = 600.0

REST_PAGE = f"/api/v1/orders?limit={ORDERS_IN_PAGE}"
GRAPHQL_PAGE = {
    "query": f"""{{ orders(first: {ORDERS_IN_PAGE}) {{ nodes {{
        id orderNumber customerId status currency total version cancellationReason
        createdAt updatedAt items {{ sku name quantity unitPrice lineTotal }}
    }} }} }}"""
}
WATCH = """subscription W($id: ID!) {
  orderStatusChanged(orderId: $id) { status version position recordedAt }
}"""
PRODUCTS = [
    {"sku": f"BENCH-{n}", "name": f"Bench {n}", "price": "1.50", "currency": "EUR"}
    for n in (1, 2, 3)
]


async def _seed_products(c: httpx.AsyncClient) -> None:
    for product in PRODUCTS:
        r = await c.post("/api/v1/products", json=product | {"initial_stock": 1_000_000})
        r.raise_for_status()


async def _create_orders(c: httpx.AsyncClient, count: int) -> tuple[list[str], int]:
    """``count`` draft orders of 3 lines (16 at a time); their ids and the last position."""
    body = ORDER | {"items": [{"sku": p["sku"], "quantity": 2} for p in PRODUCTS]}
    ids: list[str] = []
    last = 0
    gate = asyncio.Semaphore(16)

    async def one() -> None:
        nonlocal last
        async with gate:
            r = await c.post("/api/v1/orders", json=body)
        r.raise_for_status()
        ids.append(r.json()["order_id"])
        last = max(last, int(r.json()["position"]))

    await asyncio.gather(*(one() for _ in range(count)))
    return ids, last


async def _caught_up(c: httpx.AsyncClient, position: int) -> None:
    (await c.get(f"/api/v1/orders?limit=1&min_position={position}")).raise_for_status()


async def _read_load(
    c: httpx.AsyncClient, seconds: float, request: Any, check: Any
) -> tuple[int, list[float]]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            response = await request()
            latencies.append((time.perf_counter() - t0) * 1000)
            check(response)

    await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
    return len(latencies), latencies


def _rest_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert len(response.json()["orders"]) == ORDERS_IN_PAGE


def _graphql_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    assert len(body["data"]["orders"]["nodes"]) == ORDERS_IN_PAGE


async def _reads(url: str, report: Report, seconds: float, rounds: int) -> None:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, limits=limits, timeout=30) as c:
        await _seed_products(c)
        _, last = await _create_orders(c, ORDERS_IN_PAGE)
        await _caught_up(c, last)
        sides = {
            "REST": (lambda: c.get(REST_PAGE), _rest_ok),
            "GraphQL": (lambda: c.post("/graphql", json=GRAPHQL_PAGE), _graphql_ok),
        }
        for request, check in sides.values():  # warm up: connections, caches
            await _read_load(c, 1.0, request, check)
        totals: dict[str, tuple[int, list[float]]] = {name: (0, []) for name in sides}
        for _ in range(rounds):
            for name, (request, check) in sides.items():
                count, latencies = await _read_load(c, seconds, request, check)
                done, all_latencies = totals[name]
                totals[name] = (done + count, all_latencies + latencies)
    rates = {}
    for name, (count, latencies) in totals.items():
        rates[name] = count / (seconds * rounds)
        detail = f"{ORDERS_IN_PAGE} orders x 3 lines, {CONCURRENCY} clients"
        report.add(f"{name}: page of orders", rates[name], "req/s", detail)
        for q in (50, 99):
            report.add(f"{name}: p{q}", percentile(latencies, q), "ms")
    report.check("GraphQL / REST req/s", rates["GraphQL"] / rates["REST"], GOAL_RATIO)


async def _subscriber(
    url: str, order_id: str, ready: asyncio.Event, arrived: list[tuple[float, str]]
) -> None:
    """Subscribe, then record each change until ``confirmed`` (or the subscription ends)."""
    async with connect(url, subprotocols=["graphql-transport-ws"], max_queue=64) as ws:  # type: ignore[list-item]
        await _send(ws, {"type": "connection_init", "payload": HEADERS})
        assert (await _receive(ws))["type"] == "connection_ack"
        subscribe = {"query": WATCH, "variables": {"id": order_id}}
        await _send(ws, {"id": "1", "type": "subscribe", "payload": subscribe})
        first = await _receive(ws)
        assert first["payload"]["data"]["orderStatusChanged"]["status"] == "draft", first
        ready.set()
        while True:
            message = await _receive(ws)
            if message["type"] != "next":
                arrived.append((0.0, message["type"]))
                return
            change = message["payload"]["data"]["orderStatusChanged"]
            received = time.time()
            recorded = datetime.fromisoformat(change["recordedAt"]).timestamp()
            arrived.append((received - recorded, change["status"]))
            if change["status"] in ("confirmed", "cancelled"):
                return


async def _send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def _receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))
    return message


async def _fan_out(url: str, report: Report, subscribers: int) -> None:
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=60) as c:
        order_ids, _ = await _create_orders(c, subscribers)
        ws_url = url.replace("http", "ws", 1) + "/graphql"
        arrivals: dict[str, list[tuple[float, str]]] = {order_id: [] for order_id in order_ids}
        readies = [asyncio.Event() for _ in order_ids]
        opened = time.perf_counter()
        tasks = [
            asyncio.create_task(_subscriber(ws_url, order_id, ready, arrivals[order_id]))
            for order_id, ready in zip(order_ids, readies, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 300)
        report.add("subscribers connected", subscribers, "subscriptions")
        report.add("time to subscribe all", time.perf_counter() - opened, "s")
        gate = asyncio.Semaphore(16)

        async def place(order_id: str) -> None:
            async with gate:
                r = await c.post(
                    f"/api/v1/orders/{order_id}/place", json={"payment_method": "tok_ok"}
                )
            r.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(place(order_id) for order_id in order_ids))
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        report.add("place and confirm all", time.perf_counter() - started, "s")
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            report.notes.append(f"{len(failed)} subscribers failed, e.g. {failed[0]!r}")
        statuses = await _final_statuses(c, order_ids)
    delays = [delay * 1000 for found in arrivals.values() for delay, _ in found if delay]
    seen = {order_id: [status for _, status in found] for order_id, found in arrivals.items()}
    in_order = sum(seen[o] == ["placed", statuses[o]] for o in order_ids)
    report.add("status changes delivered", len(delays), "messages")
    for q in (50, 99):
        report.add(f"delivery p{q}", percentile(delays, q), "ms", "arrival - recordedAt")
    report.add("delivery max", max(delays), "ms")
    report.add(
        "orders confirmed by the saga", sum(s == "confirmed" for s in statuses.values()), "orders"
    )
    report.check(
        "subscriptions that saw every change (placed, then confirmed or cancelled)",
        in_order,
        subscribers,
    )
    missed = [(o, seen[o], statuses[o]) for o in order_ids if seen[o] != ["placed", statuses[o]]]
    if missed:
        report.notes.append(f"{len(missed)} saw less than their order did, e.g. {missed[:3]}")


async def _final_statuses(c: httpx.AsyncClient, order_ids: list[str]) -> dict[str, str]:
    statuses = {}
    for order_id in order_ids:
        r = await c.get(f"/api/v1/orders/{order_id}")
        statuses[order_id] = r.json().get("status", "?") if r.status_code == 200 else "?"
    return statuses


async def run(quick: bool) -> Report:
    report = Report("graphql")
    seconds, rounds = (3.0, 1) if quick else (8.0, 2)
    subscribers = 100 if quick else SUBSCRIBERS
    async with scratch_pg_database("bench_graphql") as database_url:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as tmp:
            proc = _start(["serve", "--port", str(port)], database_url, Path(tmp) / "serve.log")
            try:
                await _wait_ready(url, proc)
                await _reads(url, report, seconds, rounds)
                await _fan_out(url, report, subscribers)
            finally:
                _stop(proc)
                errors = [
                    line
                    for line in (Path(tmp) / "serve.log").read_text().splitlines()
                    if "error" in line.lower()
                ]
                report.notes.extend(f"serve log: {line[:300]}" for line in errors[:5])
    report.notes.append(
        f"one cairn serve (API and workers) on PostgreSQL; httpx and websockets clients in the "
        f"benchmark process; reads: {rounds} alternating round(s) of {seconds:.0f} s per side"
    )
    return report
