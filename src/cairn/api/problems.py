"""Every error as an RFC 9457 ``application/problem+json`` response with a stable ``code``.

This is the one place where an error meets an HTTP status: errors (``cairn.errors``) say what
went wrong, :data:`STATUS` says how HTTP answers it.

    CairnError (errors.py)            → ``STATUS`` by class (nearest listed ancestor), its ``code``
    ConcurrencyError                  → 409 store.concurrency (412 when the client sent If-Match)
    ProblemError (below)              → the status it was raised with (the HTTP layer's own)
    RequestValidationError, bad JSON  → 400 app.malformed_json
    RequestValidationError, fields    → 422 app.validation (``errors``: location, message, type)
    unknown route / method            → 404 app.not_found / 405 app.method_not_allowed
    body over the configured limit    → 413 app.body_too_large (raised by the middleware)
    a database outage's driver error  → 503 store.unavailable with Retry-After (cairn.sql.outage)
    anything else                     → 500 app.internal, logged with its traceback

No input should reach the last line; if one does, the client still gets a problem document and
the log has the traceback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from cairn import errors as e
from cairn.errors import CairnError, ConcurrencyError
from cairn.json_text import compact
from cairn.observability.logging import current_correlation_id, get_logger
from cairn.sql.outage import as_unavailable, is_unavailable

PROBLEM_JSON = "application/problem+json"
#: The code of a 503 for a database that cannot answer now.
UNAVAILABLE: Final = e.StoreUnavailableError.code
#: Seconds a client is asked to wait before retrying after a 503.
RETRY_AFTER_SECONDS: Final = 1
_log = get_logger("cairn.api")

#: The HTTP status of every error class in the tree. Every class is listed, so a new error is a
#: decision here too (``tests/unit/test_errors.py`` checks it); a subclass defined elsewhere
#: takes its nearest listed ancestor's status.
STATUS: Final[Mapping[type[CairnError], int]] = {
    CairnError: 400,
    # store
    e.StoreError: 500,
    e.ConcurrencyError: 409,  # 412 when the request carried If-Match (see _on_cairn_error)
    e.StaleRowError: 409,  # another writer changed a row meanwhile: retrying may succeed
    e.InvalidEventError: 400,
    e.InvalidStreamIdError: 400,
    e.InvalidExpectedVersion: 400,
    e.StreamDeletedError: 410,
    e.RetentionRefusedError: 409,
    e.UnsupportedStoreURL: 500,
    e.StoreUnavailableError: 503,
    e.SchemaMissingError: 503,
    e.MigrationChecksumError: 500,
    e.PersonalDataError: 500,
    # codec: a stored event this build cannot read is the server's fault
    e.CodecError: 500,
    e.UnknownEventTypeError: 500,
    e.UpcastError: 500,
    # domain
    e.DomainError: 422,
    e.NotFoundError: 404,
    # application
    e.ApplicationError: 400,
    e.InvalidCommandError: 422,
    e.PermissionDeniedError: 403,
    e.ConflictError: 409,
    # external services
    e.AdapterError: 502,
    e.TransientAdapterError: 503,
    e.CircuitOpenError: 503,
    e.PermanentAdapterError: 422,
    # relay and workers: not raised by requests; if one ever is, it is the server's state
    e.RelayError: 503,
    e.UnsupportedBrokerURL: 500,
    e.PublishError: 503,
    e.LeaseLostError: 503,
}


def status_of(exc: CairnError) -> int:
    """The HTTP status for ``exc``: a :class:`ProblemError`'s own, else :data:`STATUS`."""
    if isinstance(exc, ProblemError):
        return exc.status
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500  # unreachable: CairnError is listed


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
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
            body[key] = jsonable(value)
    return Response(
        compact(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


class ProblemFieldError(BaseModel):
    """One refused field of a 422 ``app.validation`` problem (``errors``)."""

    location: str = Field(description="Where: body.items.0.quantity, query.limit, …")
    field: str | None = Field(description="The field's own name (the location's last part)")
    message: str
    type: str = Field(description="pydantic's error type, e.g. greater_than")


class Problem(BaseModel):
    """Every error response: an RFC 9457 problem document with a stable code. Other members
    may follow (a conflict's expected and actual versions, a refused order's id...); they never
    replace these."""

    model_config = ConfigDict(
        extra="allow",
        title="Problem",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://cairn.dev/problems/auth.missing_token",
                    "title": "Unauthorized",
                    "status": 401,
                    "detail": "a bearer token is required",
                    "code": "auth.missing_token",
                    "instance": "/api/v1/orders",
                    "correlation_id": "6f1c0c1e-2f5b-4a8e-9a55-1d2b3c4d5e6f",
                }
            ]
        },
    )

    type: str = Field(description="A URI naming the problem: https://cairn.dev/problems/<code>")
    title: str = Field(description="The HTTP status's phrase")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong, for a person")
    code: str = Field(description="The stable machine-readable code (docs/contract.md)")
    instance: str | None = Field(default=None, description="The request path")
    correlation_id: str | None = Field(
        default=None, description="The request's correlation id (also in the logs)"
    )
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="422 app.validation: every refused field"
    )


class ProblemError(CairnError):
    """The HTTP layer's own refusals, raised only inside ``cairn.api``: a missing token (401), a
    wrong role (403), another customer's order (404), a read model that is behind (503) …
    The one error that carries its HTTP ``status``, because it *is* an HTTP answer; ``code`` is
    chosen per raise site, as for :class:`~cairn.errors.DomainError`."""

    code = "http.problem"

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail, **extra)
        self.status = status
        self.code = code  # type: ignore[misc]  # per-instance code
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
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, ConcurrencyError) and request.headers.get("if-match"):
        status = 412
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
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
    return unexpected_error(request.method, request.url.path, exc)


def unavailable(path: str, detail: str, *, code: str = UNAVAILABLE) -> Response:
    """The 503 every outage answers: a problem document with ``Retry-After``."""
    return problem_response(
        503, code, detail, instance=path, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def unexpected_error(method: str, path: str, exc: BaseException) -> Response:
    """The answer to an error nothing else answered (also used by the request middleware, so
    that it carries the request's correlation id): 503 ``store.unavailable`` when the database
    could not answer (a driver error no layer translated, :mod:`cairn.sql.outage`), else the
    500 ``app.internal`` problem."""
    if is_unavailable(exc):
        _log.warning("request_failed", code=UNAVAILABLE, error=str(exc), status=503)
        return unavailable(path, str(as_unavailable(exc)))
    return internal_error(method, path, exc)


def internal_error(method: str, path: str, exc: BaseException) -> Response:
    """The 500 ``app.internal`` problem for ``exc``, logged with its traceback."""
    _log.error("unhandled_exception", path=path, method=method, exc_info=exc)
    return problem_response(
        500,
        "app.internal",
        "an unexpected error occurred; it has been logged",
        instance=path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CairnError, _on_cairn_error)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
