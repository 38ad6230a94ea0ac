"""SPEC §12: the circuit breakers of the services the process calls (payment gateway, carrier,
broker) are shown in ``/api/v1/admin/health`` (state, failures, openings, last error) and in
``/metrics`` (a state gauge per breaker, a counter of openings)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from api_tokens import ADMIN, TOKENS

from cairn.api.app import create_app
from cairn.orders.bootstrap import Container, bootstrap
from cairn.settings import Settings


@pytest.fixture
async def app() -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    settings = Settings(database_url="memory://", tokens=TOKENS, breaker_threshold=2)
    container = await bootstrap(settings)
    app = create_app(settings, container, run_workers=False)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
                yield client, container
    finally:
        await container.close()


async def _gateway_down(container: Container) -> None:
    """What the saga's payment steps meet when the gateway refuses connections."""

    async def refused() -> None:
        raise ConnectionRefusedError("gateway refused the connection")

    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            await container.breakers.get("payment_gateway").call(refused)


async def test_health_lists_each_breaker_closed_while_its_service_answers(
    app: tuple[httpx.AsyncClient, Container],
) -> None:
    client, _ = app
    component = (await client.get("/api/v1/admin/health", headers=ADMIN)).json()["components"][
        "circuit_breakers"
    ]
    assert component["status"] == "ok"
    assert set(component["breakers"]) == {"payment_gateway", "carrier"}
    assert component["breakers"]["carrier"] == {
        "name": "carrier",
        "state": "closed",
        "failures": 0,
        "openings": 0,
        "last_error": None,
    }


async def test_health_shows_an_open_breaker_with_its_last_error_and_is_degraded(
    app: tuple[httpx.AsyncClient, Container],
) -> None:
    client, container = app
    await _gateway_down(container)
    body = (await client.get("/api/v1/admin/health", headers=ADMIN)).json()
    assert body["status"] == "degraded"
    component = body["components"]["circuit_breakers"]
    assert component["status"] == "degraded"
    assert component["message"] == "payment_gateway open"
    gateway = component["breakers"]["payment_gateway"]
    assert (gateway["state"], gateway["failures"], gateway["openings"]) == ("open", 2, 1)
    assert gateway["last_error"] == "ConnectionRefusedError: gateway refused the connection"


async def test_metrics_show_each_breaker_state_and_count_its_openings(
    app: tuple[httpx.AsyncClient, Container],
) -> None:
    client, container = app
    before = (await client.get("/metrics", headers=ADMIN)).text
    assert 'cairn_circuit_breaker_state{breaker="payment_gateway"} 0.0' in before
    assert 'cairn_circuit_breaker_openings_total{breaker="payment_gateway"} 0.0' in before
    await _gateway_down(container)
    after = (await client.get("/metrics", headers=ADMIN)).text
    assert 'cairn_circuit_breaker_state{breaker="payment_gateway"} 2.0' in after
    assert 'cairn_circuit_breaker_failures{breaker="payment_gateway"} 2.0' in after
    assert 'cairn_circuit_breaker_openings_total{breaker="payment_gateway"} 1.0' in after
    assert 'cairn_circuit_breaker_state{breaker="carrier"} 0.0' in after
