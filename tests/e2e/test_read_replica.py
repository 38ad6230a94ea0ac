"""The query service on a PostgreSQL hot standby (``CAIRN_READ_DATABASE_URL``, SPEC §15): its
queries read the replica, ``min_position`` waits until the replica has replayed the read model's
checkpoint (503 with ``Retry-After`` when it does not in time), and every write stays on the
primary. The replica is a real second postmaster made by the test (see ``pg_replica``), and
its replay is paused and resumed to make its lag as long as the test needs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from e2e_server import ADMIN, CUSTOMER_1, MUG, OPERATOR, Server, order_body
from pg_replica import Replica
from service_processes import SMALL, Service


@pytest.fixture(scope="module")
def replica() -> Iterator[Replica]:
    """One standby for the module: databases created later replicate to it too."""
    standby = Replica()
    try:
        standby.start()
        yield standby
    finally:
        standby.stop()


@pytest.fixture
def services(pg_url: str, replica: Replica, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """A command service with the workers on the primary, and a query service without workers
    reading the replica."""
    database = pg_url.rsplit("/", 1)[1]
    command = Service(pg_url, tmp_path, args=("--only", "command"), **SMALL)
    query = Service(
        pg_url,
        tmp_path,
        args=("--only", "query", "--no-workers"),
        CAIRN_READ_DATABASE_URL=replica.url(database),
        # Long enough for a replica that replays a new commit within a few WAL retries (100 ms
        # each) on a loaded machine; the paused replica's 503 waits this long.
        CAIRN_READ_YOUR_WRITES_TIMEOUT="3",
        **SMALL,
    )
    try:
        replica.catch_up()  # the command service's tables, before the first query
        yield command, query
    finally:
        assert query.stop() == 0, query.log()
        assert command.stop() == 0, command.log()


def _paused(replica: Replica, paused: bool) -> None:
    with psycopg.connect(replica.url("postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


def _create(command: httpx.Client) -> dict[str, object]:
    assert command.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code in (201, 409)
    r = command.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1)
    assert r.status_code == 201, r.text
    created: dict[str, object] = r.json()
    return created


def test_min_position_reads_your_write_from_the_replica(
    services: tuple[Server, Server], replica: Replica, pg_url: str
) -> None:
    command, query = services
    with psycopg.connect(replica.url(pg_url.rsplit("/", 1)[1])) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    with (
        httpx.Client(base_url=command.url, timeout=30) as c,
        httpx.Client(base_url=query.url, timeout=30) as q,
    ):
        created = _create(c)
        r = q.get(
            f"/api/v1/orders/{created['order_id']}?min_position={created['position']}",
            headers=CUSTOMER_1,
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "draft"
        assert r.json()["version"] == created["version"]


def test_a_paused_replica_answers_its_old_state_and_min_position_503s_until_it_replays(
    services: tuple[Server, Server], replica: Replica
) -> None:
    command, query = services
    with (
        httpx.Client(base_url=command.url, timeout=30) as c,
        httpx.Client(base_url=query.url, timeout=30) as q,
    ):
        created = _create(c)
        oid, position = created["order_id"], created["position"]
        assert q.get(f"/api/v1/orders/{oid}?min_position={position}", headers=ADMIN).is_success
        _paused(replica, True)
        try:
            r = c.post(f"/api/v1/orders/{oid}/cancel", json={"reason": "x"}, headers=CUSTOMER_1)
            assert r.status_code == 200, r.text
            cancelled_at = r.json()["position"]
            # The replica replays nothing now: without min_position the query service answers
            # what the replica has, and with it, 503 and Retry-After once the wait is over.
            assert q.get(f"/api/v1/orders/{oid}", headers=ADMIN).json()["status"] == "draft"
            r = q.get(f"/api/v1/orders/{oid}?min_position={cancelled_at}", headers=ADMIN)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"]
            assert r.json()["code"] == "app.read_model_behind"
        finally:
            _paused(replica, False)
        r = q.get(f"/api/v1/orders/{oid}?min_position={cancelled_at}", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled"
