"""What every resolver gets: the runtime, the caller and this request's DataLoaders.

The caller is the REST API's: the same :class:`~cairn.api.auth.Authenticator`, bearer token in
the ``Authorization`` header (HTTP, or the websocket's upgrade request) or in the
``connection_init`` payload of ``graphql-transport-ws`` (``{"Authorization": "Bearer …"}``).
It is resolved on first use, so a request that reads only ``_service`` or introspects needs no
token, and one that reads data without a valid token gets the REST code (``auth.missing_token``,
``auth.invalid_token``) in ``errors[].extensions.code``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from cairn.api.auth import Principal, Role, require_role
from cairn.api.graphql.hub import StreamHub
from cairn.api.graphql.loaders import Loaders
from cairn.api.problems import ProblemError
from cairn.api.runtime import Runtime


class GraphQLContext(BaseContext):
    def __init__(self, runtime: Runtime, hub: StreamHub, header: str | None) -> None:
        super().__init__()
        self.runtime = runtime
        self.hub = hub
        self.loaders = Loaders(runtime)
        self._header = header
        self._principal: Principal | None = None

    def authorization(self) -> str | None:
        """The ``connection_init`` payload's token first (websockets), else the header's."""
        params = self.connection_params
        if isinstance(params, dict):
            # Some clients nest it: {"headers": {"Authorization": ...}}.
            for where in (params, params.get("headers")):
                if not isinstance(where, dict):
                    continue
                for key, value in where.items():
                    if key.lower() == "authorization" and isinstance(value, str):
                        return value
        return self._header

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            self._principal = self.runtime.auth.authenticate(self.authorization())
        return self._principal

    def staff(self) -> Principal:
        """The caller, who must be an operator or admin (403 ``auth.forbidden`` otherwise)."""
        principal = self.principal
        require_role(principal, Role.OPERATOR)
        return principal


def context_of(info: Info[Any, Any]) -> GraphQLContext:
    context = info.context
    assert isinstance(context, GraphQLContext)
    return context


async def get_context(connection: HTTPConnection) -> GraphQLContext:
    """The FastAPI dependency Strawberry calls per request (and once per websocket)."""
    runtime = getattr(connection.app.state, "runtime", None)
    hub = getattr(connection.app.state, "graphql_hub", None)
    if not isinstance(runtime, Runtime) or not isinstance(hub, StreamHub):  # pragma: no cover
        raise ProblemError(
            503, "app.starting", "the service is starting", headers={"Retry-After": "1"}
        )
    return GraphQLContext(runtime, hub, connection.headers.get("authorization"))
