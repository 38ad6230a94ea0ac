"""Seed 004's service shape as processes (SPEC §15, §9): command, query and admin services and
workers on one PostgreSQL database.

The load test runs 2 command services, 1 query service (on a hot standby of the database) and
2 worker processes while concurrent clients create and place orders; one of each kind is
killed with SIGKILL mid-run and restarted. Afterwards every acknowledged order and placement is
there, and every saga has finished.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from e2e_server import (
    ADMIN,
    CAIRN,
    CUSTOMER_1,
    MUG,
    OPERATOR,
    Server,
    cairn_env,
    order_body,
    wait_for,
)
from pg_replica import Replica
from service_processes import SMALL, Service, Worker

CLIENTS = 4
LOAD_SECONDS = 10.0


# --- three single-role services ----------------------------------------------------------------


@pytest.fixture
def three_services(database_url: str, tmp_path: Path) -> Iterator[dict[str, Server]]:
    """On PostgreSQL and on one SQLite file; each runs the workers too (leases share them)."""
    services: dict[str, Server] = {}
    try:
        for role in ("command", "query", "admin"):
            services[role] = Service(database_url, tmp_path, args=("--only", role), **SMALL)
        yield services
    finally:
        for server in services.values():
            assert server.stop() == 0, server.log()


def test_three_single_role_services_on_one_database_run_the_order_flow(
    three_services: dict[str, Server],
) -> None:
    urls = {role: server.url for role, server in three_services.items()}
    with (
        httpx.Client(base_url=urls["command"], timeout=30) as command,
        httpx.Client(base_url=urls["query"], timeout=30) as query,
        httpx.Client(base_url=urls["admin"], timeout=30) as admin,
    ):
        assert command.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code == 201
        created = command.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1).json()
        oid = created["order_id"]
        r = command.post(
            f"/api/v1/orders/{oid}/place", json={"payment_method": "tok_ok"}, headers=CUSTOMER_1
        )
        assert r.status_code == 202, r.text
        order = wait_for(query, f"/api/v1/orders/{oid}", lambda o: o["status"] == "confirmed")
        assert order["order_number"] == created["order_number"]
        saga = wait_for(
            admin, "/api/v1/admin/sagas?status=completed", lambda b: len(b["sagas"]) == 1
        )
        assert saga["sagas"][0]["order_id"] == oid
        events = admin.get(f"/api/v1/admin/events/order-{oid}", headers=ADMIN).json()["events"]
        assert "OrderConfirmed" in [e["type"] for e in events]
        # Each serves only its own API.
        assert (
            query.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1).status_code == 404
        )
        assert command.get(f"/api/v1/orders/{oid}", headers=CUSTOMER_1).status_code == 404
        assert admin.get(f"/api/v1/orders/{oid}", headers=ADMIN).status_code == 404
        assert query.get("/api/v1/admin/health", headers=ADMIN).status_code == 404
        for client in (command, query, admin):
            assert client.get("/readyz").status_code == 200
            assert client.get("/metrics", headers=ADMIN).status_code == 200


def test_a_worker_of_projections_only_runs_no_sagas(pg_url: str, tmp_path: Path) -> None:
    api = Service(pg_url, tmp_path, args=("--no-workers",), **SMALL)
    worker = Worker(pg_url, tmp_path, "--only", "projections")
    try:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            assert client.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code == 201
            created = client.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1).json()
            oid = created["order_id"]
            client.post(f"/api/v1/orders/{oid}/place", json={}, headers=CUSTOMER_1)
            order = wait_for(client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "placed")
            assert order["order_id"] == oid
            time.sleep(1.5)  # a saga worker would have confirmed it by now
            assert client.get(f"/api/v1/orders/{oid}", headers=ADMIN).json()["status"] == "placed"
        started = '"components": ["projections"], "event": "workers_started"'
        assert started in worker.log_path.read_text()
    finally:
        assert worker.stop() == 0, worker.log()
        assert api.stop() == 0, api.log()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["worker", "--only", "projections,mailer"], "unknown worker 'mailer'"),
        (["serve", "--only", "command,writes"], "unknown service role 'writes'"),
    ],
)
def test_an_unknown_only_is_refused_in_one_line(
    pg_url: str, tmp_path: Path, command: list[str], message: str
) -> None:
    done = subprocess.run(
        [CAIRN, *command],
        cwd=tmp_path,
        env=cairn_env(pg_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# --- under load, one of each kind killed ------------------------------------------------------


@dataclass
class Ledger:
    """What the services acknowledged, and the highest position they answered."""

    created: set[str] = field(default_factory=set)
    placed: set[str] = field(default_factory=set)
    position: int = 0
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, kind: set[str], order_id: str, position: int) -> None:
        with self.lock:
            kind.add(order_id)
            self.position = max(self.position, position)


class CommandPool:
    """The command services' URLs, which change when one is restarted."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self._turn = itertools.count()
        self.lock = threading.Lock()

    def url(self) -> str:
        with self.lock:
            return self.servers[next(self._turn) % len(self.servers)].url

    def replace(self, index: int, server: Server) -> None:
        with self.lock:
            self.servers[index] = server


