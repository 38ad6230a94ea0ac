"""``cairn``: run the system, operate it, and show it off.

Every command reads ``CAIRN_*`` settings (``--database-url`` overrides the database). Errors are
one line on stderr and a non-zero exit, never a traceback; a database that cannot be reached
fails within ``CONNECT_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cairn.cli.schemas import schemas_app
from cairn.errors import CairnError
from cairn.settings import Settings

if TYPE_CHECKING:
    from cairn.orders.bootstrap import Container

CONNECT_TIMEOUT = 20.0

app = typer.Typer(
    name="cairn",
    help="Event-sourced order processing: API, workers, operations and a demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
projections_app = typer.Typer(help="Projection status and rebuilds.", no_args_is_help=True)
sagas_app = typer.Typer(help="List and retry sagas.", no_args_is_help=True)
tokens_app = typer.Typer(help="Bearer tokens for CAIRN_TOKENS_FILE.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
app.add_typer(sagas_app, name="sagas")
app.add_typer(tokens_app, name="tokens")
app.add_typer(schemas_app, name="schemas")

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
T = TypeVar("T")


class _State:
    database_url: str | None = None


_state = _State()


def _fail(message: str) -> typer.Exit:
    err_console.print(
        Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True
    )
    return typer.Exit(code=1)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first


def cli_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """One line on stderr and exit 1 for every expected failure; no traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            raise typer.Exit(code=130) from None
        except ValidationError as exc:
            errors = exc.errors()
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "settings"
            message = errors[0]["msg"] if errors else str(exc)
            raise _fail(f"invalid setting {where}: {message}") from None
        except CairnError as exc:
            raise _fail(f"{exc.message} [{exc.code}]") from None
        except TimeoutError:
            raise _fail(
                f"timed out after {CONNECT_TIMEOUT:g} s: the database did not answer"
            ) from None
        except (OSError, sqlite3.Error) as exc:
            raise _fail(f"{type(exc).__name__}: {_describe(exc)}") from None
        except Exception as exc:
            if type(exc).__module__.startswith(("psycopg", "aiosqlite")):
                raise _fail(f"database error: {_describe(exc)}") from None
            raise _fail(f"{type(exc).__name__}: {_describe(exc)}") from None

    return wrapper


