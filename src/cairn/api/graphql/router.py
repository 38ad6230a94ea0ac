"""``/graphql``: Strawberry's FastAPI router over cairn's schema, context and hub.

- HTTP POST (JSON, also batched: a list of at most ``Limits.max_operations`` operations) and
  websockets (``graphql-transport-ws``, and the older ``graphql-ws``) on the same path.
- A request the GraphQL layer refuses before running it (body not JSON, too many operations, a
  GET with a mutation…) is answered as GraphQL errors with a code, never as plain text.
- Automatic persisted queries (Apollo's APQ): ``persisted.py``.
- Websockets are authorised at ``connection_init``: a missing or invalid token closes the
  socket with 4403 before any subscription starts.
- GraphiQL for a browser's ``GET /graphql``, on the assets vendored in ``static/graphiql/``
  (``ide.py``), never a CDN.
- The :class:`StreamHub` that feeds subscriptions is made in this router's lifespan (after the
  app's, which builds the runtime) and closed in it (before the runtime closes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.types.unset import UNSET, UnsetType

from cairn.api.graphql import ide, persisted
from cairn.api.graphql.context import GraphQLContext, get_context
from cairn.api.graphql.hub import StreamHub
from cairn.api.graphql.limits import Limits
from cairn.api.graphql.persisted import PersistedQueries
from cairn.api.graphql.schema import build_schema
from cairn.errors import CairnError

PATH = "/graphql"

#: Strawberry's refusals of a request it could not run, by their reason, and our codes.
_REFUSALS = {
    "Unable to parse request body as JSON": "app.malformed_json",
    "Too many operations": "TOO_MANY_OPERATIONS",
    persisted.NOT_FOUND: "PERSISTED_QUERY_NOT_FOUND",
    persisted.MISMATCH: "PERSISTED_QUERY_HASH_MISMATCH",
    persisted.UNSUPPORTED: "PERSISTED_QUERY_NOT_SUPPORTED",
}


@asynccontextmanager
async def _hub_lifespan(app: FastAPI) -> AsyncIterator[None]:
    hub = StreamHub(app.state.runtime.store)
    app.state.graphql_hub = hub
    try:
        yield
    finally:
        await hub.close()


class CairnGraphQLRouter(GraphQLRouter[GraphQLContext, None]):
    #: This router's automatic persisted queries (set by :func:`graphql_router`).
    persisted_queries: PersistedQueries

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        if isinstance(data, list):
            return [self.persisted_queries.resolve(item) for item in data]
        return self.persisted_queries.resolve(data)

    async def run(
        self,
        request: Request | WebSocket,
        context: Any = UNSET,
        root_value: Any = UNSET,
    ) -> Any:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            return _refusal(exc.status_code, exc.reason)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(ide.PAGE)

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        try:
            context.principal  # noqa: B018 - authenticates the connection now
        except CairnError as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": exc.message}) from None
        return cast(UnsetType, UNSET)


def _refusal(status: int, reason: str) -> Response:
    code = _REFUSALS.get(reason, "GRAPHQL_BAD_REQUEST")
    return JSONResponse(
        {"errors": [{"message": reason, "extensions": {"code": code, "status": status}}]},
        status_code=status,
    )


def graphql_router(limits: Limits | None = None) -> CairnGraphQLRouter:
    """The router to ``include_router`` into the app (it brings its own lifespan)."""
    router = CairnGraphQLRouter(
        build_schema(limits),
        path=PATH,
        graphql_ide="graphiql",  # rendered by render_graphql_ide (vendored assets)
        allow_queries_via_get=False,
        context_getter=get_context,
        lifespan=_hub_lifespan,
        include_in_schema=False,
    )
    router.persisted_queries = PersistedQueries()
    return router
