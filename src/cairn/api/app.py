"""The HTTP API: ``create_app(settings)`` builds a FastAPI app; nothing is built at import time.

The lifespan bootstraps the composition root (``cairn.orders.bootstrap``), opens the idempotency
records and, unless ``run_workers=False`` (``cairn serve --no-workers``), starts the workers
(projections, sagas and deadlines, relay) in this process; with ``CAIRN_GRPC_PORT`` set it also
serves gRPC over the same runtime (``cairn.rpc.server``) and stops it first. The tokens are
read before that, in ``create_app``, so a malformed one stops ``cairn serve`` with one line
before it listens.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from this package
(``static/``, served at ``/static``): they work offline and load nothing from a CDN.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig

from cairn import __version__
from cairn.api.auth import build_authenticator
from cairn.api.console import install_console
from cairn.api.graphql import graphql_router
from cairn.api.middleware import RequestMiddleware
from cairn.api.openapi import install_openapi
from cairn.api.problems import install_problem_handlers
from cairn.api.routes import admin, analytics, customers, health, inventory, orders, products
from cairn.api.routes.live import router as live_router
from cairn.api.routes.time_travel import router as time_travel_router
from cairn.api.runtime import start_runtime
from cairn.api.service_roles import ALL_ROLES, ServiceRole, service_router
from cairn.gc_tuning import settle_heap
from cairn.observability.metrics import Metrics
from cairn.observability.tracing import configure_tracing
from cairn.orders.bootstrap import Container
from cairn.settings import Settings

API_VERSION = __version__
STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/static"
OPENAPI_URL = "/openapi.json"


def _install_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` and ReDoc at ``/redoc``, on the assets vendored in ``static/``
    (versions and licences: ``static/README.md``)."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon-32x32.png",
            # No badge from the online validator; the token survives a page reload.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/favicon-32x32.png",
            with_google_fonts=False,
        )


_NO_FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def create_app(
    settings: Settings,
    container: Container | None = None,
    *,
    run_workers: bool = True,
    freeze_heap: bool = False,
    only: Collection[ServiceRole] = ALL_ROLES,
) -> FastAPI:
    """An app over ``container`` (bootstrapped from ``settings`` in the lifespan when None).
    ``freeze_heap``: :func:`settle_heap` once started (for a server process, not tests).
    ``only``: the services it serves (``cairn.api.service_roles``); other routes answer 404."""
    configure_tracing()
    metrics = Metrics()
    auth = build_authenticator(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(
            settings, container, metrics=metrics, run_workers=run_workers, auth=auth, roles=only
        )
        app.state.runtime = runtime
        app.state.grpc = None
        try:
            if settings.grpc_port is not None:  # gRPC beside HTTP, over the same runtime
                from cairn.rpc.server import start_grpc_server

                app.state.grpc = await start_grpc_server(
                    runtime, settings.host, settings.grpc_port, only
                )
            if freeze_heap:
                settle_heap()
            yield
        finally:
            if app.state.grpc is not None:
                await app.state.grpc.stop()
            await runtime.close()

    app = FastAPI(
        title="cairn",
        version=API_VERSION,
        summary="Event-sourced order processing",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL,
        # cairn's request middleware makes the one server span (cairn.observability.tracing);
        # FastAPI's own telemetry would add a second one, and spans per dependency, per request.
        telemetry=_NO_FASTAPI_TELEMETRY,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_problem_handlers(app)
    # The read models as they were (SPEC §17) and $all as server-sent events (the console's
    # tail) come before the admin routes: /admin/events/live must not be read as a stream id.
    for router in (time_travel_router, live_router):
        app.include_router(service_router(router, only))
    for module in (health, products, orders, inventory, customers, analytics, admin):
        app.include_router(service_router(module.router, only))
    if "query" in only:  # /graphql (SPEC §14): queries, mutations, websocket subscriptions
        app.include_router(graphql_router())
    install_openapi(app)
    _install_docs(app)
    if "admin" in only:  # the operator console at /console/ (SPEC §17), over the admin API
        install_console(app)
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        request_timeout=settings.request_timeout,
    )
    return app
