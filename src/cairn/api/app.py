"""The HTTP API: ``create_app(settings)`` builds a FastAPI app; nothing is built at import time.

The lifespan bootstraps the composition root (``cairn.orders.bootstrap``), opens the idempotency
records and, unless ``run_workers=False`` (``cairn serve --no-workers``), starts the workers
(projections, sagas and deadlines, relay) in this process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from cairn.api.middleware import RequestMiddleware
from cairn.api.problems import install_problem_handlers
from cairn.api.routes import admin, analytics, customers, health, inventory, orders, products
from cairn.api.runtime import start_runtime
from cairn.gc_tuning import settle_heap
from cairn.observability.metrics import Metrics
from cairn.observability.tracing import configure_tracing
from cairn.orders.bootstrap import Container
from cairn.settings import Settings

API_VERSION = "0.1.0"
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(settings, container, metrics=metrics, run_workers=run_workers)
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
        docs_url="/docs",
        openapi_url="/openapi.json",
        # cairn's request middleware makes the one server span (cairn.observability.tracing);
        # FastAPI's own telemetry would add a second one, and spans per dependency, per request.
        telemetry=_NO_FASTAPI_TELEMETRY,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_problem_handlers(app)
    for module in (health, products, orders, inventory, customers, analytics, admin):
        app.include_router(module.router)
    app.add_middleware(RequestMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    return app
