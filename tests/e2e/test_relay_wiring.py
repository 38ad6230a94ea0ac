"""With ``CAIRN_BROKER_URL`` set, ``cairn serve`` runs the relay and reports it."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
from e2e_server import ADMIN, MUG, OPERATOR, Server, free_port, wait_for

from cairn.relay import jetstream_stream_name


def test_serve_runs_the_relay_when_a_broker_is_configured(
    sqlite_url: str, nats_url: str, tmp_path: Path
) -> None:
    topic = f"cairn.e2e{uuid.uuid4().hex[:8]}"
    server = Server(sqlite_url, tmp_path, CAIRN_BROKER_URL=nats_url, CAIRN_BROKER_TOPIC=topic)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            r = client.post("/api/v1/products", json=MUG, headers=OPERATOR)
            assert r.status_code == 201
            position = r.json()["position"]
            health = wait_for(
                client,
                "/api/v1/admin/health",
                lambda b: b["components"]["relay"].get("position", 0) >= position,
            )
            assert health["components"]["broker"]["status"] == "ok"
            assert health["components"]["relay"]["lag_events"] == 0
            metrics = client.get("/metrics", headers=ADMIN).text
            assert "cairn_relay_lag_events 0.0" in metrics
    finally:
        assert server.stop() == 0
        asyncio.run(_delete_stream(nats_url, jetstream_stream_name(topic)))


async def _delete_stream(url: str, name: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


def test_serve_reports_an_unreachable_broker_within_5_s_in_health_and_metrics(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SPEC §12: a broker on a closed port shows as the relay ``backing_off`` with its cause,
    the broker's breaker and the relay state in ``/metrics``; the API keeps serving."""
    broker = f"nats://127.0.0.1:{free_port()}"
    server = Server(sqlite_url, tmp_path, CAIRN_BROKER_URL=broker)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            started = time.monotonic()
            health = wait_for(
                client,
                "/api/v1/admin/health",
                lambda b: b["components"]["relay"].get("state") == "backing_off",
                timeout=5.0,
            )
            assert time.monotonic() - started < 5.0
            relay = health["components"]["relay"]
            assert "cannot connect to NATS" in relay["last_error"]
            assert health["status"] == "degraded"
            assert "broker" in health["components"]["circuit_breakers"]["breakers"]
            metrics = client.get("/metrics", headers=ADMIN).text
            assert 'cairn_relay_state{state="backing_off"} 1.0' in metrics
            assert 'cairn_circuit_breaker_state{breaker="broker"}' in metrics
            ready = client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["relay"] == "backing_off"
            assert client.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code == 201
    finally:
        assert server.stop() == 0
    assert server.log().count("-> backing_off") == 1