def _client_loop(pool: CommandPool, ledger: Ledger, stop: threading.Event) -> None:
    """Create and place orders until ``stop``; a request that gets no answer (its service was
    killed) is not acknowledged, and the client moves on to the next order."""
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            try:
                r = client.post(
                    f"{pool.url()}/api/v1/orders", json=order_body(), headers=CUSTOMER_1
                )
                if r.status_code != 201:
                    ledger.refused.append(f"create {r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                ledger.ack(ledger.created, body["order_id"], body["position"])
                r = client.post(
                    f"{pool.url()}/api/v1/orders/{body['order_id']}/place",
                    json={"payment_method": "tok_ok"},
                    headers=CUSTOMER_1,
                )
                if r.status_code != 202:
                    ledger.refused.append(f"place {r.status_code} {r.text[:200]}")
                    continue
                ledger.ack(ledger.placed, body["order_id"], r.json()["position"])
            except httpx.TransportError:
                time.sleep(0.05)


def _customer_orders(query: httpx.Client, min_position: int) -> dict[str, str]:
    """Every order of customer c-1 and its status, all pages (none while the replica has not
    replayed ``min_position``: 503)."""
    seen: dict[str, str] = {}
    path = f"/api/v1/customers/c-1/orders?limit=500&min_position={min_position}"
    while True:
        r = query.get(path, headers=CUSTOMER_1)
        if r.status_code == 503:
            assert r.headers["retry-after"]
            return {}
        assert r.status_code == 200, r.text
        page = r.json()
        seen.update({o["order_id"]: o["status"] for o in page["orders"]})
        if not page["next_cursor"]:
            return seen
        path = f"/api/v1/customers/c-1/orders?limit=500&cursor={page['next_cursor']}"


@pytest.fixture(scope="module")
def replica() -> Iterator[Replica]:
    standby = Replica()
    try:
        standby.start()
        yield standby
    finally:
        standby.stop()


@pytest.mark.timeout(300)  # about 60 s on an idle machine; each start is slower on a busy one
def test_services_and_workers_killed_under_load_lose_nothing_and_finish_every_saga(
    pg_url: str, replica: Replica, tmp_path: Path
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    command_args: tuple[str, ...] = ("--only", "command", "--no-workers")
    query_args: tuple[str, ...] = ("--only", "query", "--no-workers")
    query_env = {**SMALL, "CAIRN_READ_DATABASE_URL": replica.url(database)}
    running: list[Server | Worker] = []  # everything started, for the clean-up

    def serve(args: tuple[str, ...], env: dict[str, str] = SMALL) -> Server:
        server = Service(pg_url, tmp_path, args=args, **env)
        running.append(server)
        return server

    def work(*args: str) -> Worker:
        worker = Worker(pg_url, tmp_path, *args)
        running.append(worker)
        return worker

    stop = threading.Event()
    try:
        workers = [work(), work("--only", "projections,sagas,deadlines")]
        admin_args: tuple[str, ...] = ("--only", "admin", "--no-workers")
        with ThreadPoolExecutor(4) as starting:  # each waits for its /healthz: start together
            *commands, query, admin = starting.map(
                serve,
                [command_args, command_args, query_args, admin_args],
                [SMALL, SMALL, query_env, SMALL],
            )
        pool = CommandPool(commands)
        ledger = Ledger()
        stock = {**MUG, "initial_stock": 100_000}
        with httpx.Client(base_url=commands[0].url, timeout=30) as c:
            assert c.post("/api/v1/products", json=stock, headers=OPERATOR).status_code == 201
        clients = [
            threading.Thread(target=_client_loop, args=(pool, ledger, stop)) for _ in range(CLIENTS)
        ]
        for thread in clients:
            thread.start()
        started = time.monotonic()

        def at(second: float) -> None:
            time.sleep(max(0.0, started + second - time.monotonic()))

        # Each killed process is restarted at once; the load goes on while it starts.
        restarting = ThreadPoolExecutor(1)
        at(3)
        victim = random.randrange(2)
        commands[victim].kill()
        restarted_command = restarting.submit(lambda: pool.replace(victim, serve(command_args)))
        at(5)
        workers[0].kill()
        workers[0] = work()
        at(7)
        query.kill()
        restarted_query = restarting.submit(serve, query_args, query_env)
        at(LOAD_SECONDS)
        restarted_command.result()
        query = restarted_query.result()
        restarting.shutdown()
        stop.set()
        for thread in clients:
            thread.join(timeout=30)

        assert not ledger.refused, ledger.refused[:5]
        assert len(ledger.placed) > 20, "the load placed too few orders to mean anything"
        with (
            httpx.Client(base_url=query.url, timeout=30) as q,
            httpx.Client(base_url=admin.url, timeout=30) as a,
        ):
            # Every saga finished: none left running or compensating, one per placed order.
            body = wait_for(
                a,
                "/api/v1/admin/sagas?limit=1000",
                lambda b: (
                    all(s["status"] == "completed" for s in b["sagas"])
                    and len(b["sagas"]) >= len(ledger.placed)
                ),
                timeout=45,
            )
            assert ledger.placed <= {s["order_id"] for s in body["sagas"]}
            # Every acknowledged order is in the read model (read on the replica, once it has
            # replayed everything acknowledged), and every acknowledged placement confirmed.
            deadline = time.monotonic() + 30
            while True:
                seen = _customer_orders(q, ledger.position)
                unconfirmed = {o for o in ledger.placed if seen.get(o) != "confirmed"}
                if not unconfirmed or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert ledger.created <= seen.keys()
            assert not unconfirmed, sorted(unconfirmed)[:5]
    finally:
        stop.set()
        for process in running:
            process.stop()
