"""One look at every component, for ``/api/v1/admin/health``, ``/readyz`` and ``/metrics``.

Each probe is bounded in time and never raises: a component that cannot answer is reported as
such. Only an unreachable event store makes the whole service unhealthy (SPEC §10).

The health document carries ``timestamp`` (RFC 3339, UTC), ``version`` (cairn's) and, in every
component, a ``message``: one short sentence for a person ("ok", "3 projections live, lag 0",
"unreachable: …").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cairn import __version__
from cairn.api import services
from cairn.api.runtime import Runtime
from cairn.breakers import BreakerStatus
from cairn.observability.metrics import ComponentSnapshot, ProjectionSample, sagas_by_status
from cairn.orders.components import OrderComponents
from cairn.projections import ProjectionStatus
from cairn.projections.states import ACTIVE_STATES, INACTIVE_STATES
from cairn.store.base import EventStore

_T = TypeVar("_T")
PROBE_TIMEOUT = 2.0


async def _bounded(make: Callable[[], Awaitable[_T]], timeout: float = PROBE_TIMEOUT) -> _T:
    return await asyncio.wait_for(make(), timeout=timeout)


async def store_probe(runtime: Runtime) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        head = await _bounded(runtime.store.head_position)
    except Exception as exc:
        return {"status": "down", "error": str(exc) or type(exc).__name__}
    backend = runtime.settings.database_url.split("://", 1)[0]
    return {
        "status": "ok",
        "head_position": head,
        "backend": backend,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "message": f"{backend} answers, log head at position {head}",
    }


async def projections_status(runtime: Runtime) -> list[ProjectionStatus]:
    """Every projection's status (none without read models)."""
    return await _bounded(lambda: services.projection_status_list(runtime))


async def saga_counts(runtime: Runtime) -> dict[str, int]:
    return await _bounded(lambda: services.saga_status_counts(runtime))


async def relay_status(runtime: Runtime) -> dict[str, Any] | None:
    return await _bounded(lambda: services.relay_status(runtime))


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


async def _outcome(make: Callable[[], Awaitable[_T]]) -> _T | Exception:
    try:
        return await make()
    except Exception as exc:
        return exc


async def health(runtime: Runtime) -> tuple[int, dict[str, Any]]:
    # Every probe at once: during a database outage each one waits for its bound, and one
    # after the other they would keep the answer (and a monitoring probe) for seconds.
    store, redis, broker, projected, counted, relayed = await asyncio.gather(
        store_probe(runtime),
        redis_probe(runtime.settings.redis_url),
        broker_probe(runtime.settings.broker_url),
        _outcome(lambda: projections_status(runtime)),
        _outcome(lambda: saga_counts(runtime)),
        _outcome(lambda: relay_status(runtime)),
    )
    components: dict[str, Any] = {"event_store": store, "redis": redis, "broker": broker}
    degraded = store["status"] != "ok"
    try:
        if isinstance(projected, Exception):
            raise projected
        projections = projected
        components["projections"] = {
            "status": "ok"
            if all(p.state not in INACTIVE_STATES for p in projections)
            else "degraded",
            "projections": [services.projection_row(p) for p in projections],
            "message": projections_message(projections),
        }
        components["read_models"] = components["projections"]["status"]
        if components["projections"]["status"] != "ok":
            degraded = True
    except Exception as exc:
        components["projections"] = {"status": "unknown", "error": str(exc) or repr(exc)}
        degraded = True
    try:
        if isinstance(counted, Exception):
            raise counted
        by_status = sagas_by_status(counted)
        components["sagas"] = {
            "status": "ok",
            "by_status": by_status,
            "message": ", ".join(f"{n} {status}" for status, n in by_status.items() if n)
            or "no sagas",
        }
    except Exception as exc:
        components["sagas"] = {"status": "unknown", "error": str(exc) or repr(exc)}
        degraded = True
    try:
        if isinstance(relayed, Exception):
            raise relayed
        relay = relayed
        components["relay"] = relay if relay is not None else {"status": "not_configured"}
    except Exception as exc:
        components["relay"] = {"status": "unknown", "error": str(exc) or repr(exc)}
    components["circuit_breakers"] = breakers_component(runtime)
    if components["circuit_breakers"]["status"] != "ok":
        degraded = True
    workers = runtime.workers
    components["workers"] = {
        "status": "ok" if workers is not None and workers.alive() else "not_running"
    }
    for name in ("redis", "broker"):
        if components[name]["status"] not in ("ok", "not_configured"):
            degraded = True
    for name, component in components.items():
        if isinstance(component, dict):
            component.setdefault("message", _message(name, component))
    status_code = 503 if store["status"] != "ok" else 200
    body = {
        "status": "ok" if not degraded else "degraded",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "version": __version__,
        "components": components,
        "uptime_seconds": round(time.time() - runtime.started_at, 1),
    }
    return status_code, body


