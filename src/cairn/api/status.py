"""One look at every component, for ``/api/v1/admin/health``, ``/readyz`` and ``/metrics``.

Each probe is bounded in time and never raises: a component that cannot answer is reported as
such. Only an unreachable event store makes the whole service unhealthy (SPEC §10).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cairn.api.runtime import Runtime
from cairn.observability.metrics import ComponentSnapshot, ProjectionSample, sagas_by_status

_T = TypeVar("_T")
PROBE_TIMEOUT = 2.0


async def _bounded(make: Callable[[], Awaitable[_T]], timeout: float = PROBE_TIMEOUT) -> _T:
    return await asyncio.wait_for(make(), timeout=timeout)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    for attr in ("model_dump", "_asdict"):
        fn = getattr(value, attr, None)
        if callable(fn):
            result = fn()
            if isinstance(result, dict):
                return result
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return {"value": value}


async def store_probe(runtime: Runtime) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        head = await _bounded(runtime.store.head_position)
    except Exception as exc:
        return {"status": "down", "error": str(exc) or type(exc).__name__}
    return {
        "status": "ok",
        "head_position": head,
        "backend": runtime.settings.database_url.split("://", 1)[0],
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }


async def projections_status(runtime: Runtime) -> list[dict[str, Any]]:
    """Per projection: name, position, lag_events, lag_seconds, state, errors, parked."""
    from cairn.api.services import projection_statuses

    return await _bounded(lambda: projection_statuses(runtime))


async def saga_counts(runtime: Runtime) -> dict[str, int]:
    from cairn.api.services import saga_status_counts

    return await _bounded(lambda: saga_status_counts(runtime))


async def relay_status(runtime: Runtime) -> dict[str, Any] | None:
    from cairn.api.services import relay_status as _relay

    return await _bounded(lambda: _relay(runtime))


async def redis_probe(url: str | None) -> dict[str, Any]:
    if not url:
        return {"status": "not_configured"}
    try:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        try:
            await _bounded(client.ping)
        finally:
            await client.aclose()
    except Exception as exc:
        return {"status": "down", "error": str(exc) or type(exc).__name__}
    return {"status": "ok"}


async def broker_probe(url: str | None) -> dict[str, Any]:
    if not url:
        return {"status": "not_configured"}
    parts = urlsplit(url)
    default_port = {"nats": 4222, "amqp": 5672, "amqps": 5671, "redis": 6379}.get(parts.scheme)
    host, port = parts.hostname, parts.port or default_port
    if not host or not port:
        return {"status": "misconfigured", "error": f"cannot tell host/port from {parts.scheme}://"}
    try:
        _, writer = await _bounded(lambda: asyncio.open_connection(host, port), 1.5)
        writer.close()
        await writer.wait_closed()
    except Exception as exc:
        return {"status": "down", "scheme": parts.scheme, "error": str(exc) or type(exc).__name__}
    return {"status": "ok", "scheme": parts.scheme}


async def health(runtime: Runtime) -> tuple[int, dict[str, Any]]:
    store, redis, broker = await asyncio.gather(
        store_probe(runtime),
        redis_probe(runtime.settings.redis_url),
        broker_probe(runtime.settings.broker_url),
    )
    components: dict[str, Any] = {"event_store": store, "redis": redis, "broker": broker}
    degraded = store["status"] != "ok"
    try:
        projections = await projections_status(runtime)
        components["projections"] = {
            "status": "ok"
            if all(p.get("state") not in ("failed", "stopped") for p in projections)
            else "degraded",
            "projections": projections,
        }
        components["read_models"] = components["projections"]["status"]
        if components["projections"]["status"] != "ok":
            degraded = True
    except Exception as exc:
        components["projections"] = {"status": "unknown", "error": str(exc) or repr(exc)}
        degraded = True
    try:
        counts = await saga_counts(runtime)
        components["sagas"] = {"status": "ok", "by_status": sagas_by_status(counts)}
    except Exception as exc:
        components["sagas"] = {"status": "unknown", "error": str(exc) or repr(exc)}
        degraded = True
    try:
        relay = await relay_status(runtime)
        components["relay"] = relay if relay is not None else {"status": "not_configured"}
    except Exception as exc:
        components["relay"] = {"status": "unknown", "error": str(exc) or repr(exc)}
    workers = runtime.workers
    components["workers"] = {
        "status": "ok" if workers is not None and workers.alive() else "not_running"
    }
    for name in ("redis", "broker"):
        if components[name]["status"] not in ("ok", "not_configured"):
            degraded = True
    status_code = 503 if store["status"] != "ok" else 200
    body = {
        "status": "ok" if not degraded else "degraded",
        "components": components,
        "uptime_seconds": round(time.time() - runtime.started_at, 1),
    }
    return status_code, body


async def metrics_snapshot(runtime: Runtime) -> ComponentSnapshot:
    snap = ComponentSnapshot()
    try:
        snap.head_position = await _bounded(runtime.store.head_position)
    except Exception:
        snap.store_up = False
    try:
        for p in await projections_status(runtime):
            snap.projections.append(
                ProjectionSample(
                    name=str(p.get("name")),
                    position=int(p.get("position") or 0),
                    lag_events=int(p.get("lag_events") or 0),
                    lag_seconds=float(p.get("lag_seconds") or 0.0),
                    errors=int(p.get("errors") or 0),
                    parked=int(p.get("parked") or 0),
                    running=p.get("state") in ("running", "live", "catching_up", "rebuilding"),
                )
            )
    except Exception:
        pass
    with contextlib.suppress(Exception):
        snap.sagas_by_status = sagas_by_status(await saga_counts(runtime))
    try:
        relay = await relay_status(runtime)
        if relay:
            if relay.get("position") is not None:
                snap.relay_position = int(relay["position"])
            if relay.get("lag_events") is not None:
                snap.relay_lag_events = int(relay["lag_events"])
    except Exception:
        pass
    return snap
