"""Every error as an RFC 9457 ``application/problem+json`` response with a stable ``code``.

    CairnError (errors.py)            → its own ``status`` and ``code``
    ConcurrencyError                  → 409 store.concurrency (412 when the client sent If-Match)
    RequestValidationError, bad JSON  → 400 app.malformed_json
    RequestValidationError, fields    → 422 app.validation (``errors``: location, message, type)
    unknown route / method            → 404 app.not_found / 405 app.method_not_allowed
    body over the configured limit    → 413 app.body_too_large (raised by the middleware)
    anything else                     → 500 app.internal, logged with its traceback

No input should reach the last line; if one does, the client still gets a problem document and
the log has the traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from cairn.errors import CairnError, ConcurrencyError
from cairn.observability.logging import current_correlation_id, get_logger

PROBLEM_JSON = "application/problem+json"
_log = get_logger("cairn.api")


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """A problem document; ``extra`` members never override the standard ones."""
    body: dict[str, Any] = {
        "type": f"https://cairn.dev/problems/{code}",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    cid = current_correlation_id()
    if cid:
        body["correlation_id"] = cid
    for key, value in (extra or {}).items():
        if key not in body:
            body[key] = _jsonable(value)
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


class ProblemError(Exception):
    """Raised by routes for refusals that are neither domain nor store errors (412, 401 …)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    result = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        result.append(
            {
                "location": ".".join(loc),
                "field": loc[-1] if loc else None,
                "message": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return result


def _is_malformed_json(errors: Sequence[Any]) -> bool:
    return any(err.get("type") == "json_invalid" for err in errors)


async def _on_cairn_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CairnError)
    status = int(getattr(exc, "status", 400))
    headers: dict[str, str] = {}
    if isinstance(exc, ConcurrencyError) and request.headers.get("if-match"):
        status = 412
    if status == 503:
        headers["Retry-After"] = "1"
    if status >= 500:
        _log.warning("request_failed", code=exc.code, error=exc.message, status=status)
    return problem_response(
        status,
        exc.code,
        exc.message,
        instance=request.url.path,
        headers=headers,
        extra=exc.details,
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.code,
        exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if _is_malformed_json(errors):
        return problem_response(
            400,
            "app.malformed_json",
            "the request body is not valid JSON",
            instance=request.url.path,
        )
    details = _validation_errors(errors)
    first = details[0] if details else {"location": "request", "message": "invalid"}
    return problem_response(
        422,
        "app.validation",
        f"invalid request: {first['location']}: {first['message']}",
        instance=request.url.path,
        extra={"errors": details},
    )


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = {
        404: "app.not_found",
        405: "app.method_not_allowed",
        413: "app.body_too_large",
        400: "app.bad_request",
    }.get(status, f"app.http_{status}")
    detail = exc.detail if isinstance(exc.detail, str) else _title(status)
    if status == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}"
    if status == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    return problem_response(
        status, code, detail, instance=request.url.path, headers=exc.headers or {}
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    _log.error(
        "unhandled_exception",
        path=request.url.path,
        method=request.method,
        exc_info=exc,
    )
    return problem_response(
        500,
        "app.internal",
        "an unexpected error occurred; it has been logged",
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CairnError, _on_cairn_error)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
