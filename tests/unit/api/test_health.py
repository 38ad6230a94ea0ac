"""Liveness, readiness, component health and metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from api_tokens import ADMIN

import cairn
from cairn import NewEvent
from cairn.api import status
from cairn.projections import ProjectionStatus
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
    for name in ("redis", "broker"):
        assert components[name]["status"] == "not_configured"
        assert components[name]["message"] == "not configured"


async def test_admin_health_carries_timestamp_version_and_a_message_per_component(
    bare_client: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC)
    body = (await bare_client.get("/api/v1/admin/health", headers=ADMIN)).json()
    # The fields the contract has had from the start are all still there.
    # (No workers run in these tests: the projections are stopped, so "degraded".)
    assert body["status"] == "degraded"
    assert isinstance(body["uptime_seconds"], float | int)
    assert body["components"]["read_models"] == "degraded"
    assert {"head_position", "backend", "latency_ms"} <= body["components"]["event_store"].keys()
    # RFC 3339, UTC, now.
    assert body["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(body["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC) + timedelta(seconds=1)
    assert body["version"] == cairn.__version__
    components = {k: v for k, v in body["components"].items() if isinstance(v, dict)}
    assert {"event_store", "redis", "broker", "projections", "sagas", "relay", "workers"} <= set(
        components
    )
    for name, component in components.items():
        assert isinstance(component["message"], str), name
        assert component["message"], name
        assert "\n" not in component["message"], name
    assert components["event_store"]["message"] == "memory answers, log head at position 0"
    assert components["workers"]["message"] == "not running in this process"
    assert components["sagas"]["message"] == "no sagas"
    projections = components["projections"]
    assert projections["message"] == status.projections_message(
        [ProjectionStatus(**row) for row in projections["projections"]]
    )


def _projection(name: str, lag: int, state: str) -> ProjectionStatus:
    return ProjectionStatus(
        name=name,
        position=9 - lag,
        lag_events=lag,
        lag_seconds=0.1 * lag,
        state=state,
        errors=0,
        last_error=None,
        parked=0,
        owner=None,
        version=1,
    )


async def test_component_messages_say_what_is_wrong(
    bare_client: httpx.AsyncClient, bare_store: MemoryEventStore
) -> None:
    assert status.projections_message([]) == "no projections"
    live = [_projection("orders", 2, "catching_up"), _projection("inventory", 0, "running")]
    assert status.projections_message(live) == "2 projections live, lag 2"
    stopped = [live[0], _projection("search", 9, "stopped")]
    assert status.projections_message(stopped) == "1 of 2 projections not running: search"
    bare_store.head_position = _fail  # type: ignore[method-assign]
    body = (await bare_client.get("/api/v1/admin/health", headers=ADMIN)).json()
    message = body["components"]["event_store"]["message"]
    assert message == "event store unreachable: database is gone"


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


async def test_metrics_include_the_standard_process_and_python_metrics(
    bare_client: httpx.AsyncClient,
) -> None:
    text = (await bare_client.get("/metrics", headers=ADMIN)).text
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    assert {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "python_info",
        "python_gc_collections_total",
        "python_gc_objects_collected_total",
    } <= samples
    rss = next(line for line in text.splitlines() if line.startswith("process_resident_memory"))
    assert float(rss.split()[-1]) > 1e6
