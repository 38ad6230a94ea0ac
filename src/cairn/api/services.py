"""The API's view of the components: one adapter module, so routes stay thin and the rest of
the API does not care how the composition root names things."""

from __future__ import annotations

from typing import Any

from cairn.api.runtime import Runtime


async def projection_statuses(runtime: Runtime) -> list[dict[str, Any]]:
    """``[{"name", "position", "lag_events", "lag_seconds", "state", "errors", "parked"}]``."""
    projections = getattr(runtime.container, "projections", None)
    if projections is None:
        return []
    raw = await projections.status()
    return [_projection_row(row) for row in raw]


def _projection_row(row: Any) -> dict[str, Any]:
    from cairn.api.status import _as_dict

    data = _as_dict(row)
    return {
        "name": str(data.get("name")),
        "position": int(data.get("position") or 0),
        "lag_events": int(data.get("lag_events") or 0),
        "lag_seconds": float(data.get("lag_seconds") or 0.0),
        "state": str(data.get("state") or "unknown"),
        "errors": int(data.get("errors") or 0),
        "parked": int(data.get("parked") or 0),
        **{k: v for k, v in data.items() if k not in _PROJECTION_KEYS and _plain(v)},
    }


_PROJECTION_KEYS = frozenset(
    {"name", "position", "lag_events", "lag_seconds", "state", "errors", "parked"}
)


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


async def saga_status_counts(runtime: Runtime) -> dict[str, int]:
    sagas = getattr(runtime.container, "sagas", None)
    if sagas is None:
        return {}
    counts = await sagas.counts()
    return {str(k): int(v) for k, v in dict(counts).items()}


async def relay_status(runtime: Runtime) -> dict[str, Any] | None:
    if not runtime.settings.broker_url:
        return None
    relay = runtime.workers.component("relay") if runtime.workers is not None else None
    if relay is None:
        return {"status": "not_running", "broker": runtime.settings.broker_url.split("://")[0]}
    status = await relay.status()
    data: dict[str, Any] = status.as_dict()
    data["status"] = "ok" if data.get("state") in ("running", "standby") else "degraded"
    return data
