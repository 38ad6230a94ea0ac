"""Liveness, readiness, component health and metrics."""

from __future__ import annotations

import httpx
from api_tokens import ADMIN

from cairn import NewEvent
from cairn.store.memory import MemoryEventStore


async def test_healthz_needs_no_token(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_needs_no_token_and_reports_the_store(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["event_store"] == "ok"


async def test_admin_health_reports_unconfigured_redis_and_broker(
    bare_client: httpx.AsyncClient,
) -> None:
    r = await bare_client.get("/api/v1/admin/health", headers=ADMIN)
    assert r.status_code == 200
    components = r.json()["components"]
    assert components["event_store"]["status"] == "ok"
    assert components["redis"] == {"status": "not_configured"}
    assert components["broker"] == {"status": "not_configured"}


async def _fail() -> int:
    raise ConnectionError("database is gone")


async def test_admin_health_is_503_when_the_store_is_unreachable(
    bare_client: httpx.AsyncClient, bare_store: MemoryEventStore
) -> None:
    bare_store.head_position = _fail  # type: ignore[method-assign]
    r = await bare_client.get("/api/v1/admin/health", headers=ADMIN)
    assert r.status_code == 503
    assert r.json()["components"]["event_store"]["status"] == "down"
    assert (await bare_client.get("/readyz")).status_code == 503


async def test_metrics_show_the_log_head_and_http_requests(
    bare_client: httpx.AsyncClient, bare_store: MemoryEventStore
) -> None:
    await bare_store.append("thing-1", [NewEvent("Happened", {})])
    await bare_client.get("/healthz")
    text = (await bare_client.get("/metrics", headers=ADMIN)).text
    assert "cairn_log_head_position 1.0" in text
    assert 'cairn_http_requests_total{method="GET",route="/healthz",status="200"}' in text


async def test_metrics_count_commands_sent_by_anyone_through_the_bus(
    bare_client: httpx.AsyncClient,
) -> None:
    r = await bare_client.post(
        "/api/v1/products",
        json={"sku": "M-1", "name": "M", "price": "1.00", "currency": "EUR"},
        headers=ADMIN,
    )
    assert r.status_code == 201
    refused = await bare_client.post(
        "/api/v1/products/NOPE/stock", json={"quantity": 1}, headers=ADMIN
    )
    assert refused.status_code == 404
    text = (await bare_client.get("/metrics", headers=ADMIN)).text
    assert (
        'cairn_command_duration_seconds_count{command="RegisterProduct",outcome="ok"} 1.0' in text
    )
    assert 'command="ReplenishStock",outcome="rejected"' in text
