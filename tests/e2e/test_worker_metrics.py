"""The split layout on PostgreSQL: ``cairn serve --no-workers`` takes the orders, a real
``cairn worker`` process runs the sagas and the relay and exports their metrics on its own
port (CAIRN_WORKER_METRICS_PORT); the API's health shows the relay it does not run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from e2e_server import (
    ADMIN,
    CAIRN,
    CUSTOMER_1,
    MUG,
    OPERATOR,
    Server,
    cairn_env,
    free_port,
    order_body,
    wait_for,
)
from prometheus_client.parser import text_string_to_metric_families
from service_processes import Worker
from test_relay_wiring import _delete_stream

from cairn.relay import jetstream_stream_name

PG_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("CAIRN_TEST_NATS_URL", "nats://127.0.0.1:4222")


@dataclass
class Split:
    api: Server
    worker: Worker
    metrics_url: str


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    """One API without workers and one worker over a database of their own and a NATS topic."""
    workdir = tmp_path_factory.mktemp("split")
    name = f"cairn_t_{uuid.uuid4().hex[:12]}"
    topic = f"cairn.e2e{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    broker = {"CAIRN_BROKER_URL": NATS_URL, "CAIRN_BROKER_TOPIC": topic}
    port = free_port()
    try:
        api = Server(url, workdir, args=("--no-workers",), **broker)
        worker = Worker(url, workdir, "--metrics-port", str(port), env=broker)
        try:
            metrics_url = f"http://127.0.0.1:{port}"
            _wait_ready(worker, metrics_url)
            yield Split(api, worker, metrics_url)
        finally:
            codes = worker.stop(), api.stop()
            assert codes == (0, 0), worker.log() + api.log()
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        asyncio.run(_delete_stream(NATS_URL, jetstream_stream_name(topic)))


def _wait_ready(worker: Worker, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.proc.poll() is None, worker.log()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"the worker's /readyz did not answer 200:\n{worker.log()}")


def _scrape(split: Split) -> dict[str, float]:
    """Every sample of the worker's /metrics: ``name{label="value",…}`` → value."""
    r = httpx.get(f"{split.metrics_url}/metrics", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
    return samples


def _saga_transitions(samples: dict[str, float]) -> float:
    return sum(v for k, v in samples.items() if k.startswith("cairn_saga_transitions_total{"))


def _place_order(api: Server) -> str:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        client.post("/api/v1/products", json=MUG, headers=OPERATOR)  # 409 after the first test
        r = client.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1)
        assert r.status_code == 201, r.text
        oid = str(r.json()["order_id"])
        r = client.post(
            f"/api/v1/orders/{oid}/place", json={"payment_method": "tok_ok"}, headers=CUSTOMER_1
        )
        assert r.status_code == 202, r.text
        wait_for(client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "confirmed")
    return oid


def test_the_worker_counts_the_saga_transitions_of_an_order_placed_through_the_api(
    split: Split,
) -> None:
    before = _saga_transitions(_scrape(split))
    _place_order(split.api)
    after = _scrape(split)
    assert _saga_transitions(after) >= before + 2  # running, then completed
    assert after['cairn_saga_transitions_total{saga="fulfilment",status="completed"}'] >= 1


def test_the_worker_exports_its_relay_state_and_circuit_breakers(split: Split) -> None:
    # Ready comes before the relay's first connection to the broker (state "stopped" until
    # then): a loaded CI machine scraped in between once.
    deadline = time.monotonic() + 30
    samples = _scrape(split)
    while samples['cairn_relay_state{state="running"}'] != 1.0 and time.monotonic() < deadline:
        time.sleep(0.1)
        samples = _scrape(split)
    assert samples['cairn_relay_state{state="running"}'] == 1.0
    assert samples['cairn_relay_state{state="stopped"}'] == 0.0
    assert "cairn_relay_lag_events{}" in samples
    for breaker in ("broker", "payment_gateway", "carrier"):
        assert samples[f'cairn_circuit_breaker_state{{breaker="{breaker}"}}'] == 0.0


def test_the_workers_metrics_want_the_admin_token_of_the_api(split: Split) -> None:
    assert httpx.get(f"{split.metrics_url}/metrics", timeout=10).status_code == 401
    customer = httpx.get(f"{split.metrics_url}/metrics", headers=CUSTOMER_1, timeout=10)
    assert customer.status_code == 403
    assert customer.json()["code"] == "auth.forbidden"


def test_the_worker_answers_healthz_and_readyz_without_a_token(split: Split) -> None:
    assert httpx.get(f"{split.metrics_url}/healthz", timeout=10).json() == {"status": "ok"}
    ready = httpx.get(f"{split.metrics_url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "event_store": "ok", "workers": "running"}


def test_the_apis_health_shows_the_relay_of_the_worker_by_its_checkpoint(split: Split) -> None:
    _place_order(split.api)
    with httpx.Client(base_url=split.api.url, timeout=30) as client:
        health = wait_for(
            client,
            "/api/v1/admin/health",
            lambda b: (
                b["components"]["relay"]["lag_events"] == 0
                and b["components"]["relay"]["position"] > 0
            ),
        )
    relay = health["components"]["relay"]
    assert relay["state"] == "not_in_this_process"
    assert relay["status"] == "ok"
    assert relay["message"] == f"runs in another process; checkpoint at {relay['position']}, " + (
        "0 events behind"
    )


def test_a_worker_whose_metrics_port_is_taken_stops_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [CAIRN, "worker", "--metrics-port", str(port)],
            cwd=tmp_path,
            env=cairn_env(f"sqlite:///{tmp_path}/cairn.db"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert f"cannot listen on 127.0.0.1:{port} for /metrics" in last
    assert last.endswith("[app.port_unavailable]")
