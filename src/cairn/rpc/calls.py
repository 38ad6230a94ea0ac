"""What every cairn gRPC handler does around its own work, as two decorators (``unary`` and
``server_stream``): the call's correlation id (``x-correlation-id`` metadata, else a new one) in
the logs and the command metadata, like the HTTP middleware's; a server span for a unary call,
continuing the caller's W3C ``traceparent`` metadata; errors ended as gRPC statuses
(:mod:`cairn.rpc.errors`); and the call counted in the process's Prometheus metrics
(``cairn_grpc_requests_total{method, code}``, ``cairn_grpc_request_duration_seconds``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps
from typing import TYPE_CHECKING, Protocol, TypeVar

import grpc
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from cairn.api.runtime import Runtime
from cairn.observability.logging import bind_correlation_id, reset_correlation_id
from cairn.observability.tracing import traceparent_from_headers, tracer
from cairn.rpc.auth import metadata_value
from cairn.rpc.errors import abort_with, describe

if TYPE_CHECKING:
    from cairn.rpc.errors import Context


class _Servicer(Protocol):
    runtime: Runtime


S = TypeVar("S", bound=_Servicer)
Req = TypeVar("Req")
Res = TypeVar("Res")
_MAX_CORRELATION_ID = 200
_OK = grpc.StatusCode.OK.name
_CANCELLED = grpc.StatusCode.CANCELLED.name
_UNKNOWN = grpc.StatusCode.UNKNOWN.name


def _correlation_id(context: Context) -> str:
    given = metadata_value(context, "x-correlation-id")
    if given and len(given) <= _MAX_CORRELATION_ID and given.isprintable():
        return given
    return str(uuid.uuid4())


def _parent(context: Context) -> otel_context.Context:
    headers = {
        name: value
        for name in ("traceparent", "tracestate")
        if (value := metadata_value(context, name)) is not None
    }
    return traceparent_from_headers(headers)


def unary(
    name: str,
) -> Callable[
    [Callable[[S, Req, Context], Awaitable[Res]]], Callable[[S, Req, Context], Awaitable[Res]]
]:
    """A unary handler of the method ``name`` (``cairn.v1.Orders/CreateOrder``)."""

    def decorate(
        handler: Callable[[S, Req, Context], Awaitable[Res]],
    ) -> Callable[[S, Req, Context], Awaitable[Res]]:
        @wraps(handler)
        async def wrapper(self: S, request: Req, context: Context) -> Res:
            token = bind_correlation_id(_correlation_id(context))
            started = time.perf_counter()
            code = _CANCELLED
            try:
                with tracer().start_as_current_span(
                    name,
                    context=_parent(context),
                    kind=SpanKind.SERVER,
                    attributes={"rpc.system": "grpc", "rpc.method": name},
                ):
                    response = await handler(self, request, context)
                code = _OK
                return response
            except grpc.aio.AbortError:
                code = _UNKNOWN
                raise
            except Exception as exc:  # cairn's errors by their table; others INTERNAL, logged
                code = describe(exc)[0].name
                await abort_with(context, exc)
            finally:
                self.runtime.metrics.observe_grpc(name, code, time.perf_counter() - started)
                reset_correlation_id(token)

        return wrapper

    return decorate


def server_stream(
    name: str,
) -> Callable[
    [Callable[[S, Req, Context], AsyncIterator[Res]]],
    Callable[[S, Req, Context], AsyncIterator[Res]],
]:
    """A server-streaming handler of the method ``name``: an error ends the stream with its
    status; a stream the client leaves counts as ``CANCELLED``."""

    def decorate(
        handler: Callable[[S, Req, Context], AsyncIterator[Res]],
    ) -> Callable[[S, Req, Context], AsyncIterator[Res]]:
        @wraps(handler)
        async def wrapper(self: S, request: Req, context: Context) -> AsyncIterator[Res]:
            # Not reset afterwards: a generator closed by the garbage collector would reset it
            # in another context (an error); each call runs in a task of its own, whose context
            # ends with it.
            bind_correlation_id(_correlation_id(context))
            code = _CANCELLED
            try:
                async for message in handler(self, request, context):
                    yield message
                code = _OK
            except grpc.aio.AbortError:
                code = _UNKNOWN
                raise
            except Exception as exc:
                code = describe(exc)[0].name
                await abort_with(context, exc)
            finally:
                self.runtime.metrics.observe_grpc(name, code, None)

        return wrapper

    return decorate


__all__ = ["server_stream", "unary"]