def breakers_component(runtime: Runtime) -> dict[str, Any]:
    """Each circuit breaker's state, failures in a row, openings and last error; ``degraded``
    while one is not closed."""
    breakers = services.breaker_statuses(runtime)
    not_closed = [f"{b.name} {b.state.replace('_', '-')}" for b in breakers if b.state != "closed"]
    return {
        "status": "degraded" if not_closed else "ok",
        "breakers": {b.name: b.as_dict() for b in breakers},
        "message": ", ".join(not_closed) or f"{len(breakers)} closed",
    }


def projections_message(projections: Sequence[ProjectionStatus]) -> str:
    """ "3 projections live, lag 0", or which ones are not applying the log."""
    if not projections:
        return "no projections"
    idle = [p.name for p in projections if p.state not in ACTIVE_STATES]
    lag = max(p.lag_events for p in projections)
    if idle:
        return f"{len(idle)} of {len(projections)} projections not running: {', '.join(idle)}"
    return f"{len(projections)} projections live, lag {lag}"


def _message(name: str, component: dict[str, Any]) -> str:
    """The sentence for a component that did not set its own: "ok", "not configured",
    "broker unreachable: …", "relay backing off, 12 events behind: …"."""
    status = str(component.get("status", "unknown"))
    error = component.get("error") or component.get("last_error")
    if status == "not_configured":
        return "not configured"
    if status == "not_running":
        return "not running in this process"
    if status == "down":
        return f"{name.replace('_', ' ')} unreachable: {error or 'no answer'}"
    words = [str(component.get("state", status)).replace("_", " ")]
    if component.get("lag_events") is not None:
        words.append(f", {component['lag_events']} events behind")
    if error:
        words.append(f": {error}")
    return "".join(words)


async def metrics_snapshot(runtime: Runtime) -> ComponentSnapshot:
    return await component_snapshot(
        runtime.store,
        runtime.components,
        services.breaker_statuses(runtime),
        relay_here=runtime.workers is not None,
    )


async def component_snapshot(
    store: EventStore,
    components: OrderComponents | None,
    breakers: list[BreakerStatus],
    *,
    relay_here: bool,
) -> ComponentSnapshot:
    """What ``/metrics`` shows of the components, read now; shared by ``cairn serve`` and the
    listener of ``cairn worker`` (:mod:`cairn.api.worker_http`). ``relay_here``: whether this
    process runs its relay (a --no-workers process has one it never started: no state then)."""
    snap = ComponentSnapshot(breakers=breakers)
    try:
        snap.head_position = await _bounded(store.head_position)
    except Exception:
        snap.store_up = False
    projections = components.projections if components is not None else None
    if projections is not None:
        with contextlib.suppress(Exception):
            snap.projections = [
                ProjectionSample(
                    name=p.name,
                    position=p.position,
                    lag_events=p.lag_events,
                    lag_seconds=p.lag_seconds,
                    errors=p.errors,
                    parked=p.parked,
                    running=p.state in ACTIVE_STATES,
                )
                for p in await _bounded(projections.status)
            ]
    sagas = components.sagas if components is not None else None
    with contextlib.suppress(Exception):
        counts = await _bounded(sagas.counts) if sagas is not None else {}
        snap.sagas_by_status = sagas_by_status(counts)
    relay = components.relay if components is not None else None
    if relay is not None:
        with contextlib.suppress(Exception):
            relayed = await _bounded(relay.status)
            snap.relay_position = relayed.position
            snap.relay_lag_events = relayed.lag_events
            if relay_here:
                snap.relay_state = relayed.state
    return snap