def _settings(**overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if _state.database_url:
        values.setdefault("database_url", _state.database_url)
    return Settings(**values)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def run_service(coro: Coroutine[Any, Any, T]) -> T:
    """A long-running process on uvloop when it is installed, like ``cairn serve`` (uvicorn
    picks it up itself): its C event loop costs the workers less CPU per step."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency on CPython, off Windows
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def _bounded(awaitable: Awaitable[T], what: str = "the database") -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        raise CairnError(f"{what} did not answer within {CONNECT_TIMEOUT:g} s") from None


async def _open_container(settings: Settings) -> Container:
    from cairn.api.runtime import build_container

    return await _bounded(build_container(settings))


@app.callback()
def main(
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Overrides CAIRN_DATABASE_URL.", show_default=False),
    ] = None,
) -> None:
    """cairn: every state change is an event; everything else is derived from the log."""
    _state.database_url = database_url


# --- serve / worker --------------------------------------------------------------------------


@app.command()
@cli_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (CAIRN_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (CAIRN_PORT).")] = None,
    no_workers: Annotated[
        bool, typer.Option("--no-workers", help="Run the API only; no projections/sagas/relay.")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Serve only these APIs: command, query, admin (comma-separated; default all). "
            "Other routes answer 404; /healthz, /readyz and /metrics are always served.",
            show_default=False,
        ),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Connections handled at once; more are answered 503 (CAIRN_MAX_CONNECTIONS).",
        ),
    ] = None,
    backlog: Annotated[
        int | None,
        typer.Option(min=1, help="Connections queued before accept (CAIRN_BACKLOG)."),
    ] = None,
) -> None:
    """Run the HTTP API and, unless --no-workers, the workers in this process."""
    import uvicorn

    from cairn.api.app import create_app
    from cairn.api.service_roles import parse_roles
    from cairn.api.serving import bounded_protocol, listening_socket
    from cairn.observability.logging import configure_logging
    from cairn.observability.tracing import shutdown_tracing

    roles = parse_roles(only)
    settings = _settings(host=host, port=port, max_connections=max_connections, backlog=backlog)
    configure_logging(settings.log_level, json=settings.log_json)
    _check_database(settings)
    if settings.grpc_port:  # taken: one line now, not a traceback from the app's start-up
        listening_socket(settings.host, settings.grpc_port, "gRPC (CAIRN_GRPC_PORT)").close()
    _log_start(
        "serve_starting",
        settings,
        host=settings.host,
        port=settings.port,
        only=sorted(roles),
        read_database=_redact(settings.read_database_url) if settings.read_database_url else None,
    )
    app_ = create_app(settings, run_workers=not no_workers, freeze_heap=True, only=roles)
    config = uvicorn.Config(
        app_,
        host=settings.host,
        port=settings.port,
        # A request head is bounded before any ASGI code runs (431; see cairn.api.serving).
        http=bounded_protocol(settings.max_header_bytes, settings.max_headers),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # Bounded concurrency (SPEC §12 "Limits"): past max_connections open connections and
        # tasks, uvicorn answers 503 at once instead of taking on more work and memory.
        limit_concurrency=settings.max_connections,
        backlog=settings.backlog,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    # uvicorn installs SIGINT/SIGTERM handlers: it stops accepting, finishes in-flight requests,
    # then runs the lifespan shutdown (workers stopped, connections closed), and afterwards
    # re-raises the signal to the handler that was there before. A SIGTERM is the normal way to
    # stop a service, so that handler is a no-op and a clean shutdown exits 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run()
    finally:
        shutdown_tracing()  # the spans still queued leave before the process does
    if not server.started:
        raise _fail("the server did not start (see the log above)")


def _log_start(event: str, settings: Settings, **fields: object) -> None:
    """The start-up log line, with the process's PostgreSQL connection budget."""
    from cairn.observability.logging import get_logger
    from cairn.sql.budget import ConnectionBudget
    from cairn.store.urls import Backend, backend_of

    budget = "none (not PostgreSQL)"
    if backend_of(settings.database_url) is Backend.POSTGRES:
        split = ConnectionBudget.for_url(settings.database_url, settings.db_max_connections)
        budget = split.describe()
    get_logger("cairn.cli").info(event, db_connections=budget, **fields)


def _check_database(settings: Settings) -> None:
    """Fail fast, with one line, when the database is unreachable or the URL is bad."""

    async def check() -> None:
        import cairn

        # CAIRN_AUTO_MIGRATE=false: the schema must be there already (``cairn migrate``).
        store = await _bounded(
            cairn.open_store(settings.database_url, migrate=settings.auto_migrate)
        )
        await store.close()

    _run(check())


@app.command()
@cli_errors
def worker(
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Run only these workers: projections, sagas, relay, deadlines (comma-separated; "
            "default all). Deadlines are the sagas' timers: they run with the saga runner.",
            show_default=False,
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0, help="Port of /metrics, /healthz, /readyz (CAIRN_WORKER_METRICS_PORT; 0 off)."
        ),
    ] = None,
) -> None:
    """Run the workers alone (projections, sagas and deadlines, relay), for scale-out."""
    from cairn.observability.logging import configure_logging
    from cairn.observability.tracing import configure_tracing, shutdown_tracing
    from cairn.workers import parse_worker_kinds

    kinds = parse_worker_kinds(only)
    settings = _settings(worker_metrics_port=metrics_port)
    configure_logging(settings.log_level, json=settings.log_json)
    configure_tracing()
    _log_start("worker_starting", settings, only=sorted(kinds))

    async def run() -> None:
        from cairn.api.runtime import close_container
        from cairn.api.worker_process import run_workers
        from cairn.observability.metrics import Metrics
        from cairn.orders.components import build_components

        container, metrics = await _open_container(settings), Metrics()
        try:
            hook = metrics.observe_saga_transition
            components = await _bounded(
                build_components(settings, container, only=kinds, on_saga_transition=hook)
            )
            if not components.items():  # only the relay was asked for, and no broker is set
                await components.close()
                raise CairnError("nothing to run: the relay needs CAIRN_BROKER_URL")
            try:
                await run_workers(settings, container, components, metrics)
            finally:
                await components.close()
        finally:
            await close_container(container)

    try:
        run_service(run())
    finally:
        shutdown_tracing()


