"""SPEC §12, forgetting whatever the read models' lag, over HTTP on real processes: a forget
answered while no projection runs finds the customer's orders in the log, deletes their
snapshots and cached views at once, says which read models are behind, and those erase the
customer (search rows included) once they catch up."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from e2e_server import ADMIN, CUSTOMER_1, MUG, OPERATOR, Server, order_body, wait_for

REDACTED = "[redacted]"


@contextmanager
def _serving(database_url: str, tmp_path: Path, *args: str, **env: str) -> Iterator[httpx.Client]:
    srv = Server(database_url, tmp_path, args=args, **env)
    try:
        with httpx.Client(base_url=srv.url, timeout=30.0) as client:
            yield client
    finally:
        assert srv.stop() == 0, srv.log()


def _create_order(client: httpx.Client) -> str:
    r = client.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1)
    assert r.status_code == 201, r.text
    order_id: str = r.json()["order_id"]
    snapshot = client.post(f"/api/v1/admin/snapshots/order-{order_id}", headers=ADMIN)
    assert snapshot.status_code == 201, snapshot.text
    return order_id


def _snapshotted_streams(database_url: str) -> set[str]:
    sql = "SELECT stream_id FROM snapshots"
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return {row[0] for row in conn.execute(sql)}
    with psycopg.connect(database_url) as conn:
        return {row[0] for row in conn.execute(sql)}


def _customer_names(database_url: str, order_ids: list[str]) -> list[str]:
    """The names the orders read model stores for ``order_ids`` (not all of them are shown)."""
    names = []
    for order_id in order_ids:
        if database_url.startswith("sqlite"):
            with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
                row = conn.execute(_NAME_SQL.replace("%s", "?"), (order_id,)).fetchone()
        else:
            with psycopg.connect(database_url) as conn:
                row = conn.execute(_NAME_SQL, (order_id,)).fetchone()
        names.append(row[0] if row else None)
    return names


_NAME_SQL = "SELECT customer_name FROM orders_view_v1 WHERE order_id = %s"


def test_a_forget_while_projections_lag_erases_every_copy_once_they_catch_up(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    cache = redis.Redis.from_url(redis_url)
    with _serving(database_url, tmp_path, CAIRN_REDIS_URL=redis_url) as live:
        assert live.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code == 201
        seen = _create_order(live)
        # Read once projected: the order's view is then cached in Redis (a read fills it; one
        # that found Redis slow leaves it to the next).
        wait_for(
            live,
            f"/api/v1/orders/{seen}",
            lambda o: bool(cache.keys(f"cairn:order:v*:{o['order_id']}")),
        )

    with _serving(database_url, tmp_path, "--no-workers", CAIRN_REDIS_URL=redis_url) as api:
        unseen = _create_order(api)
        assert _snapshotted_streams(database_url) >= {f"order-{seen}", f"order-{unseen}"}
        r = api.post("/api/v1/admin/customers/c-1/forget", headers=ADMIN)
        assert r.status_code == 200, r.text
        forgotten: dict[str, Any] = r.json()
        assert forgotten["order_ids"] == [seen, unseen]
        assert {"orders", "customers"} <= set(forgotten["pending_read_models"])
        assert not _snapshotted_streams(database_url) & {f"order-{seen}", f"order-{unseen}"}
        assert cache.keys(f"cairn:order:v*:{seen}") == []

    with _serving(database_url, tmp_path) as caught_up:
        wait_for(caught_up, f"/api/v1/orders/{unseen}", lambda o: True)
        wait_for(
            caught_up, "/api/v1/customers/c-1/summary", lambda s: s["customer_name"] == REDACTED
        )
        wait_for(caught_up, "/api/v1/orders/search?q=ada", lambda b: b["orders"] == [])
        assert _customer_names(database_url, [seen, unseen]) == [REDACTED, REDACTED]
    cache.close()


def _key_bytes(database_url: str) -> bytes:
    sql = "SELECT key FROM subject_keys WHERE subject = 'c-1'"
    if database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            row = db.execute(sql).fetchone()
    else:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(sql).fetchone()
    assert row is not None
    return bytes(row[0])


def _stored_bytes(database_url: str) -> bytes:
    """What a copy of the database would hold: the SQLite files as on disk, or every tuple in
    the pages of PostgreSQL's keys table, dead ones included."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        row = conn.execute(
            "SELECT coalesce(string_agg(t_data, ''::bytea), ''::bytea) "
            "FROM generate_series(0, pg_relation_size('subject_keys') / 8192 - 1) AS page, "
            "LATERAL heap_page_items(get_raw_page('subject_keys', page::int))"
        ).fetchone()
    return bytes(row[0]) if row else b""


def test_a_forgotten_key_leaves_no_bytes_in_the_database(database_url: str, tmp_path: Path) -> None:
    with _serving(database_url, tmp_path) as client:
        assert client.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code == 201
        _create_order(client)
        key = _key_bytes(database_url)
        assert key in _stored_bytes(database_url)
        r = client.post("/api/v1/admin/customers/c-1/forget", headers=ADMIN)
        assert r.json()["key_deleted"] is True
        assert key not in _stored_bytes(database_url)
