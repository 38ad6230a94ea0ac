"""What one API process holds while it runs: settings, the composition root's container, the
idempotency records, metrics, the authenticator and (unless disabled) the workers.

Built in the app's lifespan, never at import time; routes reach it through ``deps.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass, field

from cairn.api.auth import Authenticator, build_authenticator
from cairn.api.idempotency import IdempotencyStore, open_idempotency_store
from cairn.api.jobs import Jobs
from cairn.api.service_roles import ALL_ROLES, ServiceRole, components_for
from cairn.observability.logging import get_logger
from cairn.observability.metrics import Metrics
from cairn.orders.bootstrap import Container, bootstrap
from cairn.orders.components import OrderComponents, build_components
from cairn.settings import Settings
from cairn.store.base import EventStore
from cairn.workers import ALL_COMPONENTS, Workers

_log = get_logger("cairn.runtime")

#: How long shutting down waits for the workers before closing what they use anyway.
WORKERS_STOP_TIMEOUT = 10.0


@dataclass
class Runtime:
    settings: Settings
    container: Container
    store: EventStore
    idempotency: IdempotencyStore
    metrics: Metrics
    auth: Authenticator
    components: OrderComponents | None = None
    workers: Workers | None = None
    started_at: float = field(default_factory=time.time)
    jobs: Jobs = field(default_factory=Jobs)
    owns_container: bool = True
    #: ``min_position`` waiters now, per principal (bounded by CAIRN_MAX_WAITERS_PER_CLIENT).
    waiters: dict[str, int] = field(default_factory=dict)

    async def close(self) -> None:
        hooks = self.container.command_metrics.hooks
        if self.metrics.observe_command in hooks:
            hooks.remove(self.metrics.observe_command)
        await self.jobs.close()
        if self.workers is not None:
            await stop_workers(self.workers)
        await self.idempotency.close()
        if self.components is not None:
            await self.components.close()
        if self.owns_container:
            await self.container.close()


async def stop_workers(workers: Workers, timeout: float = WORKERS_STOP_TIMEOUT) -> bool:
    """Stop ``workers`` within ``timeout`` seconds; False (logged) when they did not.

    Not ``asyncio.wait_for``: on its timeout it cancels ``stop()`` and then waits for it to
    finish, and ``stop()`` waits for every worker task. On Python 3.11 a task can survive its
    cancellation (``asyncio.wait_for`` returns normally when the awaited thing completes in the
    same loop iteration as the cancel, CPython gh-86296; the projection and saga loops wait
    like that, woken all the time under load), so that wait could last forever and a SIGTERM
    never stopped the process. Here the caller moves on; whatever is left is cancelled again
    when the event loop closes.
    """
    stopping = asyncio.ensure_future(workers.stop())
    done, _ = await asyncio.wait({stopping}, timeout=timeout)
    if not done:
        _log.warning("workers_stop_timed_out", timeout_s=timeout)
        return False
    try:
        stopping.result()
    except Exception as exc:  # shutting down: log and carry on closing
        _log.warning("workers_stop_failed", error=str(exc))
        return False
    return True


async def build_container(settings: Settings) -> Container:
    """The composition root's container (``cairn.orders.bootstrap.bootstrap``)."""
    return await bootstrap(settings)


async def close_container(container: Container) -> None:
    await container.close()


async def start_runtime(
    settings: Settings,
    container: Container | None,
    *,
    metrics: Metrics,
    run_workers: bool,
    auth: Authenticator | None = None,
    roles: Collection[ServiceRole] = ALL_ROLES,
) -> Runtime:
    """``auth``: built from ``settings`` when None (``create_app`` builds it up front, so that a
    bad token entry fails before the server starts). ``roles``: the services this process
    serves (``cairn serve --only``); only the components their routes or the workers need are
    built (a command-only process without workers builds none)."""
    authenticator = auth if auth is not None else build_authenticator(settings)
    owns = container is None
    if container is None:
        container = await build_container(settings)
    components: OrderComponents | None = None
    try:
        idem = await open_idempotency_store(
            settings.sql_url, container.database, settings.idempotency_ttl
        )
        needed = components_for(roles) | (ALL_COMPONENTS if run_workers else frozenset())
        components = await build_components(
            settings, container, only=needed, on_saga_transition=metrics.observe_saga_transition
        )
    except BaseException:
        if components is not None:
            await components.close()
        if owns:
            await close_container(container)
        raise
    runtime = Runtime(
        settings=settings,
        container=container,
        store=container.store,
        idempotency=idem,
        metrics=metrics,
        auth=authenticator,
        owns_container=owns,
        components=components,
    )
    # Every command through the bus (the API's and the sagas') is timed by the command side's
    # metrics middleware; it reports to this process's Prometheus registry.
    container.command_metrics.add(metrics.observe_command)
    if run_workers:
        runtime.workers = Workers(components.items())
        await runtime.workers.start()
    return runtime
