"""The ``cairn worker`` process: its workers and their small HTTP listener, ``/metrics``,
``/healthz`` and ``/readyz`` on ``CAIRN_WORKER_METRICS_PORT`` (``--metrics-port``; 0, the
default, turns the listener off).

In the split layout (``cairn serve --no-workers`` beside ``cairn worker``) the saga transitions,
the circuit breakers the sagas and the relay call through, and the relay's state live in the
worker process: only the worker can export them. It reports into its own :class:`Metrics`, read
here like the API reads its own (component figures at scrape time, :func:`component_snapshot`).

Auth is the API's: ``/metrics`` wants an admin bearer token while auth is on (one Prometheus
credential scrapes both kinds of process); ``/healthz`` and ``/readyz`` are open, as on the API.
The listener runs in the worker's event loop (uvicorn, without its signal handlers: stopping is
the worker's), so a scrape costs no thread and reads the components the workers run.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cairn.api.auth import Authenticator, Role, build_authenticator, require_role
from cairn.api.problems import ProblemError, problem_response
from cairn.api.runtime import stop_workers
from cairn.api.serving import listening_socket
from cairn.api.status import PROBE_TIMEOUT, component_snapshot
from cairn.gc_tuning import settle_heap
from cairn.observability.logging import get_logger
from cairn.observability.metrics import CONTENT_TYPE, Metrics
from cairn.orders.bootstrap import Container
from cairn.orders.components import OrderComponents
from cairn.settings import Settings
from cairn.workers import Workers

_log = get_logger("cairn.worker")

#: How long ``stop()`` waits for open scrapes before closing the listener anyway.
STOP_TIMEOUT = 5.0


class _QuietServer(uvicorn.Server):
    """uvicorn without its SIGINT/SIGTERM handlers: the worker's own handlers stop it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def worker_app(
    container: Container,
    components: OrderComponents,
    workers: Workers,
    metrics: Metrics,
    auth: Authenticator,
) -> Starlette:
    """The listener's routes over the worker's components and metrics."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """200 while every worker runs and the event store answers (503 otherwise)."""
        try:
            await asyncio.wait_for(container.store.head_position(), timeout=PROBE_TIMEOUT)
            store = "ok"
        except Exception:
            store = "down"
        alive = workers.alive()
        body = {
            "status": "ok" if store == "ok" and alive else "unavailable",
            "event_store": store,
            "workers": "running" if alive else "not_running",
        }
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    async def exposition(request: Request) -> Response:
        try:
            require_role(auth.authenticate(request.headers.get("authorization")), Role.ADMIN)
        except ProblemError as exc:
            return problem_response(
                exc.status, exc.code, exc.detail, instance=request.url.path, headers=exc.headers
            )
        metrics.set_components(
            await component_snapshot(
                container.store, components, container.breakers.statuses(), relay_here=True
            )
        )
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", exposition),
        ]
    )


async def run_workers(
    settings: Settings, container: Container, components: OrderComponents, metrics: Metrics
) -> None:
    """Run ``components`` (built to report into ``metrics``) until SIGINT or SIGTERM, with the
    listener when ``settings.worker_metrics_port`` is set; the caller closes the components."""
    container.command_metrics.add(metrics.observe_command)
    workers = Workers(components.items())
    listener: WorkerListener | None = None
    if settings.worker_metrics_port:
        app = worker_app(container, components, workers, metrics, build_authenticator(settings))
        listener = WorkerListener(app, settings.host, settings.worker_metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if listener is not None:  # first: a port in use stops the process before any work
            await listener.start()
        await workers.start()
        settle_heap()
        await stop.wait()
    finally:
        if listener is not None:
            await listener.stop()
        await stop_workers(workers)


class WorkerListener:
    """``start()`` binds ``host:port`` (an OSError when it cannot); ``stop()`` closes it."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = _QuietServer(config)
        self._host = host
        self._port = port
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Bound here, not by uvicorn: a port in use is one clear error for the caller, where
        # uvicorn would log it and raise SystemExit inside its task.
        sock = listening_socket(self._host, self._port, "/metrics (CAIRN_WORKER_METRICS_PORT)")
        self._task = asyncio.create_task(self._server.serve([sock]), name="cairn:worker-http")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.02)
        if self._task.done():
            self._task.result()  # raises what stopped it
        _log.info("worker_metrics_listening", host=self._host, port=sock.getsockname()[1])

    async def stop(self) -> None:
        task = self._task
        if task is None:
            return
        self._server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        if not done:
            task.cancel()
        with contextlib.suppress(BaseException):
            await task
