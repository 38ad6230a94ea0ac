"""The API's view of the components: one adapter module, so routes stay thin and the rest of
the API does not care how the composition root names things."""

from __future__ import annotations

from typing import Any

from cairn.api.auth import Principal
from cairn.api.runtime import Runtime


async def projection_statuses(runtime: Runtime) -> list[dict[str, Any]]:
    """``[{"name", "position", "lag_events", "lag_seconds", "state", "errors", "parked"}]``."""
    projections = runtime.components.projections if runtime.components else None
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
    sagas = runtime.components.sagas if runtime.components else None
    if sagas is None:
        return {}
    counts = getattr(sagas, "counts", None)
    if counts is not None:
        return {str(k): int(v) for k, v in dict(await counts()).items()}
    rows = await sagas.db.fetchall("SELECT status, count(*) FROM saga_instances GROUP BY status")
    return {str(r[0]): int(r[1]) for r in rows}


async def relay_status(runtime: Runtime) -> dict[str, Any] | None:
    if not runtime.settings.broker_url:
        return None
    relay = runtime.components.relay if runtime.components else None
    if relay is None:
        return {"status": "not_running", "broker": runtime.settings.broker_url.split("://")[0]}
    status = await relay.status()
    data: dict[str, Any] = status.as_dict()
    data["status"] = "ok" if data.get("state") in ("running", "standby") else "degraded"
    return data


async def dispatch(
    runtime: Runtime,
    command: Any,
    *,
    principal: Principal,
    command_id: str | None,
    expected_version: int | None,
    correlation_id: str | None,
    metadata: dict[str, Any],
    new_stream: bool = False,
) -> Any:
    """Send ``command`` through the command bus; returns its ``CommandResult``.
    ``new_stream``: the command's stream id was minted for this request (see CommandContext)."""
    from cairn.application.messages import CommandContext

    context = CommandContext(
        command_id=command_id,
        user=principal.name,
        roles=frozenset({principal.role.value}),
        correlation_id=correlation_id,
        expected_version=expected_version,
        metadata=metadata,
        command_id_given=command_id is not None,
        new_stream=new_stream,
    )
    return await runtime.container.command_bus.dispatch(command, context)


# --- queries ---------------------------------------------------------------------------------


def _read_models(runtime: Runtime) -> Any:
    return runtime.components.projections if runtime.components else None


def _unavailable(what: str) -> Exception:
    from cairn.api.problems import ProblemError

    return ProblemError(
        503, "app.read_model_unavailable", f"{what} is not available", headers={"Retry-After": "1"}
    )


async def order_owner(runtime: Runtime, order_id: str) -> str | None:
    """The customer of an order, from its first event (``None`` if there is no such order).

    An order's customer never changes, so a state of the order the command side has cached
    answers without a read: a customer's commands on its own order cost no extra round trip.
    """
    from cairn.orders.domain import orders

    stream = orders.stream_id(order_id)
    repositories = getattr(runtime.container, "repositories", None)
    cached = repositories.orders.peek(stream) if repositories is not None else None
    details = getattr(cached.state, "order", None) if cached is not None else None
    if isinstance(details, orders.OrderDetails):
        return details.customer_id
    first = await runtime.store.read_stream(stream, to_version=1)
    if not first:
        return None
    return str(first[0].data.get("customer_id"))


async def wait_for_read_models(
    runtime: Runtime, min_position: int | None, projection: str = "orders"
) -> None:
    """Read-your-writes: wait (bounded) until the ``projection`` answering this query has
    reached ``min_position``; 503 with ``Retry-After`` when it has not."""
    if not min_position:
        return
    models = _read_models(runtime)
    if models is None:
        return
    reached = await models.wait_for(
        projection, min_position, timeout=runtime.settings.read_your_writes_timeout
    )
    if not reached:
        from cairn.api.problems import ProblemError

        raise ProblemError(
            503,
            "app.read_model_behind",
            f"the {projection} read model has not reached position {min_position} yet",
            headers={"Retry-After": "1"},
            min_position=min_position,
        )


def _queries(runtime: Runtime) -> Any:
    models = _read_models(runtime)
    if models is None:
        raise _unavailable("the read models")
    return getattr(models, "queries", models)


async def get_order(runtime: Runtime, order_id: str) -> dict[str, Any] | None:
    if _read_models(runtime) is None:
        # No read side configured (a library user's container): answer from the events.
        from cairn.api.temporal import order_at

        return await order_at(runtime.container.query_bus, order_id)
    result: dict[str, Any] | None = await _queries(runtime).get_order(order_id)
    return result


async def list_orders(
    runtime: Runtime,
    *,
    customer_id: str | None,
    status: str | None,
    created_from: Any,
    created_to: Any,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    from cairn.api.problems import ProblemError

    try:
        page = await _queries(runtime).list_orders(
            customer_id=customer_id,
            status=status,
            from_=created_from,
            to=created_to,
            cursor=cursor,
            limit=limit,
        )
    except (ValueError, KeyError, TypeError) as exc:  # a cursor that is not one of ours
        raise ProblemError(400, "app.bad_cursor", f"invalid cursor: {exc}") from None
    return {"orders": page.orders, "next_cursor": page.next_cursor}


async def customer_order_ids(runtime: Runtime, customer_id: str) -> list[str]:
    """Every order of a customer the read models know (none without read models)."""
    if _read_models(runtime) is None:
        return []
    ids: list[str] = await _queries(runtime).customer_order_ids(customer_id)
    return ids


async def search_orders(
    runtime: Runtime, q: str, *, limit: int, customer_id: str | None
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await _queries(runtime).search_orders(
        q, limit=limit if customer_id is None else 200
    )
    if customer_id is not None:
        found = [o for o in found if o.get("customer_id") == customer_id][:limit]
    return found


async def get_inventory(runtime: Runtime, sku: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await _queries(runtime).get_inventory(sku)
    return result


async def list_inventory(runtime: Runtime, *, after: str | None, limit: int) -> list[Any]:
    result: list[Any] = await _queries(runtime).list_inventory(after=after, limit=limit)
    return result


async def customer_summary(runtime: Runtime, customer_id: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await _queries(runtime).customer_summary(customer_id)
    return result


async def sales_by_day(
    runtime: Runtime, *, from_: str | None, to: str | None, currency: str | None
) -> list[Any]:
    result: list[Any] = await _queries(runtime).sales_by_day(from_=from_, to=to, currency=currency)
    return result


async def top_customers(runtime: Runtime, *, limit: int, currency: str | None) -> list[Any]:
    result: list[Any] = await _queries(runtime).top_customers(limit, currency=currency)
    return result


# --- projections (admin) ---------------------------------------------------------------------


def _projections(runtime: Runtime) -> Any:
    projections = runtime.components.projections if runtime.components else None
    if projections is None:
        raise _unavailable("projections")
    return projections


async def rebuild_projection(runtime: Runtime, name: str, progress: Any) -> None:
    await _projections(runtime).rebuild(name, progress=progress)


async def parked_events(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    from cairn.api.status import _as_dict

    return [_as_dict(p) for p in await _projections(runtime).parked(name)]


async def retry_parked(
    runtime: Runtime, name: str, *, position: int | None, parked_id: str | None
) -> dict[str, Any]:
    ids = None if parked_id is None else [parked_id]
    result: dict[str, Any] = await _projections(runtime).retry_parked(name, position, ids=ids)
    return result
