"""The API's view of the components: one adapter module, so routes stay thin and the rest of
the API does not care how the composition root names things."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cairn.api.auth import Principal
from cairn.api.runtime import Runtime
from cairn.application.messages import CommandContext, CommandResult
from cairn.breakers import BreakerStatus
from cairn.orders import forgetting
from cairn.orders.components import OrderProjections
from cairn.orders.domain import orders
from cairn.orders.views import ReadModelQueries
from cairn.projections import ProjectionEngine, ProjectionStatus


async def projection_status_list(runtime: Runtime) -> list[ProjectionStatus]:
    """Every projection's status (none without read models)."""
    projections = _read_models(runtime)
    return [] if projections is None else await projections.status()


async def projection_statuses(runtime: Runtime) -> list[dict[str, Any]]:
    """``[{"name", "position", "lag_events", "lag_seconds", "state", "errors", "parked"}]``."""
    return [projection_row(status) for status in await projection_status_list(runtime)]


def projection_row(status: ProjectionStatus) -> dict[str, Any]:
    """The API's shape of a projection's status: SPEC's fields first, then the rest of it."""
    row: dict[str, Any] = {
        "name": status.name,
        "position": status.position,
        "lag_events": status.lag_events,
        "lag_seconds": status.lag_seconds,
        "state": status.state,
        "errors": status.errors,
        "parked": status.parked,
    }
    return row | {k: v for k, v in status.as_dict().items() if k not in row}


def breaker_statuses(runtime: Runtime) -> list[BreakerStatus]:
    """The process's circuit breakers (payment gateway, carrier, broker)."""
    return runtime.container.breakers.statuses()


async def saga_status_counts(runtime: Runtime) -> dict[str, int]:
    sagas = runtime.components.sagas if runtime.components else None
    return {} if sagas is None else await sagas.counts()


async def relay_status(runtime: Runtime) -> dict[str, Any] | None:
    if not runtime.settings.broker_url:
        return None
    relay = runtime.components.relay if runtime.components else None
    if relay is None:
        return {"status": "not_running", "broker": runtime.settings.broker_url.split("://")[0]}
    status = await relay.status()
    data = status.as_dict()
    if runtime.workers is None:
        # Built for the operator routes, run by a ``cairn worker`` elsewhere: what is true here
        # is its durable checkpoint (position, lag), not this unstarted copy's "stopped".
        data.update(state="not_in_this_process", status="ok")
        data["message"] = (
            f"runs in another process; checkpoint at {status.position}, "
            f"{status.lag_events} events behind"
        )
        return data
    data["status"] = "ok" if status.state in ("running", "standby") else "degraded"
    return data


async def dispatch(
    runtime: Runtime,
    command: object,
    *,
    principal: Principal,
    command_id: str | None,
    expected_version: int | None,
    correlation_id: str | None,
    metadata: dict[str, Any],
    new_stream: bool = False,
) -> CommandResult:
    """Send ``command`` through the command bus; returns its result.
    ``new_stream``: the command's stream id was minted for this request (see CommandContext)."""
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


def _read_models(runtime: Runtime) -> OrderProjections | None:
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
    stream = orders.stream_id(order_id)
    cached = runtime.container.repositories.orders.peek(stream)
    if cached is not None and not isinstance(cached.state, orders.NoOrder):
        return cached.state.order.customer_id
    first = await runtime.store.read_stream(stream, to_version=1)
    if not first:
        return None
    return str(first[0].data.get("customer_id"))


