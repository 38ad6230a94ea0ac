"""Operations the CLI runs against the composition root (projections, sagas)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cairn.api.runtime import build_container, close_container
from cairn.errors import ApplicationError
from cairn.settings import Settings


async def projection_status(settings: Settings) -> list[dict[str, Any]]:
    from cairn.api.services import _projection_row

    container = await build_container(settings)
    try:
        projections = getattr(container, "projections", None)
        if projections is None:
            raise ApplicationError("app.unavailable", "no projections are configured")
        return [_projection_row(row) for row in await projections.status()]
    finally:
        await close_container(container)


def rebuild_with_progress(settings: Settings, name: str, console: Console) -> Any:
    return rebuild_with_progress_async(settings, name, console)


async def rebuild_with_progress_async(settings: Settings, name: str, console: Console) -> None:
    container = await build_container(settings)
    try:
        projections = getattr(container, "projections", None)
        if projections is None:
            raise ApplicationError("app.unavailable", "no projections are configured")
        head = await container.store.head_position()
        with Progress(
            TextColumn(f"rebuilding [bold]{name}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(name, total=max(head, 1))

            def on_progress(position: int, total: int | None = None) -> None:
                progress.update(task, completed=position, total=max(total or head, 1))

            await projections.rebuild(name, progress=on_progress)
            progress.update(task, completed=max(head, 1))
    finally:
        await close_container(container)


async def list_sagas(settings: Settings, status: str | None, limit: int) -> list[dict[str, Any]]:
    from cairn.api.status import _as_dict

    container = await build_container(settings)
    try:
        sagas = getattr(container, "sagas", None)
        if sagas is None:
            raise ApplicationError("app.unavailable", "no sagas are configured")
        return [_as_dict(s) for s in await sagas.list(status=status, limit=limit)]
    finally:
        await close_container(container)


async def retry_saga(settings: Settings, saga_id: str) -> str:
    container = await build_container(settings)
    try:
        sagas = getattr(container, "sagas", None)
        if sagas is None:
            raise ApplicationError("app.unavailable", "no sagas are configured")
        await sagas.retry(saga_id)
        return "retry scheduled"
    finally:
        await close_container(container)