# --- operations ------------------------------------------------------------------------------


@app.command()
@cli_errors
def migrate() -> None:
    """Create or upgrade every schema (event store, read models, sagas, checkpoints).

    Idempotent: a second run changes nothing and exits 0."""
    from cairn.cli import ops

    settings = _settings()
    applied = _run(ops.migrate(settings))
    for name in applied:
        console.print(f"applied {name}", highlight=False, markup=False)
    console.print(
        f"schema up to date: {_redact(settings.database_url)}", highlight=False, markup=False
    )


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url


@app.command()
@cli_errors
def events(
    stream: Annotated[str, typer.Argument(help="Stream id, e.g. order-<uuid>.")],
    data: Annotated[bool, typer.Option("--data", help="Show each event's payload.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print a stream's events oldest first: version, global position, type."""
    import cairn

    settings = _settings()

    async def run() -> list[Any]:
        from cairn.orders.codec import domain_personal_data, domain_upcasters

        opening = cairn.open_store(
            settings.database_url,
            migrate=False,
            upcasters=domain_upcasters(),
            personal_data=domain_personal_data(),
        )
        store = await _bounded(opening)
        try:
            return await _bounded(store.read_stream(stream))
        finally:
            await store.close()

    recorded = _run(run())
    if as_json:
        for ev in recorded:
            line = {
                "version": ev.version,
                "position": ev.position,
                "type": ev.type,
                "id": str(ev.id),
                "recorded_at": ev.recorded_at.isoformat(),
                "data": ev.data,
                "metadata": ev.metadata,
            }
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        return
    if not recorded:
        err_console.print(f"stream {stream!r} has no events", highlight=False, markup=False)
        raise typer.Exit(code=1)
    table = Table(title=f"{stream} ({len(recorded)} events)")
    table.add_column("version", justify="right")
    table.add_column("position", justify="right")
    table.add_column("type")
    table.add_column("recorded_at")
    if data:
        table.add_column("data", overflow="fold")
    for ev in recorded:
        row = [str(ev.version), str(ev.position), ev.type, ev.recorded_at.isoformat()]
        if data:
            row.append(json.dumps(ev.data, ensure_ascii=False))
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def _print_projections(rows: list[dict[str, Any]]) -> None:
    table = Table(title="projections")
    for col in ("name", "position", "lag_events", "lag_seconds", "state", "errors", "parked"):
        table.add_column(col, justify="right" if col not in ("name", "state") else "left")
    for row in rows:
        table.add_row(
            str(row["name"]),
            str(row["position"]),
            str(row["lag_events"]),
            f"{row['lag_seconds']:.1f}",
            str(row["state"]),
            str(row["errors"]),
            str(row["parked"]),
        )
    console.print(table)


@projections_app.command("status")
@cli_errors
def projections_status() -> None:
    """Position, lag, state, errors and parked events of every projection."""
    from cairn.cli import ops

    settings = _settings()
    _print_projections(_run(ops.projection_status(settings)))


@projections_app.command("rebuild")
@cli_errors
def projections_rebuild(
    name: Annotated[str, typer.Argument(help="Projection name (see `projections status`).")],
) -> None:
    """Rebuild a projection from position 0 into fresh tables, then swap."""
    from cairn.cli import ops

    settings = _settings()
    _run(ops.rebuild_with_progress(settings, [name], console))


@app.command()
@cli_errors
def replay(
    name: Annotated[
        str | None, typer.Argument(help="Projection to replay (default: every projection).")
    ] = None,
) -> None:
    """Replay the $all log into projections (rebuild-and-swap), with a progress bar."""
    from cairn.cli import ops

    settings = _settings()
    _run(ops.rebuild_with_progress(settings, [name] if name else None, console))


@sagas_app.command("list")
@cli_errors
def sagas_list(
    status: Annotated[str | None, typer.Option(help="running, completed, failed …")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """List sagas, newest first."""
    from cairn.cli import ops

    settings = _settings()
    rows = _run(ops.list_sagas(settings, status, limit))
    table = Table(title=f"sagas ({len(rows)})")
    for col in ("saga_id", "type", "order_id", "status", "step"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            *(str(row.get(c, "")) for c in ("saga_id", "type", "order_id", "status", "step"))
        )
    console.print(table)


@sagas_app.command("retry")
@cli_errors
def sagas_retry(saga_id: Annotated[str, typer.Argument(help="Saga id to retry.")]) -> None:
    """Retry a failed saga from its failed step."""
    from cairn.cli import ops

    settings = _settings()
    result = _run(ops.retry_saga(settings, saga_id))
    console.print(f"saga {saga_id}: {result}", highlight=False, markup=False)


@tokens_app.command("hash")
@cli_errors
def tokens_hash(
    role: Annotated[str, typer.Argument(help="admin, operator or customer:<customer_id>.")],
) -> None:
    """Print the CAIRN_TOKENS_FILE line for a token read from stdin (prompted, hidden, on a
    terminal): '<sha256 hex> <role>'. The token itself is never printed."""
    from cairn.api.auth import parse_role, token_digest

    parse_role(role, "the role", "check")
    if sys.stdin.isatty():
        token = typer.prompt("token", hide_input=True, err=True)
    else:
        token = sys.stdin.readline()
    token = token.strip()
    if not token or any(ch.isspace() for ch in token):
        raise _fail("give one token, without spaces, on stdin")
    typer.echo(f"{token_digest(token)} {role.strip()}")  # one line, never wrapped


@app.command("export")
@cli_errors
def export_(
    file: Annotated[Path, typer.Argument(help="Where to write the export (JSON lines).")],
) -> None:
    """Write the whole log as JSON lines: every event as stored (positions, versions, metadata,
    personal fields still sealed), the subject keys and the streams' lifecycle settings.

    Events appended while it runs are left for the next export. Snapshots are not carried."""
    from cairn.cli import transfer

    outcome = _run(transfer.export_to(_settings(), file, err_console))
    console.print(outcome.describe("exported", f"to {file}"), highlight=False, markup=False)


@app.command("import")
@cli_errors
def import_(
    file: Annotated[Path, typer.Argument(help="An export written by `cairn export`.")],
) -> None:
    """Load an export into an EMPTY, migrated store (run `cairn migrate` first), keeping
    positions, versions, ids, times, metadata, sealed payloads and subject keys, in one
    transaction: all of it or nothing. A store that holds anything is refused.

    No effect runs twice: the fulfilment saga's checkpoints are recorded at the imported head,
    so an imported OrderPlaced never reserves stock or takes a payment again (sagas that were
    still running at export time do not resume). Projections rebuild their read models from
    the imported log on their first run."""
    from cairn.cli import transfer

    outcome = _run(transfer.import_from(_settings(), file, err_console))
    console.print(outcome.describe("imported", f"from {file}"), highlight=False, markup=False)


# --- demo / bench ----------------------------------------------------------------------------


@app.command()
@cli_errors
def demo(
    database_url: Annotated[
        str, typer.Option(help="Where the demo writes (a fresh SQLite file by default).")
    ] = "sqlite:///./cairn-demo.db",
) -> None:
    """Run the whole order flow on embedded SQLite and show the result (no setup needed)."""
    from cairn.cli.demo import run_demo

    _run(run_demo(database_url, console))


@app.command()
@cli_errors
def bench(
    orders: Annotated[int, typer.Option(min=1, help="Orders to create and place.")] = 500,
    concurrency: Annotated[int, typer.Option(min=1, max=256)] = 16,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="Database to write the benchmark's orders to (default: a scratch SQLite file, "
            "removed afterwards; never CAIRN_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Measure command throughput and latency through the command side (no HTTP)."""
    from cairn.cli.benchmark import bench_settings, run_bench

    if _state.database_url:
        raise _fail("cairn bench never uses the configured database: pass --database URL")

    async def run() -> None:
        async with bench_settings(Settings(), database) as settings:
            console.print(
                f"benchmark database: {_redact(settings.database_url)}",
                highlight=False,
                markup=False,
            )
            await run_bench(settings, orders, concurrency, console)

    _run(run())
