"""The background work of a cairn process: projections, sagas and their deadlines, the relay.

``cairn serve`` runs them beside the API (unless ``--no-workers``); ``cairn worker`` runs them
alone, for scale-out. Each component runs as one task that owns its own lease (advisory lock on
PostgreSQL, ``flock`` on SQLite), so several processes can run workers against one database and
each projection, saga partition and the relay has one owner at a time; ownership moves when a
process dies.

A component task that crashes is restarted after a short backoff (the error is logged), so one
poison component cannot stop the others, and a stopped process loses nothing: every component
resumes from its own durable checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cairn.observability.logging import get_logger
from cairn.settings import Settings

_log = get_logger("cairn.workers")

RESTART_BACKOFF_INITIAL = 0.2
RESTART_BACKOFF_MAX = 5.0


@dataclass
class Component:
    """One long-running piece of work: ``run()`` forever, ``close()`` to release resources."""

    name: str
    run: Callable[[], Awaitable[Any]]
    close: Callable[[], Awaitable[Any]] | None = None
    target: Any = None
    restarts: int = 0
    last_error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def components_for(settings: Settings, container: Any) -> list[Component]:
    """Every component the container provides (projections, sagas + deadlines, relay)."""
    found: list[Component] = []
    projections = getattr(container, "projections", None)
    if projections is not None and hasattr(projections, "run"):
        found.append(
            Component(
                "projections", projections.run, getattr(projections, "close", None), projections
            )
        )
    sagas = getattr(container, "sagas", None)
    if sagas is not None and hasattr(sagas, "run"):
        found.append(Component("sagas", sagas.run, getattr(sagas, "close", None), sagas))
    if settings.broker_url:
        relay = getattr(container, "relay", None)
        if relay is None:
            from cairn.relay import build_relay

            relay = build_relay(settings, container.store)
        if relay is not None:
            found.append(Component("relay", relay.run, relay.close, relay))
    return found


class Workers:
    """Starts and stops the components of one process."""

    def __init__(self, settings: Settings, container: Any) -> None:
        self.settings = settings
        self.container = container
        self.components: list[Component] = []
        self._stopping = False

    async def start(self) -> None:
        self.components = components_for(self.settings, self.container)
        for component in self.components:
            component.task = asyncio.create_task(
                self._supervise(component), name=f"cairn-worker:{component.name}"
            )
        _log.info("workers_started", components=[c.name for c in self.components])

    def component(self, name: str) -> Any:
        """The object behind a running component (``relay``, ``projections``, ``sagas``)."""
        for c in self.components:
            if c.name == name:
                return c.target
        return None

    def alive(self) -> bool:
        return not self._stopping and all(
            c.task is not None and not c.task.done() for c in self.components
        )

    async def _supervise(self, component: Component) -> None:
        backoff = RESTART_BACKOFF_INITIAL
        while not self._stopping:
            try:
                await component.run()
                if self._stopping:
                    return
                _log.warning("worker_returned", component=component.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                component.restarts += 1
                component.last_error = f"{type(exc).__name__}: {exc}"
                _log.error("worker_crashed", component=component.name, exc_info=exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESTART_BACKOFF_MAX)

    async def stop(self) -> None:
        self._stopping = True
        for component in self.components:
            if component.task is not None:
                component.task.cancel()
        for component in self.components:
            if component.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await component.task
            if component.close is not None:
                try:
                    await component.close()
                except Exception as exc:
                    _log.warning("worker_close_failed", component=component.name, error=str(exc))
        _log.info("workers_stopped")

    async def run_forever(self) -> None:
        """``cairn worker``: start, then wait until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "running": c.task is not None and not c.task.done(),
                "restarts": c.restarts,
                "last_error": c.last_error,
            }
            for c in self.components
        ]
