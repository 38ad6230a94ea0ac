"""The admin API (role ``admin``): the log and streams, projections (status, rebuild, parked
events), replay jobs, sagas (list, detail, retry), snapshots, forget-customer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import JSONResponse, Response

from cairn.api import services
from cairn.api.deps import Admin, RuntimeDep
from cairn.api.jobs import Job, Progress
from cairn.api.problems import ProblemError
from cairn.api.runtime import Runtime
from cairn.api.schemas import MAX_INT
from cairn.orders.components import FulfilmentRunner
from cairn.store.base import RecordedEvent, category_of

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

MAX_EVENTS = 10_000
StreamId = Annotated[str, Path(min_length=1, max_length=255)]
Name = Annotated[str, Path(min_length=1, max_length=100)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not an admin"},
    404: {"description": "Unknown stream, projection, saga or job"},
}


def event_json(e: RecordedEvent) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "stream_id": e.stream_id,
        "type": e.type,
        "version": e.version,
        "position": e.position,
        "data": e.data,
        "metadata": e.metadata,
        "recorded_at": e.recorded_at.isoformat(),
        "schema_version": e.schema_version,
    }


# --- the log ---------------------------------------------------------------------------------


@router.get("/events", responses=_RESPONSES)
async def all_events(
    runtime: RuntimeDep,
    _: Admin,
    after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 100,
) -> Response:
    """The ``$all`` log after a position; page on with ``next_after``."""
    events = await runtime.store.read_all(after=after, limit=limit)
    next_after = events[-1].position if events else after
    return JSONResponse({"events": [event_json(e) for e in events], "next_after": next_after})


@router.get("/streams/{stream_id}", responses=_RESPONSES)
async def stream(
    stream_id: StreamId,
    runtime: RuntimeDep,
    _: Admin,
    from_version: Annotated[int, Query(ge=1, le=MAX_INT)] = 1,
    to_version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
) -> Response:
    """One stream's events (oldest first) and its lifecycle settings."""
    events = await runtime.store.read_stream(
        stream_id, from_version=from_version, to_version=to_version
    )
    info = await runtime.store.stream_info(stream_id)
    if info.version == 0:
        raise ProblemError(404, "stream.not_found", f"stream {stream_id!r} does not exist")
    return JSONResponse(
        {
            "stream_id": stream_id,
            "version": info.version,
            "deleted": info.deleted,
            "events": [event_json(e) for e in events],
        },
        headers={"ETag": f'"{info.version}"'},
    )


@router.get("/events/{stream_id}", responses=_RESPONSES)
async def stream_events(
    stream_id: StreamId,
    runtime: RuntimeDep,
    admin: Admin,
    from_version: Annotated[int, Query(ge=1, le=MAX_INT)] = 1,
    to_version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
) -> Response:
    """Seed 004's path for ``GET /api/v1/admin/streams/{stream_id}``: the same answer."""
    return await stream(stream_id, runtime, admin, from_version, to_version)


# --- projections -----------------------------------------------------------------------------


@router.get("/projections", responses=_RESPONSES)
async def projections(runtime: RuntimeDep, _: Admin) -> Response:
    """Position, lag (events and seconds), state, errors and parked count of each projection."""
    return JSONResponse({"projections": await services.projection_statuses(runtime)})


async def _known_projection(runtime: Runtime, name: str) -> None:
    names = {p["name"] for p in await services.projection_statuses(runtime)}
    if name not in names:
        raise ProblemError(404, "projection.not_found", f"no projection named {name!r}")


def _start_rebuild(runtime: Runtime, name: str, kind: str) -> Job:
    running = runtime.jobs.running_for(name)
    if running is not None:
        return running

    async def work(progress: Progress) -> None:
        await services.rebuild_projection(runtime, name, progress)

    return runtime.jobs.start(kind, name, 0, work)


@router.post("/projections/{name}/rebuild", status_code=202, responses=_RESPONSES)
async def rebuild(name: Name, runtime: RuntimeDep, _: Admin) -> Response:
    """Rebuild from position 0 into fresh tables, then swap; queries keep answering from the
    old tables meanwhile. Follow the job at ``/api/v1/admin/replays/{job_id}``."""
    (job,) = await _start_jobs(runtime, name, "rebuild")
    return JSONResponse(
        {"name": name, "state": "rebuilding", "job_id": job.job_id}, status_code=202
    )


@router.post("/projections/rebuild", status_code=202, responses=_RESPONSES)
async def rebuild_all(runtime: RuntimeDep, _: Admin) -> Response:
    """Seed 004's path: rebuild every projection (each as in ``…/projections/{name}/rebuild``);
    ``jobs`` follow them at ``/api/v1/admin/replays/{job_id}``."""
    jobs = await _start_jobs(runtime, None, "rebuild")
    return JSONResponse(
        {
            "projections": [
                {"name": job.target, "state": "rebuilding", "job_id": job.job_id} for job in jobs
            ],
            "jobs": [job.as_dict() for job in jobs],
        },
        status_code=202,
    )


@router.get("/projections/{name}/parked", responses=_RESPONSES)
async def parked(name: Name, runtime: RuntimeDep, _: Admin) -> Response:
    """Events the projection parked (dead-lettered), with their errors."""
    await _known_projection(runtime, name)
    return JSONResponse({"name": name, "parked": await services.parked_events(runtime, name)})