async def wait_for_read_models(
    runtime: Runtime, min_position: int | None, projection: str = "orders", *, waiter: str = ""
) -> None:
    """Read-your-writes: wait (bounded) until the ``projection`` answering this query has
    reached ``min_position``; 503 with ``Retry-After`` when it has not. At most
    ``CAIRN_MAX_WAITERS_PER_CLIENT`` requests of one principal (``waiter``) wait at once: one
    more is 503 with ``Retry-After`` at once, so a client cannot park unbounded requests."""
    if not min_position:
        return
    models = _read_models(runtime)
    if models is None:
        return
    from cairn.api.problems import ProblemError

    waiting = runtime.waiters.get(waiter, 0)
    if waiting >= runtime.settings.max_waiters_per_client:
        raise ProblemError(
            503,
            "app.too_many_waiters",
            f"too many requests of this client are waiting for read models ({waiting})",
            headers={"Retry-After": "1"},
            limit=runtime.settings.max_waiters_per_client,
        )
    runtime.waiters[waiter] = waiting + 1
    try:
        reached = await models.wait_for(
            projection, min_position, timeout=runtime.settings.read_your_writes_timeout
        )
    finally:
        left = runtime.waiters[waiter] - 1
        if left:
            runtime.waiters[waiter] = left
        else:
            del runtime.waiters[waiter]
    if not reached:
        raise ProblemError(
            503,
            "app.read_model_behind",
            f"the {projection} read model has not reached position {min_position} yet",
            headers={"Retry-After": "1"},
            min_position=min_position,
        )


def _queries(runtime: Runtime) -> ReadModelQueries:
    models = _read_models(runtime)
    if models is None:
        raise _unavailable("the read models")
    return models.queries


async def get_order(runtime: Runtime, order_id: str) -> dict[str, Any] | None:
    if _read_models(runtime) is None:
        # No read side configured (a library user's container): answer from the events.
        from cairn.api.temporal import order_at

        return await order_at(runtime.container.query_bus, order_id)
    return await _queries(runtime).get_order(order_id)


async def get_orders(runtime: Runtime, order_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Many order views in one read (by id; absent ones left out)."""
    return await _queries(runtime).get_orders(order_ids)


async def get_products(runtime: Runtime, skus: list[str]) -> dict[str, dict[str, Any]]:
    """Many catalogue entries (inventory view and price) in one read, by SKU."""
    return await _queries(runtime).get_products(skus)


async def list_orders(
    runtime: Runtime,
    *,
    customer_id: str | None,
    status: str | None,
    created_from: datetime | str | None,
    created_to: datetime | str | None,
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


async def forget_customer(runtime: Runtime, customer_id: str, user: str) -> forgetting.Forgotten:
    """Crypto-shred a customer, dropping the process's cached order views too."""
    return await forgetting.forget_customer(
        runtime.store,
        runtime.container.repositories,
        customer_id,
        read_side=_read_models(runtime),
        metadata={"user": user},
    )


async def search_orders(
    runtime: Runtime, q: str, *, limit: int, customer_id: str | None
) -> list[dict[str, Any]]:
    # The customer filter is in the query, before ranking and the limit.
    return await _queries(runtime).search_orders(q, limit=limit, customer_id=customer_id)


async def get_inventory(runtime: Runtime, sku: str) -> dict[str, Any] | None:
    return await _queries(runtime).get_inventory(sku)


async def list_inventory(
    runtime: Runtime, *, after: str | None, limit: int
) -> list[dict[str, Any]]:
    return await _queries(runtime).list_inventory(after=after, limit=limit)


async def customer_summary(runtime: Runtime, customer_id: str) -> dict[str, Any] | None:
    return await _queries(runtime).customer_summary(customer_id)


async def sales_by_day(
    runtime: Runtime, *, from_: str | None, to: str | None, currency: str | None
) -> list[dict[str, Any]]:
    return await _queries(runtime).sales_by_day(from_=from_, to=to, currency=currency)


async def top_customers(
    runtime: Runtime, *, limit: int, currency: str | None
) -> list[dict[str, Any]]:
    return await _queries(runtime).top_customers(limit, currency=currency)


# --- projections (admin) ---------------------------------------------------------------------


def _projections(runtime: Runtime) -> ProjectionEngine:
    projections = _read_models(runtime)
    if projections is None:
        raise _unavailable("projections")
    return projections


async def rebuild_projection(
    runtime: Runtime, name: str, progress: Callable[[int, int], None]
) -> None:
    await _projections(runtime).rebuild(name, progress=progress)


async def parked_events(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    return [p.as_dict() for p in await _projections(runtime).parked(name)]


async def retry_parked(
    runtime: Runtime, name: str, *, position: int | None, parked_id: str | None
) -> dict[str, Any]:
    ids = None if parked_id is None else [parked_id]
    return dict(await _projections(runtime).retry_parked(name, position, ids=ids))
