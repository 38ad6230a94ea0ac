"""Operations the CLI runs against the composition root (projections, sagas, schema)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cairn.api.idempotency import API
from cairn.api.runtime import build_container, close_container
from cairn.api.services import projection_row
from cairn.errors import ApplicationError
from cairn.orders.bootstrap import Container
from cairn.orders.components import (
    COMPONENT_SCHEMAS,
    FulfilmentRunner,
    OrderComponents,
    build_components,
)
from cairn.projections import ProjectionEngine
from cairn.settings import Settings
from cairn.sql.migrate import migrate_database

#: Bound on everything that talks to the database at start-up.
CONNECT_TIMEOUT = 20.0


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[tuple[Container, OrderComponents]]:
    """The container and its components (not running), closed on exit."""
    container = await asyncio.wait_for(build_container(settings), CONNECT_TIMEOUT)
    try:
        components = await asyncio.wait_for(build_components(settings, container), CONNECT_TIMEOUT)
        try:
            yield container, components
        finally:
            await components.close()
    finally:
        await close_container(container)


async def migrate(settings: Settings) -> list[str]:
    """Every schema: the store's and the components' ``.sql`` migrations (the application's
    :data:`~cairn.orders.components.COMPONENT_SCHEMAS`, then the API's), then the tables the
    projections and sagas still create when they are built."""
    schemas = [*COMPONENT_SCHEMAS, API]
    applied = await asyncio.wait_for(
        migrate_database(settings.database_url, schemas, sql_url=settings.sql_url),
        CONNECT_TIMEOUT,
    )
    async with opened(settings) as (_, components):
        if components.projections is not None:
            await asyncio.wait_for(components.projections.migrate(), CONNECT_TIMEOUT)
    return applied


def _projections(components: OrderComponents) -> ProjectionEngine:
    if components.projections is None:
        raise ApplicationError("app.unavailable", "no projections are configured")
    return components.projections


def _sagas(components: OrderComponents) -> FulfilmentRunner:
    if components.sagas is None:
        raise ApplicationError("app.unavailable", "no sagas are configured")
    return components.sagas


async def projection_status(settings: Settings) -> list[dict[str, Any]]:
    async with opened(settings) as (_, components):
        return [projection_row(status) for status in await _projections(components).status()]


async def rebuild_with_progress(
    settings: Settings, names: list[str] | None, console: Console
) -> None:
    """Rebuild projections (all when ``names`` is None), each with a progress bar."""
    async with opened(settings) as (container, components):
        projections = _projections(components)
        known = [status.name for status in await projections.status()]
        if names is None:
            names = known
        for name in names:
            if name not in known:
                raise ApplicationError(
                    "projection.not_found",
                    f"no projection named {name!r} (one of {', '.join(known)})",
                )
        for name in names:
            await rebuild_one(container, projections, name, console)


async def rebuild_one(
    container: Container, projections: ProjectionEngine, name: str, console: Console
) -> None:
    head = await container.store.head_position()
    with Progress(
        TextColumn(f"rebuilding [bold]{name}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(name, total=max(head, 1))

        def on_progress(position: int, total: int) -> None:
            progress.update(task, completed=position, total=max(total or head, 1))

        await projections.rebuild(name, progress=on_progress)
        progress.update(task, completed=max(head, 1), total=max(head, 1))


async def list_sagas(settings: Settings, status: str | None, limit: int) -> list[dict[str, Any]]:
    async with opened(settings) as (_, components):
        records = await _sagas(components).list(status, limit)
        return [r.to_dict() for r in records]


async def retry_saga(settings: Settings, saga_id: str) -> str:
    async with opened(settings) as (_, components):
        record = await _sagas(components).retry(saga_id)
        return f"{record.status.value} (step {record.step})"
