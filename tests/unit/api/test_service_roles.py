"""``cairn serve --only``: which service each route belongs to, and what a single-role app
serves (its own routes; the others 404 and are absent from its OpenAPI document; the probes
and metrics everywhere)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from api_tokens import ADMIN, OPERATOR, TOKENS

from cairn.api.app import create_app
from cairn.api.service_roles import (
    ALL_ROLES,
    ServiceRole,
    components_for,
    grpc_method_role,
    parse_roles,
    role_of,
    route_role,
)
from cairn.errors import ApplicationError
from cairn.orders.bootstrap import bootstrap
from cairn.settings import Settings
from cairn.store.memory import MemoryEventStore

COMMAND, QUERY, ADMIN_ROLE = ServiceRole.COMMAND, ServiceRole.QUERY, ServiceRole.ADMIN
MUG = {"sku": "MUG-1", "name": "Mug", "price": "12.50", "currency": "EUR", "initial_stock": 10}

AppFactory = Callable[[frozenset[ServiceRole]], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app_for() -> AppFactory:
    @asynccontextmanager
    async def serve(roles: frozenset[ServiceRole]) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(database_url="memory://", tokens=TOKENS)
        container = await bootstrap(settings, store=MemoryEventStore())
        app = create_app(settings, container, run_workers=False, only=roles)
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
                    yield client
        finally:
            await container.close()

    return serve


# --- the classification ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("POST", "/api/v1/orders", COMMAND),
        ("POST", "/api/v1/orders/{order_id}/place", COMMAND),
        ("DELETE", "/api/v1/orders/{order_id}/items/{sku}", COMMAND),
        ("POST", "/api/v1/products/{sku}/stock", COMMAND),
        ("GET", "/api/v1/orders/{order_id}", QUERY),
        ("GET", "/api/v1/orders/{order_id}/history", QUERY),
        ("GET", "/api/v1/customers/{customer_id}/orders", QUERY),
        ("GET", "/api/v1/analytics/sales", QUERY),
        ("GET", "/api/v1/admin/health", ADMIN_ROLE),
        ("GET", "/api/v1/admin/events/{stream_id}", ADMIN_ROLE),
        ("POST", "/api/v1/admin/projections/rebuild", ADMIN_ROLE),
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/metrics", None),
        ("GET", "/openapi.json", None),
    ],
)
def test_each_route_has_the_role_of_its_method_and_path(
    method: str, path: str, role: ServiceRole | None
) -> None:
    assert role_of(method, path) == role


@pytest.mark.parametrize(
    ("method", "role"),
    [
        ("/cairn.v1.Orders/CreateOrder", COMMAND),
        ("/cairn.v1.Orders/AddItem", COMMAND),
        ("/cairn.v1.Orders/PlaceOrder", COMMAND),
        ("/cairn.v1.Orders/CancelOrder", COMMAND),
        ("/cairn.v1.Orders/GetOrder", QUERY),
        ("/cairn.v1.EventStore/ReadStream", ADMIN_ROLE),
        ("/cairn.v1.EventStore/SubscribeAll", ADMIN_ROLE),
        ("/grpc.health.v1.Health/Check", None),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", None),
    ],
)
def test_each_grpc_method_has_the_role_of_its_rest_twin(
    method: str, role: ServiceRole | None
) -> None:
    assert grpc_method_role(method) == role


def test_every_grpc_method_of_the_protos_belongs_to_a_service() -> None:
    from cairn.v1 import event_store_pb2, orders_pb2

    for module in (orders_pb2, event_store_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                assert grpc_method_role(f"/{service.full_name}/{method.name}") is not None


def test_every_api_route_of_the_app_belongs_to_exactly_one_service() -> None:
    app = create_app(Settings(database_url="memory://", tokens=TOKENS), run_workers=False)
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    assert len(paths) > 25
    for path, operations in paths.items():
        for method in operations:
            role = route_role({method.upper()}, path)
            assert (role is not None) == path.startswith("/api/v1/"), (method, path)


def test_a_route_that_both_reads_and_writes_is_refused() -> None:
    with pytest.raises(ValueError, match="mixes service roles"):
        route_role({"GET", "POST"}, "/api/v1/orders")


def test_only_is_parsed_from_a_comma_separated_list() -> None:
    assert parse_roles("query, admin") == {QUERY, ADMIN_ROLE}
    assert parse_roles("") == ALL_ROLES
    assert parse_roles(None) == ALL_ROLES


def test_an_unknown_role_is_refused_with_a_stable_code() -> None:
    with pytest.raises(ApplicationError) as raised:
        parse_roles("command,writes")
    assert raised.value.code == "app.unknown_service_role"
    assert "'writes'" in raised.value.message


def test_command_routes_need_no_component_and_query_routes_the_read_models() -> None:
    assert components_for({COMMAND}) == set()
    assert components_for({QUERY}) == {"projections"}
    assert components_for({ADMIN_ROLE}) == {"projections", "sagas", "relay"}


# --- a single-role app -------------------------------------------------------------------------


async def _openapi_operations(client: httpx.AsyncClient) -> set[tuple[str, str]]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }


async def test_a_command_service_serves_commands_and_404s_queries(app_for: AppFactory) -> None:
    async with app_for(frozenset({COMMAND})) as client:
        created = await client.post("/api/v1/products", json=MUG, headers=OPERATOR)
        assert created.status_code == 201, created.text
        for path in ("/api/v1/orders", "/api/v1/inventory/MUG-1", "/api/v1/admin/health"):
            r = await client.get(path, headers=ADMIN)
            assert r.status_code == 404, (path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "app.not_found"


async def test_a_query_service_404s_commands_but_answers_queries(app_for: AppFactory) -> None:
    async with app_for(frozenset({QUERY})) as client:
        r = await client.post("/api/v1/products", json=MUG, headers=OPERATOR)
        assert r.status_code == 404
        r = await client.post("/api/v1/orders", json={}, headers=OPERATOR)
        assert r.status_code == 404  # not 405 (GET /api/v1/orders is served), not 422
        assert (await client.get("/api/v1/orders", headers=OPERATOR)).status_code == 200
        assert (await client.get("/api/v1/admin/projections", headers=ADMIN)).status_code == 404


async def test_an_admin_service_serves_only_the_admin_api(app_for: AppFactory) -> None:
    async with app_for(frozenset({ADMIN_ROLE})) as client:
        assert (await client.get("/api/v1/admin/health", headers=ADMIN)).status_code == 200
        assert (await client.get("/api/v1/admin/projections", headers=ADMIN)).status_code == 200
        assert (await client.get("/api/v1/orders", headers=ADMIN)).status_code == 404
        assert (await client.post("/api/v1/products", json=MUG, headers=ADMIN)).status_code == 404


@pytest.mark.parametrize("role", list(ServiceRole))
async def test_probes_and_metrics_answer_on_every_service(
    app_for: AppFactory, role: ServiceRole
) -> None:
    async with app_for(frozenset({role})) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/metrics", headers=ADMIN)).status_code == 200


@pytest.mark.parametrize("role", list(ServiceRole))
async def test_the_openapi_document_lists_only_the_services_routes(
    app_for: AppFactory, role: ServiceRole
) -> None:
    async with app_for(frozenset({role})) as client:
        operations = await _openapi_operations(client)
    api = {(m, p) for m, p in operations if p.startswith("/api/v1/")}
    assert api, "each service has operations"
    assert {role_of(m, p) for m, p in api} == {role}
    assert ("GET", "/healthz") in operations


async def test_two_roles_serve_the_union_of_their_routes(app_for: AppFactory) -> None:
    async with app_for(frozenset({COMMAND, QUERY})) as client:
        operations = await _openapi_operations(client)
        assert (await client.get("/api/v1/admin/health", headers=ADMIN)).status_code == 404
    roles = {role_of(m, p) for m, p in operations if p.startswith("/api/v1/")}
    assert roles == {COMMAND, QUERY}


async def test_a_command_service_without_workers_builds_no_components() -> None:
    """It never waits for (or creates) a read model; a query service builds the read side."""
    settings = Settings(database_url="memory://", tokens=TOKENS)
    container = await bootstrap(settings, store=MemoryEventStore())
    try:
        for roles, built in (({COMMAND}, []), ({QUERY}, ["projections"])):
            app = create_app(settings, container, run_workers=False, only=frozenset(roles))
            async with app.router.lifespan_context(app):
                components = app.state.runtime.components
                assert [name for name, _ in components.items()] == built
    finally:
        await container.close()


def test_a_read_replica_must_be_postgresql() -> None:
    with pytest.raises(ValueError, match="a read replica is a PostgreSQL database"):
        Settings(read_database_url="sqlite:///replica.db")
    assert Settings(read_database_url="").read_database_url is None
    url = "postgresql://reader@replica:5432/cairn"
    assert Settings(read_database_url=url).read_database_url == url
