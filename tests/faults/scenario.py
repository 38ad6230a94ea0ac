"""The fault scenario shared by ``tests/faults`` and ``python -m bench faults``: N clients create
and place orders with an ``Idempotency-Key`` each against a real ``cairn serve``, retrying on
503 and on connection errors, while a fault is injected; afterwards every acknowledged command
is looked up in the log, and every acknowledged place must reach a terminal saga and a settled
order in the orders read model.

Every attempt is kept per key, so a retried key can be checked for the first outcome, and every
5xx for its problem document and ``Retry-After``. Health, readiness and liveness are probed
twice a second throughout.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from e2e_server import ADMIN, CUSTOMER_1, OPERATOR, free_port, order_body

#: An admin connection for fault injection: another database than the test's own.
PG_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
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
ORDER = order_body(items=[{"sku": "FAULT-1", "quantity": 1}])


@dataclass
class Target:
    """Where the clients send requests (a restarted server listens elsewhere)."""

    url: str


@dataclass
class Attempt:
    at: float
    status: int | None  # None: no HTTP answer (connection refused or reset, client timeout)
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
    def answers(self) -> list[Attempt]:
        """The attempts answered with something other than 503."""
        return [a for a in self.attempts if a.status is not None and a.status != 503]

    @property
    def acknowledged(self) -> bool:
        return any(a.status in (200, 201, 202) for a in self.answers)


@dataclass
class Order:
    create: Command
    place: Command | None = None
    order_id: str | None = None


@dataclass
class Probe:
    at: float  # when it was sent
    path: str
    status: int | None
    body: Any


@dataclass
class Load:
    """What the clients sent and got, and when the fault started and ended (monotonic)."""

    orders: list[Order] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    began: float = 0.0
    fault_started: float = 0.0
    fault_ended: float = 0.0

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

    def answered_per_second(self, start: float, end: float) -> float:
        """Requests answered (any status) per second between ``start`` and ``end``."""
        answered = sum(1 for a in self.attempts() if a.status is not None and start <= a.at <= end)
        return answered / max(end - start, 1e-9)

    def probes_of(self, path: str, start: float, end: float) -> list[Probe]:
        return [p for p in self.probes if p.path == path and start <= p.at <= end]


async def _send(
    client: httpx.AsyncClient,
    target: Target,
    command: Command,
    path: str,
    body: Any,
    give_up_at: float,
) -> Attempt:
    """Send until answered with something other than 503 (or ``give_up_at``); the last
    attempt. Waits ``Retry-After`` (at most 1 s) or a short backoff between attempts."""
    delay = 0.1
    while True:
        try:
            r = await client.post(
                f"{target.url}{path}",
                json=body,
                headers={**CUSTOMER_1, "Idempotency-Key": command.key},
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
        if time.monotonic() > give_up_at:
            return attempt
        if attempt.retry_after and attempt.retry_after.isdigit():
            delay = min(float(attempt.retry_after), 1.0)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def _client(
    client: httpx.AsyncClient, target: Target, load: Load, stop: asyncio.Event, patience: float
) -> None:
    """Create an order, place it; again until ``stop``."""
    while not stop.is_set():
        create = Command("create", f"create-{uuid.uuid4()}")
        order = Order(create)
        load.orders.append(order)
        final = await _send(
            client, target, create, "/api/v1/orders", ORDER, time.monotonic() + patience
        )
        if final.status != 201:
            continue
        order.order_id = str(final.body["order_id"])
        order.place = Command("place", f"place-{uuid.uuid4()}")
        await _send(
            client,
            target,
            order.place,
            f"/api/v1/orders/{order.order_id}/place",
            {"payment_method": "tok_ok"},
            time.monotonic() + patience,
        )


PROBED: tuple[tuple[str, dict[str, str]], ...] = (
    ("/healthz", {}),
    ("/readyz", {}),
    ("/api/v1/admin/health", ADMIN),
)


async def _probe(
    client: httpx.AsyncClient,
    target: Target,
    load: Load,
    stop: asyncio.Event,
    path: str,
    headers: dict[str, str],
) -> None:
    """GET ``path`` twice a second (each probe path on its own, so a slow one delays no
    other)."""
    while not stop.is_set():
        sent = time.monotonic()
        try:
            r = await client.get(f"{target.url}{path}", headers=headers)
            load.probes.append(Probe(sent, path, r.status_code, r.json()))
        except (httpx.TransportError, ValueError) as exc:
            load.probes.append(Probe(sent, path, None, repr(exc)))
        await asyncio.sleep(0.5)


async def setup_catalogue(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post("/api/v1/products", json=PRODUCT, headers=OPERATOR)
        assert r.status_code in (201, 409), r.text


async def under_load(
    target: Target,
    fault: Callable[[], Awaitable[None]],
    *,
    clients: int = 6,
    warmup: float = 2.0,
    cooldown: float = 2.0,
    patience: float = 60.0,
    request_timeout: float = 30.0,
) -> Load:
    """Run ``clients`` order clients, ``fault()`` after ``warmup`` s, and ``cooldown`` s more
    after it returned."""
    load = Load(began=time.monotonic())
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=clients + len(PROBED))
    async with httpx.AsyncClient(timeout=request_timeout, limits=limits) as client:
        tasks = [
            asyncio.create_task(_client(client, target, load, stop, patience))
            for _ in range(clients)
        ]
        tasks += [
            asyncio.create_task(_probe(client, target, load, stop, path, headers))
            for path, headers in PROBED
        ]
        try:
            await asyncio.sleep(warmup)
            load.fault_started = time.monotonic()
            await fault()
            load.fault_ended = time.monotonic()
            await asyncio.sleep(cooldown)
        finally:
            stop.set()
        await asyncio.gather(*tasks)
    return load


class OwnRedis:
    """A private, non-persistent ``redis-server`` on a free port: a cache or broker a test may
    stop (never the shared one)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def _answers(self) -> bool:
        ping = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
        )
        return ping.stdout.strip() == b"PONG"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- faults -----------------------------------------------------------------------------------


