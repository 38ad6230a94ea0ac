"""The background work of a cairn process: projections, sagas and their deadlines, the relay.

``cairn serve`` runs them beside the API (unless ``--no-workers``); ``cairn worker`` runs them
alone, for scale-out. The application builds each component from its composition root's
container (``cairn.orders.components.build_components``; the API uses the same objects for its
operator routes, running or not); :class:`Workers` runs them. Each component owns its leases
(advisory locks on PostgreSQL, ``flock`` on SQLite), so several processes can run workers
against one database and each projection, saga partition and the relay has one owner at a time;
ownership moves when a process dies.

A component whose ``run()`` crashes is restarted after a short backoff (the error is logged), so
one failing component cannot stop the others; a stopped process loses nothing, because every
component resumes from its own durable checkpoint. The backoff is short (at most
:data:`RESTART_BACKOFF`'s maximum) and starts again from its first step once a run lasted
:data:`HEALTHY_RUN` seconds: a component that crashed again and again through a database outage
is restarted within a couple of seconds of the database's return, not after a delay grown over
the whole outage (SPEC §12: every worker resumes within 15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypedDict, TypeVar

from cairn.background import mark_background
from cairn.backoff import Backoff
from cairn.errors import ApplicationError
from cairn.observability.logging import get_logger
from cairn.projections import ProjectionEngine
from cairn.relay import Relay
from cairn.sagas import SagaRunner

_log = get_logger("cairn.workers")

RESTART_BACKOFF = Backoff(initial=0.2, maximum=2.0)
#: A run that lasted this long was healthy: the next crash backs off from the first step again.
HEALTHY_RUN = 30.0
CLOSE_TIMEOUT = 10.0


#: What ``cairn worker --only`` accepts, and the component that does it. Deadlines are the saga
#: runner's timers (fired by whoever owns the saga's partition), so they run with the sagas.
WORKER_KINDS: dict[str, str] = {
    "projections": "projections",
    "sagas": "sagas",
    "deadlines": "sagas",
    "relay": "relay",
}
ALL_COMPONENTS = frozenset(WORKER_KINDS.values())


def parse_worker_kinds(text: str | None) -> frozenset[str]:
    """``"projections,relay"`` → the names of the components to run; empty or None → all."""
    names = [part.strip().lower() for part in (text or "").split(",") if part.strip()]
    unknown = [name for name in names if name not in WORKER_KINDS]
    if unknown:
        raise ApplicationError(
            "app.unknown_worker",
            f"unknown worker {unknown[0]!r} in --only (choose from {', '.join(WORKER_KINDS)})",
        )
    return frozenset(WORKER_KINDS[name] for name in names) if names else ALL_COMPONENTS


class Component(Protocol):
    """What :class:`Workers` runs: ``run()`` until cancelled (or crashed: it is restarted), and
    ``close()`` to release what it holds. What each component reports (projection statuses,
    saga counts, relay status) is its own typed method, read through :class:`Components`."""

    async def run(self) -> None: ...

    async def close(self) -> None: ...


#: The state the saga definition keeps (the application's; ``Fulfilment`` for cairn.orders).
S = TypeVar("S")
P = TypeVar("P", bound=ProjectionEngine)


@dataclass
class Components(Generic[P, S]):
    """The long-running parts of the system, built but not started: the application's
    projection engine (``P``, a :class:`ProjectionEngine`), its saga runner over saga state
    ``S``, and the relay."""

    projections: P | None = None
    sagas: SagaRunner[S] | None = None
    relay: Relay | None = None

    def items(self) -> list[tuple[str, Component]]:
        named: list[tuple[str, Component | None]] = [
            ("projections", self.projections),
            ("sagas", self.sagas),
            ("relay", self.relay),
        ]
        return [(name, component) for name, component in named if component is not None]

    async def close(self) -> None:
        for name, component in reversed(self.items()):
            try:
                # Bounded: a stuck close must not keep a stopping process alive.
                await asyncio.wait_for(component.close(), timeout=CLOSE_TIMEOUT)
            except Exception as exc:
                _log.warning("component_close_failed", component=name, error=repr(exc))


class WorkerStatus(TypedDict):
    """One supervised component, as ``/api/v1/admin/health`` shows it."""

    name: str
    running: bool
    restarts: int
    last_error: str | None


@dataclass
class _Running:
    name: str
    target: Component
    restarts: int = 0
    last_error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Workers:
    """Runs the components of one process; ``stop()`` cancels them (closing is the owner's)."""

    def __init__(self, components: Sequence[tuple[str, Component]]) -> None:
        """``components``: each component by name (:meth:`Components.items`)."""
        self.components = list(components)
        self._running: list[_Running] = []
        self._stopping = False

    async def start(self) -> None:
        for name, target in self.components:
            running = _Running(name, target)
            running.task = asyncio.create_task(self._supervise(running), name=f"cairn:{name}")
            self._running.append(running)
        _log.info("workers_started", components=[r.name for r in self._running])

    def alive(self) -> bool:
        return (
            not self._stopping
            and bool(self._running)
            and all(r.task is not None and not r.task.done() for r in self._running)
        )

    async def _supervise(self, running: _Running) -> None:
        # Requests waiting for a connection go first (cairn.background); the mark is the task's.
        mark_background()
        restarts = 0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            started = loop.time()
            try:
                await running.target.run()
                healthy = loop.time() - started >= HEALTHY_RUN
                if self._stopping:
                    return
                _log.warning("worker_returned", component=running.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                healthy = loop.time() - started >= HEALTHY_RUN
                running.restarts += 1
                running.last_error = f"{type(exc).__name__}: {exc}"
                _log.error("worker_crashed", component=running.name, exc_info=exc)
            restarts = 1 if healthy else restarts + 1
            await asyncio.sleep(RESTART_BACKOFF.delay(restarts))

    async def stop(self) -> None:
        self._stopping = True
        for running in self._running:
            if running.task is not None:
                running.task.cancel()
        for running in self._running:
            if running.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await running.task
        _log.info("workers_stopped")

    def status(self) -> list[WorkerStatus]:
        return [
            WorkerStatus(
                name=r.name,
                running=r.task is not None and not r.task.done(),
                restarts=r.restarts,
                last_error=r.last_error,
            )
            for r in self._running
        ]
