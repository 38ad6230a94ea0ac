"""Liveness, readiness, component health and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.responses import Response

from cairn.api import status
from cairn.api.deps import Admin, RuntimeDep
from cairn.observability.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


def _json_503(description: str) -> dict[int | str, dict[str, Any]]:
    """A 503 that answers the endpoint's own JSON document, not a problem."""
    return {503: {"description": description, "content": {"application/json": {}}}}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", responses=_json_503("Event store unreachable (same document)"))
async def readyz(runtime: RuntimeDep) -> Response:
    """200 once the event store answers (schema applied at start-up). Where this process runs
    the relay, ``relay`` is its state (``backing_off`` while the broker is unreachable): shown,
    not a reason to stop taking requests, since commands never wait for the broker."""
    probe = await status.store_probe(runtime)
    workers = runtime.workers
    body: dict[str, Any] = {
        "status": "ok" if probe["status"] == "ok" else "unavailable",
        "event_store": probe["status"],
        "workers": "running" if workers is not None and workers.alive() else "not_running",
    }
    relay = runtime.components.relay if runtime.components else None
    if relay is not None and workers is not None:
        body["relay"] = relay.state
    if probe["status"] != "ok":
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
    return JSONResponse(body)


@router.get(
    "/api/v1/admin/health",
    responses=_json_503("Event store unreachable (the same health document)"),
)
async def admin_health(runtime: RuntimeDep, _: Admin) -> Response:
    """Every component's state; 503 only when the event store is unreachable."""
    code, body = await status.health(runtime)
    return JSONResponse(body, status_code=code)


@router.get("/metrics", include_in_schema=False)
async def metrics(runtime: RuntimeDep, _: Admin) -> Response:
    """Prometheus exposition (admin token: scrape with `authorization: {credentials: …}`);
    component figures are read at scrape time."""
    runtime.metrics.set_components(await status.metrics_snapshot(runtime))
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)