def database_name(database_url: str) -> str:
    return database_url.rsplit("/", 1)[1].split("?", 1)[0]


def allow_connections(admin_url: str, database_url: str, allow: bool) -> None:
    """Let the database at ``database_url`` accept connections again, or refuse them and
    terminate its sessions (only that database's; from a connection to another one)."""
    name = database_name(database_url)
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
    """The fault: the database refuses connections and loses its sessions for ``seconds``."""

    async def fault() -> None:
        await asyncio.to_thread(allow_connections, admin_url, database_url, False)
        try:
            await asyncio.sleep(seconds)
        finally:
            await asyncio.to_thread(allow_connections, admin_url, database_url, True)

    return fault


def kill_and_restart(
    target: Target, kill: Callable[[], None], start: Callable[[], str]
) -> Callable[[], Awaitable[None]]:
    """The fault: ``kill()`` the server (SIGKILL), ``start()`` another one on the same database
    and send the clients there (its URL)."""

    async def fault() -> None:
        await asyncio.to_thread(kill)
        target.url = await asyncio.to_thread(start)

    return fault


# -- checks -----------------------------------------------------------------------------------


def problems(load: Load) -> list[str]:
    """What the answers themselves got wrong: a 5xx other than 503, a 503 without a problem
    document or ``Retry-After``, a retried key whose answers differ, a retried command refused
    (422: e.g. ``order.not_draft`` for a place whose first attempt had committed)."""
    found: list[str] = []
    for command in load.commands():
        for a in command.attempts:
            if a.status is not None and a.status >= 500 and a.status != 503:
                found.append(f"{command.name} {command.key}: {a.status} {a.body}")
            elif a.status == 503 and not (
                a.retry_after and a.content_type.startswith("application/problem+json")
            ):
                found.append(f"{command.name} {command.key}: 503 without Retry-After or problem")
        answers = command.answers
        for later in answers[1:]:
            if (later.status, later.body) != (answers[0].status, answers[0].body):
                found.append(
                    f"{command.name} {command.key}: first answered {answers[0].status} "
                    f"{answers[0].body}, then {later.status} {later.body}"
                )
        if len(command.attempts) > 1 and answers and answers[-1].status == 422:
            found.append(f"{command.name} {command.key}: retried and refused: {answers[-1].body}")
    return found


@dataclass
class Settled:
    """After the fault: how long until everything caught up, and what never did."""

    recovery_s: float
    lost: list[str]  # acknowledged commands whose events are not in the log
    behind: list[str]  # acknowledged places whose saga or read model never caught up
    health: tuple[int, Any] = (0, None)  # /api/v1/admin/health once everything caught up


async def _read_model_statuses(client: httpx.AsyncClient) -> dict[str, str]:
    """Every order's status in the orders read model (the list, page by page)."""
    statuses: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        r = await client.get("/api/v1/orders", params=params)
        r.raise_for_status()
        page = r.json()
        statuses |= {o["order_id"]: o["status"] for o in page["orders"]}
        cursor = page.get("next_cursor")
        if not cursor:
            return statuses


