"""Which service a route belongs to (seed 004's shape: a command, a query and an admin API).

``cairn serve --only command,query,admin`` picks roles; a process serves only the routes of its
roles (the others answer 404, as a path that does not exist, and are absent from its OpenAPI
document). The classification is here and nowhere else, as rules on the method and the path:

* ``/api/v1/admin/...`` → admin (whatever the method);
* any other ``/api/v1/...`` route that changes something (POST, PUT, PATCH, DELETE) → command;
* any other ``/api/v1/...`` route (GET: the read models, an order's history) → query;
* everything else (``/healthz``, ``/readyz``, ``/metrics``, ``/docs``, ``/openapi.json``) is on
  every listener.

gRPC methods (``CAIRN_GRPC_PORT``) follow the same split (:func:`grpc_method_role`): the
``cairn.v1.EventStore`` service is the admin API's (REST's ``/api/v1/admin/events``), a method
of another cairn service that reads (``Get…``, ``List…``, ``Read…``, ``Subscribe…``) is the
query API's, the others (``CreateOrder``, ``PlaceOrder``…) the command API's; health and
reflection are on every listener.

Each role also says which components its routes need (:func:`components_for`): query routes
read the projections' read models, admin routes show and operate projections, sagas and the
relay, command routes need none (a command-only process never waits for a read model).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from enum import StrEnum
from typing import Final

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cairn.errors import ApplicationError

API_PREFIX: Final = "/api/v1/"
ADMIN_PREFIX: Final = "/api/v1/admin/"
#: Methods that change state: the command side.
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ServiceRole(StrEnum):
    COMMAND = "command"
    QUERY = "query"
    ADMIN = "admin"


ALL_ROLES: Final = frozenset(ServiceRole)

#: The components (``cairn.workers.Components`` names) the routes of each role use.
_COMPONENTS: Final[dict[ServiceRole, frozenset[str]]] = {
    ServiceRole.COMMAND: frozenset(),
    ServiceRole.QUERY: frozenset({"projections"}),
    ServiceRole.ADMIN: frozenset({"projections", "sagas", "relay"}),
}


def role_of(method: str, path: str) -> ServiceRole | None:
    """The role of the route ``method path`` (a route's path template or a request's path);
    None for the routes every listener serves."""
    if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/"):
        return ServiceRole.ADMIN
    if not path.startswith(API_PREFIX):
        return None
    return ServiceRole.COMMAND if method.upper() in WRITE_METHODS else ServiceRole.QUERY


#: gRPC services that are the admin API's as a whole.
_ADMIN_GRPC_SERVICES: Final = frozenset({"cairn.v1.EventStore"})
#: How a cairn gRPC method that only reads is named.
_GRPC_READ_PREFIXES: Final = ("Get", "List", "Read", "Subscribe")


def grpc_method_role(method: str) -> ServiceRole | None:
    """The role of a gRPC method, ``/package.Service/Method``; None for the services that are
    not cairn's (health, reflection), which every listener serves."""
    service, _, name = method.lstrip("/").partition("/")
    if not service.startswith("cairn."):
        return None
    if service in _ADMIN_GRPC_SERVICES:
        return ServiceRole.ADMIN
    return ServiceRole.QUERY if name.startswith(_GRPC_READ_PREFIXES) else ServiceRole.COMMAND


def route_role(methods: Iterable[str], path: str) -> ServiceRole | None:
    """The role of a route answering ``methods`` (HEAD follows GET); a route whose methods
    would fall into two roles is a mistake in the route table."""
    roles = {role_of(m, path) for m in methods if m.upper() != "HEAD"}
    if len(roles) > 1:
        raise ValueError(f"route {path} mixes service roles: {sorted(map(str, roles))}")
    return roles.pop() if roles else role_of("GET", path)


def parse_roles(text: str | None) -> frozenset[ServiceRole]:
    """``"command,query"`` → those roles; empty or None → every role."""
    names = [part.strip().lower() for part in (text or "").split(",") if part.strip()]
    if not names:
        return ALL_ROLES
    known = {role.value for role in ServiceRole}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ApplicationError(
            "app.unknown_service_role",
            f"unknown service role {unknown[0]!r} in --only (choose from command, query, admin)",
        )
    return frozenset(ServiceRole(name) for name in names)


def components_for(roles: Collection[ServiceRole]) -> frozenset[str]:
    """The components the routes of ``roles`` use."""
    return frozenset().union(*(_COMPONENTS[role] for role in roles))


async def _not_served(request: Request) -> Response:
    raise HTTPException(404)


def restrict_routes(routes: Sequence[BaseRoute], roles: Collection[ServiceRole]) -> list[BaseRoute]:
    """``routes`` with those of other roles replaced by stand-ins that answer 404 (the app's
    problem document for a path that does not exist). A stand-in keeps the route's path and
    methods, so a request the route would have answered gets 404, not a neighbour's 405 (on a
    command-only process ``GET /api/v1/orders`` is 404, though ``POST`` is served)."""
    kept: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route):  # FastAPI's APIRoute too
            role = route_role(route.methods or (), route.path)
            if role is not None and role not in roles:
                methods = sorted(m for m in route.methods or () if m != "HEAD")
                route = Route(route.path, _not_served, methods=methods, include_in_schema=False)
        kept.append(route)
    return kept


def service_router(router: APIRouter, roles: Collection[ServiceRole]) -> APIRouter:
    """What an app serving ``roles`` includes of ``router``: the router itself when it serves
    every role, else a copy whose other routes are :func:`restrict_routes`' 404 stand-ins
    (the shared module-level router is never changed)."""
    if set(roles) >= ALL_ROLES:
        return router
    copy = APIRouter()
    copy.routes.extend(restrict_routes(router.routes, roles))
    return copy
