"""The HTTP API: ``create_app(settings)`` builds a FastAPI app; nothing is built at import time.

The lifespan bootstraps the composition root (``cairn.orders.bootstrap``), opens the idempotency
records and, unless ``run_workers=False`` (``cairn serve --no-workers``), starts the workers
(projections, sagas and deadlines, relay) in this process. The tokens are read before that, in
``create_app``, so a malformed one stops ``cairn serve`` with one line before it listens.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from this package
(``static/``, served at ``/static``): they work offline and load nothing from a CDN.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig

from cairn import __version__
from cairn.api.auth import build_authenticator
from cairn.api.middleware import RequestMiddleware
from cairn.api.openapi import install_openapi
from cairn.api.problems import install_problem_handlers
from cairn.api.routes import admin, analytics, customers, health, inventory, orders, products
from cairn.api.runtime import start_runtime
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
) -> FastAPI:
    """An app over ``container`` (bootstrapped from ``settings`` in the lifespan when None).
    ``freeze_heap``: :func:`settle_heap` once started (for a server process, not tests)."""
    configure_tracing()
    metrics = Metrics()
    auth = build_authenticator(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(
            settings, container, metrics=metrics, run_workers=run_workers, auth=auth
        )
        app.state.runtime = runtime
        if freeze_heap:
            settle_heap()
        try:
            yield
        finally:
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
    for module in (health, products, orders, inventory, customers, analytics, admin):
        app.include_router(module.router)
    install_openapi(app)
    _install_docs(app)
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        request_timeout=settings.request_timeout,
    )
    return app
