"""The fault scenario shared by ``tests/faults`` and ``python -m bench faults``: N clients create
and place orders with ``Idempotency-Key`` against a real ``cairn serve`` and retry on 503 and
connection errors, while a fault is injected; afterwards every acknowledged command is checked
against the log, the sagas and the orders read model.

Every response is kept per key, so a retried key can be checked for the first outcome, and
every 5xx for its problem document and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from e2e_server import ADMIN, CUSTOMER_1, OPERATOR, order_body

#: Saga statuses with nothing left to do.
TERMINAL = frozenset({"completed", "failed", "timed_out"})
#: Order statuses the fulfilment saga leaves an order in.
SETTLED = frozenset({"confirmed", "cancelled", "shipped", "delivered"})
PRODUCT = {
    "sku": "FAULT-1",
    "name": "Fault mug",
    "price": "3.00",
    "currency": "EUR",
    "initial_stock": 1_000_000,
}


@dataclass
class Attempt:
    at: float
    status: int | None  # None: no HTTP answer (connection refused, reset, client timeout)
    body: Any = None
    retry_after: str | None = None
    content_type: str = ""
    error: str | None = None


@dataclass
class Command:
    """One command sent with one Idempotency-Key, and every attempt at it."""

    name: str
    key: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Attempt | None:
        answered = [a for a in self.attempts if a.status is not None and a.status != 503]
        return answered[-1] if answered else None

    @property
    def acknowledged(self) -> bool:
        final = self.final
        return final is not None and final.status in (200, 201, 202)

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1


@dataclass
class Order:
    create: Command
    place: Command | None = None
    order_id: str | None = None


@dataclass
class Load:
    """What the clients sent and got."""

    orders: list[Order] = field(default_factory=list)
    probes: list[tuple[float, str, int | None, Any]] = field(default_factory=list)

    def commands(self) -> Iterator[Command]:
        for order in self.orders:
            yield order.create
            if order.place is not None:
                yield order.place

    def attempts(self) -> Iterator[Attempt]:
        for command in self.commands():
            yield from command.attempts

    def statuses(self) -> Counter[int | None]:
        return Counter(a.status for a in self.attempts())

    def requests_between(self, start: float, end: float) -> int:
        return sum(1 for a in self.attempts() if start <= a.at <= end)


async def _send(
    client: httpx.AsyncClient, command: Command, path: str, body: Any, stop_at: float
) -> Attempt:
    """Send until answered with something other than 503 (or ``stop_at``); the last attempt."""
    delay = 0.1
    while True:
        try:
            r = await client.post(
                path, json=body, headers={**CUSTOMER_1, "Idempotency-Key": command.key}
            )
            try:
                payload: Any = r.json()
            except ValueError:
                payload = r.text
            attempt = Attempt(
                time.monotonic(),
                r.status_code,
                payload,
                r.headers.get("retry-after"),
                r.headers.get("content-type", ""),
            )
        except httpx.TransportError as exc:
            attempt = Attempt(time.monotonic(), None, error=f"{type(exc).__name__}: {exc}")
        command.attempts.append(attempt)
        if attempt.status is not None and attempt.status != 503:
            return attempt
        if time.monotonic() > stop_at:
            return attempt
        if attempt.retry_after and attempt.retry_after.isdigit():
            delay = min(float(attempt.retry_after), 1.0)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def _client(
    client: httpx.AsyncClient, load: Load, stop: asyncio.Event, patience: float
) -> None:
    while not stop.is_set():
        create = Command("create", f"create-{uuid.uuid4()}")
        order = Order(create)
        load.orders.append(order)
        final = await _send(
            client,
            create,
            "/api/v1/orders",
            order_body(items=[{"sku": "FAULT-1", "quantity": 1}]),
            time.monotonic() + patience,
        )
        if final.status != 201:
            continue
        order.order_id = str(final.body["order_id"])
        order.place = Command("place", f"place-{uuid.uuid4()}")
        await _send(
            client,
            order.place,
            f"/api/v1/orders/{order.order_id}/place",
            {"payment_method": "tok_ok"},
            time.monotonic() + patience,
        )


async def _probe(client: httpx.AsyncClient, load: Load, stop: asyncio.Event) -> None:
    """Health, readiness and liveness, twice a second."""
    while not stop.is_set():
        for path, headers in (
            ("/healthz", {}),
            ("/readyz", {}),
            ("/api/v1/admin/health", ADMIN),
        ):
            try:
                r = await client.get(path, headers=headers)
                load.probes.append((time.monotonic(), path, r.status_code, r.json()))
            except (httpx.TransportError, ValueError) as exc:
                load.probes.append((time.monotonic(), path, None, repr(exc)))
        await asyncio.sleep(0.5)


async def setup_catalogue(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post("/api/v1/products", json=PRODUCT, headers=OPERATOR)
        assert r.status_code in (201, 409), r.text


async def under_load(
    url: str,
    fault: Callable[[], Awaitable[None]],
    *,
    clients: int = 6,
    warmup: float = 2.0,
    cooldown: float = 2.0,
    patience: float = 60.0,
    request_timeout: float = 30.0,
) -> tuple[Load, float, float]:
    """Run ``clients`` order clients, ``fault()`` after ``warmup`` s, and ``cooldown`` s after
    it returned; the load, and when the fault started and ended (monotonic)."""
    load = Load()
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=request_timeout, limits=limits) as client:
        tasks = [asyncio.create_task(_client(client, load, stop, patience)) for _ in range(clients)]
        tasks.append(asyncio.create_task(_probe(client, load, stop)))
        try:
            await asyncio.sleep(warmup)
            started = time.monotonic()
            await fault()
            ended = time.monotonic()
            await asyncio.sleep(cooldown)
        finally:
            stop.set()
        await asyncio.gather(*tasks)
    return load, started, ended


# -- faults -----------------------------------------------------------------------------------


def database_name(database_url: str) -> str:
    return database_url.rsplit("/", 1)[1].split("?", 1)[0]


def _admin(admin_url: str, name: str, allow: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def database_outage(
    admin_url: str, database_url: str, seconds: float
) -> Callable[[], Awaitable[None]]:
    """The fault: the test's database refuses connections and loses its sessions for
    ``seconds`` (only that database: ``ALLOW_CONNECTIONS false`` and its backends terminated,
    from an admin connection to another database)."""
    name = database_name(database_url)

    async def fault() -> None:
        await asyncio.to_thread(_admin, admin_url, name, False)
        try:
            await asyncio.sleep(seconds)
        finally:
            await asyncio.to_thread(_admin, admin_url, name, True)

    return fault


# -- checks -----------------------------------------------------------------------------------


def problems(load: Load) -> list[str]:
    """What the answers themselves got wrong: 5xx other than 503, a 503 without problem+json or
    ``Retry-After``, a retried key whose answers differ."""
    found: list[str] = []
    for command in load.commands():
        for a in command.attempts:
            if a.status is not None and a.status >= 500:
                if a.status != 503:
                    found.append(f"{command.name} {command.key}: {a.status} {a.body}")
                elif not a.retry_after or not a.content_type.startswith("application/problem+json"):
                    found.append(f"{command.name} {command.key}: 503 without Retry-After/problem")
        answered = [a for a in command.attempts if a.status is not None and a.status != 503]
        first = answered[0] if answered else None
        for later in answered[1:]:
            if (later.status, later.body) != (first.status, first.body):  # type: ignore[union-attr]
                found.append(
                    f"{command.name} {command.key}: first answer {first.status} {first.body}, "  # type: ignore[union-attr]
                    f"then {later.status} {later.body}"
                )
        if command.retried and command.final is not None and command.final.status == 422:
            found.append(f"{command.name} {command.key} retried and refused: {command.final.body}")
    return found


@dataclass
class Settled:
    """After the fault: how long until everything caught up, and what never did."""

    recovery_s: float
    lost: list[str]  # acknowledged commands whose events are not in the log
    behind: list[str]  # acknowledged orders whose saga or read model never caught up


async def settled(url: str, load: Load, since: float, timeout: float) -> Settled:
    """Wait until every acknowledged command is in the log, every acknowledged place has a
    terminal saga and a settled order in the read model; how long that took from ``since``
    (the database's return), and what is still missing ``timeout`` s after it."""
    started = since
    created = [o for o in load.orders if o.create.acknowledged and o.order_id]
    placed = [o for o in created if o.place is not None and o.place.acknowledged]
    missing: list[str] = ["not checked"]
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        in_log: set[str] = set()
        while time.monotonic() - started < timeout:
            missing = []
            try:
                for order in created:
                    if order.order_id in in_log:
                        continue
                    r = await client.get(
                        f"/api/v1/orders/{order.order_id}/history?limit=100", headers=ADMIN
                    )
                    types = (
                        [e["type"] for e in r.json().get("events", [])]
                        if r.status_code == 200
                        else []
                    )
                    wanted = {"OrderCreated"} | ({"OrderPlaced"} if order in placed else set())
                    if wanted <= set(types):
                        in_log.add(str(order.order_id))
                    else:
                        missing.append(f"{order.order_id}: log has {types}")
                r = await client.get("/api/v1/admin/sagas?limit=1000", headers=ADMIN)
                sagas = (
                    {s["order_id"]: s["status"] for s in r.json()["sagas"]}
                    if r.status_code == 200
                    else {}
                )
                for order in placed:
                    if sagas.get(order.order_id) not in TERMINAL:
                        missing.append(f"{order.order_id}: saga {sagas.get(order.order_id)}")
                        continue
                    r = await client.get(f"/api/v1/orders/{order.order_id}", headers=ADMIN)
                    status = r.json().get("status") if r.status_code == 200 else r.status_code
                    if status not in SETTLED:
                        missing.append(f"{order.order_id}: read model {status}")
            except (httpx.TransportError, ValueError, KeyError) as exc:
                missing.append(repr(exc))
            if not missing:
                return Settled(time.monotonic() - started, [], [])
            if os.environ.get("CAIRN_FAULTS_TRACE"):
                print(f"{time.monotonic() - started:5.1f}s behind: {len(missing)} {missing[:3]}")
                if time.monotonic() - started > 6 and "saga running" in missing[0]:
                    oid = missing[0].split(":")[0]
                    r = await client.get("/api/v1/admin/sagas?limit=1000", headers=ADMIN)
                    sid = next(x["saga_id"] for x in r.json()["sagas"] if x["order_id"] == oid)
                    r = await client.get(f"/api/v1/admin/sagas/{sid}", headers=ADMIN)
                    print("SAGA", r.text[:3000])
                    r = await client.get("/api/v1/admin/projections", headers=ADMIN)
                    print("PROJ", r.text[:1500])
            await asyncio.sleep(0.25)
    lost = [m for m in missing if ": log has" in m]
    behind = [m for m in missing if ": log has" not in m]
    return Settled(time.monotonic() - started, lost, behind)


@dataclass
class Report:
    fault: str
    duration_s: float
    requests: int
    requests_per_s_during_fault: float
    acknowledged: int
    status_5xx: int
    status_503: int
    status_500: int
    no_answer: int
    commands_lost: int
    recovery_s: float

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("fault", self.fault),
            ("fault duration (s)", f"{self.duration_s:.1f}"),
            ("requests", str(self.requests)),
            ("load during the fault (requests/s)", f"{self.requests_per_s_during_fault:.1f}"),
            ("acknowledged commands", str(self.acknowledged)),
            ("5xx answers", f"{self.status_5xx} (503: {self.status_503}, 500: {self.status_500})"),
            ("no answer (connection errors)", str(self.no_answer)),
            ("commands lost", str(self.commands_lost)),
            ("recovery (s, until every worker caught up)", f"{self.recovery_s:.1f}"),
        ]

    def table(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in self.rows())


def report(fault: str, load: Load, started: float, ended: float, after: Settled) -> Report:
    statuses = load.statuses()
    duration = max(ended - started, 1e-9)
    return Report(
        fault=fault,
        duration_s=ended - started,
        requests=sum(statuses.values()),
        requests_per_s_during_fault=load.requests_between(started, ended) / duration,
        acknowledged=sum(1 for c in load.commands() if c.acknowledged),
        status_5xx=sum(n for s, n in statuses.items() if s is not None and s >= 500),
        status_503=statuses.get(503, 0),
        status_500=statuses.get(500, 0),
        no_answer=statuses.get(None, 0),
        commands_lost=len(after.lost),
        recovery_s=after.recovery_s,
    )


#: An admin connection for fault injection: another database than the test's own.
PG_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