async def _relay_behind(client: httpx.AsyncClient) -> list[str]:
    """The relay, when the server runs one, must have published the whole log."""
    r = await client.get("/api/v1/admin/health")
    relay = r.json()["components"].get("relay") or {}
    if relay.get("status") in (None, "not_configured") or relay.get("lag_events") == 0:
        return []
    return [f"relay: {relay.get('state')}, {relay.get('lag_events')} events behind"]


async def settled(url: str, load: Load, since: float, timeout: float) -> Settled:
    """Wait until every acknowledged place has a terminal saga and a settled order in the read
    model, and a relay (if any) has published the whole log; how long that took from ``since``
    (the end of the fault). Then, untimed: every acknowledged command must be in the log (its
    order's history), and every such order must read back settled one by one
    (``GET /orders/{id}``, through the cache when there is one)."""
    created = [str(o.order_id) for o in load.orders if o.create.acknowledged and o.order_id]
    placed = {str(o.order_id) for o in load.orders if o.place is not None and o.place.acknowledged}
    behind: list[str] = ["not checked yet"]
    trace = bool(os.environ.get("CAIRN_FAULTS_TRACE"))
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=ADMIN) as client:
        while time.monotonic() - since < timeout:
            try:
                r = await client.get("/api/v1/admin/sagas?limit=1000")
                r.raise_for_status()
                sagas = {s["order_id"]: s["status"] for s in r.json()["sagas"]}
                statuses = await _read_model_statuses(client)
                behind = [
                    f"{oid}: saga {sagas.get(oid)}, read model {statuses.get(oid)}"
                    for oid in sorted(placed)
                    if sagas.get(oid) not in TERMINAL or statuses.get(oid) not in SETTLED
                ]
                if not behind:
                    behind = await _relay_behind(client)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                behind = [f"not answered: {exc!r}"]
            if not behind:
                break
            if trace:
                print(f"{time.monotonic() - since:5.1f}s: {len(behind)} behind, {behind[:3]}")
            await asyncio.sleep(0.25)
        recovery = time.monotonic() - since
        lost: list[str] = []
        for oid in created:
            r = await client.get(f"/api/v1/orders/{oid}/history?limit=100")
            types = {e["type"] for e in r.json()["events"]} if r.status_code == 200 else set()
            wanted = {"OrderCreated"} | ({"OrderPlaced"} if oid in placed else set())
            if not wanted <= types:
                lost.append(f"{oid}: the log has {sorted(types)}")
            if oid in placed and not behind:
                read = await client.get(f"/api/v1/orders/{oid}")
                status = read.json().get("status") if read.status_code == 200 else read.status_code
                if status not in SETTLED:
                    behind.append(f"{oid}: reads back {status}")
        r = await client.get("/api/v1/admin/health")
        return Settled(recovery, lost, behind, (r.status_code, r.json()))


# -- the closing note's figures -----------------------------------------------------------------


@dataclass
class Report:
    fault: str
    fault_s: float
    clients: int
    requests: int
    per_second_before: float
    per_second_during: float
    acknowledged: int
    status_5xx: int
    status_503: int
    status_500: int
    no_answer: int
    commands_lost: int
    behind: int
    recovery_s: float

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("fault injected", self.fault),
            ("fault duration (s)", f"{self.fault_s:.1f}"),
            ("clients", str(self.clients)),
            ("requests sent", str(self.requests)),
            ("answered/s before the fault", f"{self.per_second_before:.1f}"),
            ("answered/s during the fault", f"{self.per_second_during:.1f}"),
            ("commands acknowledged", str(self.acknowledged)),
            ("5xx answers", f"{self.status_5xx} (503: {self.status_503}, 500: {self.status_500})"),
            ("no answer (connection errors)", str(self.no_answer)),
            ("commands lost", str(self.commands_lost)),
            ("orders not caught up", str(self.behind)),
            ("recovery (s, fault end → all caught up)", f"{self.recovery_s:.1f}"),
        ]

    def table(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in self.rows())


def report(fault: str, clients: int, load: Load, after: Settled) -> Report:
    statuses = load.statuses()
    return Report(
        fault=fault,
        fault_s=load.fault_ended - load.fault_started,
        clients=clients,
        requests=sum(statuses.values()),
        per_second_before=load.answered_per_second(load.began, load.fault_started),
        per_second_during=load.answered_per_second(load.fault_started, load.fault_ended),
        acknowledged=sum(1 for c in load.commands() if c.acknowledged),
        status_5xx=sum(n for s, n in statuses.items() if s is not None and s >= 500),
        status_503=statuses.get(503, 0),
        status_500=statuses.get(500, 0),
        no_answer=statuses.get(None, 0),
        commands_lost=len(after.lost),
        behind=len(after.behind),
        recovery_s=after.recovery_s,
    )
