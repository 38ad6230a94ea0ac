"""Time travel for read models (SPEC §17, role ``admin``): a projection's rows as they were at a
past global position, and the save points that answer it (:mod:`cairn.projections.as_of`).

A position beyond the head of the log is refused (422 ``projection.position_beyond_head``):
the rows there are not known yet. Pages are offsets into the rows in key order (the answer at a
position never changes, so an offset always names the same row).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import JSONResponse, Response

from cairn.api.deps import Admin, RuntimeDep
from cairn.api.problems import ProblemError
from cairn.api.runtime import Runtime
from cairn.api.schemas import MAX_INT
from cairn.projections import ProjectionEngine

router = APIRouter(prefix="/api/v1/admin/projections", tags=["admin"])

Name = Annotated[str, Path(min_length=1, max_length=100)]
MAX_ROWS = 1000
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "A cursor that is not one of ours, or no such table"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not an admin"},
    404: {"description": "Unknown projection"},
    422: {"description": "A position beyond the head of the log"},
}


def _engine(runtime: Runtime) -> ProjectionEngine:
    engine = runtime.components.projections if runtime.components else None
    if engine is None:
        raise ProblemError(503, "app.read_model_unavailable", "the read models are not available")
    return engine


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()):
        raise ProblemError(400, "app.bad_cursor", f"invalid cursor: {cursor!r}")
    return int(cursor)


@router.get("/{name}/as-of", responses=_RESPONSES)
async def read_model_as_of(
    name: Name,
    runtime: RuntimeDep,
    _: Admin,
    position: Annotated[int, Query(ge=0, le=MAX_INT)],
    table: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 100,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The projection's rows (of ``table``, by default its first) as they were at global
    ``position``, in key order; ``next_cursor`` fetches the next page. Replayed in memory from
    the nearest save point at or before ``position`` (``save_point``, ``replayed``)."""
    engine = _engine(runtime)
    model = engine.runner(name).model
    tables = [t.base for t in model.tables]
    chosen = table or tables[0]
    if chosen not in tables:
        raise ProblemError(
            400, "projection.unknown_table", f"projection {name!r} has no table {chosen!r}"
        )
    start = _offset(cursor)
    head = await runtime.store.head_position()
    if position > head:
        raise ProblemError(
            422,
            "projection.position_beyond_head",
            f"position {position} is beyond the head of the log ({head})",
            head=head,
        )
    found = await engine.as_of(name, position)
    rows = found.rows[chosen]
    page = rows[start : start + limit]
    following = start + len(page)
    return JSONResponse(
        {
            "projection": name,
            "position": position,
            "head": head,
            "save_point": found.save_point,
            "replayed": found.replayed,
            "table": chosen,
            "tables": tables,
            "total": len(rows),
            "rows": page,
            "next_cursor": str(following) if following < len(rows) else None,
        }
    )


@router.get("/{name}/save-points", responses=_RESPONSES)
async def save_points(name: Name, runtime: RuntimeDep, _: Admin) -> Response:
    """The projection's save points (copies of its rows at a position), oldest first."""
    points = await _engine(runtime).save_points(name)
    return JSONResponse(
        {
            "projection": name,
            "save_points": [{"version": p.version, "position": p.position} for p in points],
        }
    )