@router.post("/projections/{name}/parked/retry", responses=_RESPONSES)
async def retry_parked(
    name: Name,
    runtime: RuntimeDep,
    _: Admin,
    position: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    id: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Re-apply parked events (the one at ``position`` or with ``id``, or all of them)."""
    await _known_projection(runtime, name)
    result = await services.retry_parked(runtime, name, position=position, parked_id=id)
    return JSONResponse({"name": name, **result})


# --- replay jobs -----------------------------------------------------------------------------


@router.post("/replays", status_code=202, responses=_RESPONSES)
async def start_replay(
    runtime: RuntimeDep,
    _: Admin,
    projection: Annotated[str, Query(min_length=1, max_length=100)],
) -> Response:
    """Replay the log into a projection (rebuild-and-swap) as a job with progress."""
    (job,) = await _start_jobs(runtime, projection, "replay")
    return JSONResponse(job.as_dict(), status_code=202)


@router.post("/events/replay", status_code=202, responses=_RESPONSES)
async def replay_events(
    runtime: RuntimeDep,
    _: Admin,
    projection: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> Response:
    """Seed 004's path for ``POST /api/v1/admin/replays``: replay the log into every projection
    (or the one ``?projection=`` names) as jobs with progress."""
    jobs = await _start_jobs(runtime, projection, "replay")
    return JSONResponse({"jobs": [job.as_dict() for job in jobs]}, status_code=202)


async def _start_jobs(runtime: Runtime, name: str | None, kind: str) -> list[Job]:
    """A rebuild job for projection ``name`` (404 when unknown), or one for each projection."""
    if name is not None:
        await _known_projection(runtime, name)
        names = [name]
    else:
        names = [p["name"] for p in await services.projection_statuses(runtime)]
    jobs = [_start_rebuild(runtime, one, kind) for one in names]
    head = await runtime.store.head_position()
    for job in jobs:
        job.total = job.total or head
    return jobs


@router.get("/replays", responses=_RESPONSES)
async def list_replays(runtime: RuntimeDep, _: Admin) -> Response:
    return JSONResponse({"jobs": [j.as_dict() for j in runtime.jobs.list()]})


@router.get("/replays/{job_id}", responses=_RESPONSES)
async def replay_job(job_id: Name, runtime: RuntimeDep, _: Admin) -> Response:
    job = runtime.jobs.get(job_id)
    if job is None:
        raise ProblemError(404, "job.not_found", f"no replay job {job_id!r}")
    return JSONResponse(job.as_dict())


# --- sagas -----------------------------------------------------------------------------------


def _sagas(runtime: Runtime) -> FulfilmentRunner:
    sagas = runtime.components.sagas if runtime.components else None
    if sagas is None:
        raise ProblemError(503, "saga.unavailable", "sagas are not configured")
    return sagas


@router.get("/sagas", responses=_RESPONSES)
async def list_sagas(
    runtime: RuntimeDep,
    _: Admin,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Sagas, most recently active first, optionally of one status."""
    records = await _sagas(runtime).list(status, limit)
    return JSONResponse({"sagas": [r.to_dict() for r in records]})


@router.get("/sagas/{saga_id}", responses=_RESPONSES)
async def saga_detail(saga_id: Name, runtime: RuntimeDep, _: Admin) -> Response:
    """One saga and its history (messages received, commands sent, answers)."""
    sagas = _sagas(runtime)
    record = await sagas.get(saga_id)
    if record is None:
        raise ProblemError(404, "saga.not_found", f"no saga {saga_id!r}")
    history = await sagas.history(saga_id)
    return JSONResponse({**record.to_dict(), "history": [h.to_dict() for h in history]})


@router.post("/sagas/{saga_id}/retry", status_code=202, responses=_RESPONSES)
async def retry_saga(saga_id: Name, runtime: RuntimeDep, _: Admin) -> Response:
    """Retry a failed saga from its failed steps."""
    record = await _sagas(runtime).retry(saga_id)
    return JSONResponse(record.to_dict(), status_code=202)


# --- snapshots and personal data ------------------------------------------------------------


@router.post("/snapshots/{stream_id}", status_code=201, responses=_RESPONSES)
async def create_snapshot(stream_id: StreamId, runtime: RuntimeDep, _: Admin) -> Response:
    """Snapshot an aggregate stream now (an optimisation only)."""
    try:
        repository = runtime.container.repositories.for_category(category_of(stream_id))
    except KeyError:
        raise ProblemError(
            404, "snapshot.unsupported", f"{stream_id!r} is not an aggregate stream"
        ) from None
    snapshot = await repository.snapshot_now(stream_id)
    if snapshot is None:
        raise ProblemError(404, "stream.not_found", f"stream {stream_id!r} does not exist")
    return JSONResponse(
        {
            "stream_id": snapshot.stream_id,
            "version": snapshot.version,
            "recorded_at": snapshot.recorded_at.isoformat(),
        },
        status_code=201,
    )


@router.post("/customers/{customer_id}/forget", responses=_RESPONSES)
async def forget_customer(customer_id: Name, runtime: RuntimeDep, admin: Admin) -> Response:
    """Crypto-shred a customer: their name, email and address read back as ``[redacted]``
    everywhere from now on (replays too) while the rest of the history stays. Their orders are
    found in the log, whatever the read models' lag; their snapshots and cached states are
    deleted now. Read models erase their copies once they pass ``position``
    (``pending_read_models`` lists those not there yet; ``?min_position=`` waits for it).
    Idempotent: repeating it is harmless, and finishes a forget that failed half-way."""
    done = await services.forget_customer(runtime, customer_id, admin.name)
    statuses = await services.projection_status_list(runtime)
    return JSONResponse(
        {
            "customer_id": done.customer_id,
            "key_deleted": done.key_deleted,
            "order_ids": list(done.order_ids),
            "position": done.position,
            "pending_read_models": sorted(s.name for s in statuses if s.position < done.position),
        }
    )
