"""cairn's errors as gRPC statuses: the one place where an error meets a gRPC status code.

    ConcurrencyError (wrong expected_version)        → ABORTED
    NotFoundError, DomainError ``*.not_found``        → NOT_FOUND (an order, a SKU)
    DomainError (a business rule refused)             → FAILED_PRECONDITION
    pydantic ValidationError (bad input)              → INVALID_ARGUMENT ``app.validation``
    any other CairnError                              → by its HTTP status (``problems.status_of``,
                                                        so REST and gRPC cannot disagree):
        400, 422 → INVALID_ARGUMENT     401 → UNAUTHENTICATED     403 → PERMISSION_DENIED
        404, 410 → NOT_FOUND            409 → FAILED_PRECONDITION 412 → ABORTED
        413, 429 → RESOURCE_EXHAUSTED   502, 503 → UNAVAILABLE (database down, read model
                                        behind)                   other 5xx → INTERNAL
    anything else                                     → INTERNAL ``app.internal``, logged

Every refusal carries the stable cairn code twice: in the trailing metadata ``cairn-code`` (for
programs) and at the end of the details (``order order-1 does not exist [order.not_found]``,
like the CLI's one-line errors), so that a person reading a client's error sees it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeAlias

import grpc
from pydantic import ValidationError

from cairn.api.problems import status_of
from cairn.errors import CairnError, ConcurrencyError, DomainError, NotFoundError
from cairn.observability.logging import get_logger

if TYPE_CHECKING:
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

_log = get_logger("cairn.rpc")

#: Trailing metadata key of the stable cairn error code.
CODE_KEY: Final = "cairn-code"

_BY_HTTP_STATUS: Final[dict[int, grpc.StatusCode]] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    410: grpc.StatusCode.NOT_FOUND,
    412: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
}


def status_code_of(exc: CairnError) -> grpc.StatusCode:
    """The gRPC status code of ``exc`` (see the module's table)."""
    if isinstance(exc, ConcurrencyError):
        return grpc.StatusCode.ABORTED
    if isinstance(exc, DomainError):
        if isinstance(exc, NotFoundError) or exc.code.endswith(".not_found"):
            return grpc.StatusCode.NOT_FOUND
        return grpc.StatusCode.FAILED_PRECONDITION
    status = status_of(exc)
    default = grpc.StatusCode.INTERNAL if status >= 500 else grpc.StatusCode.INVALID_ARGUMENT
    return _BY_HTTP_STATUS.get(status, default)


def validation_message(exc: ValidationError) -> str:
    """``invalid request: items.0.quantity: Input should be greater than 0`` (first error)."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    location = ".".join(str(part) for part in first.get("loc", ())) or "request"
    return f"invalid request: {location}: {first.get('msg', 'invalid')}"


def describe(exc: BaseException) -> tuple[grpc.StatusCode, str, str]:
    """``(status code, cairn code, message)`` for any exception a handler let out."""
    if isinstance(exc, CairnError):
        return status_code_of(exc), exc.code, exc.message
    if isinstance(exc, ValidationError):
        return grpc.StatusCode.INVALID_ARGUMENT, "app.validation", validation_message(exc)
    return grpc.StatusCode.INTERNAL, "app.internal", "an unexpected error occurred; it is logged"


async def abort_with(context: Context, exc: Exception) -> NoReturn:
    """End the call with ``exc``'s status (``context.abort`` raises)."""
    code, cairn_code, message = describe(exc)
    if code is grpc.StatusCode.INTERNAL:
        _log.error("rpc_failed", code=cairn_code, exc_info=exc)
    elif code is grpc.StatusCode.UNAVAILABLE:
        _log.warning("rpc_unavailable", code=cairn_code, error=message)
    await context.abort(
        code, f"{message} [{cairn_code}]", trailing_metadata=((CODE_KEY, cairn_code),)
    )
