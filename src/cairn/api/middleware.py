"""One pure-ASGI middleware for every HTTP request: correlation id, body limit, log, metrics,
trace span. Pure ASGI (not ``BaseHTTPMiddleware``) because it sits on the hot path of every
command.

- ``X-Correlation-ID`` (or ``X-Request-ID``) is taken from the request or minted, bound for the
  logs and the command side, and echoed on the response.
- A body larger than ``max_body_bytes`` gets 413 before the route runs, whether the client
  declared its length or streamed it.
- A control character in the path, query string, a header or a JSON body string gets 400
  ``request.control_character`` before the route runs (:mod:`cairn.api.control_chars`).
- A request that has not started its answer within ``request_timeout`` seconds
  (``CAIRN_REQUEST_TIMEOUT``) is cancelled and answered 503 ``app.request_timeout`` with
  ``Retry-After``: a database that hangs (a pool waiting for connections that never come, a
  statement stuck on a lock) never holds a client past it. A command cancelled that way may
  have committed; its ``Idempotency-Key`` retry gets the first outcome (``commands.py``).
- A driver error that no layer translated answers 503 ``store.unavailable`` when it means the
  database could not answer, 500 ``app.internal`` otherwise (:func:`unexpected_error`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.api import control_chars
from cairn.api.problems import problem_response, unavailable, unexpected_error
from cairn.api.serving import HEADERS_TOO_LARGE
from cairn.observability.logging import (
    bind_correlation_id,
    get_logger,
    logs_at,
    reset_correlation_id,
)
from cairn.observability.metrics import Metrics
from cairn.observability.tracing import traceparent_from_headers, tracer

_log = get_logger("cairn.http")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_CORRELATION_ID = 128


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
                return None
    return None


def _clean_correlation_id(value: str | None) -> str:
    if value and len(value) <= _MAX_CORRELATION_ID and value.isprintable():
        return value
    return str(uuid.uuid4())


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        max_header_bytes: int = 16_384,
        max_headers: int = 100,
        request_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.request_timeout = request_timeout
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = str(scope.get("method", "GET"))
        path = str(scope.get("path", ""))
        correlation_id = _clean_correlation_id(
            _header(scope, b"x-correlation-id") or _header(scope, b"x-request-id")
        )
        token = bind_correlation_id(correlation_id)
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-correlation-id", correlation_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        trace_headers = {
            name: value
            for name in ("traceparent", "tracestate")
            if (value := _header(scope, name.encode())) is not None
        }
        parent = traceparent_from_headers(trace_headers)
        ctx_token = otel_context.attach(parent)
        template = "unmatched"
        try:
            # Named by the route template once routing found it (``POST /api/v1/orders/{order_id}
            # /place``), never by the path: span names stay few (OpenTelemetry HTTP conventions).
            with tracer().start_as_current_span(
                method, kind=SpanKind.SERVER, attributes={"http.request.method": method}
            ) as span:
                too_big = (
                    self._headers_too_large(scope)
                    or _control_in_url(scope)
                    or await self._too_big(scope, receive)
                )
                if too_big is not None:
                    await too_big(scope, receive, send_wrapper)
                elif method in _BODY_METHODS:
                    body, overflow = await self._read_body(receive)
                    where = None if overflow else control_chars.in_body(body)
                    if overflow:
                        await self._reject_413()(scope, receive, send_wrapper)
                    elif where is not None:
                        await _control_refused(where)(scope, receive, send_wrapper)
                    else:
                        await self._call(scope, _replay(body, receive), send_wrapper)
                else:
                    await self._call(scope, receive, send_wrapper)
                template = _route_template(scope)
                if span.is_recording():
                    _describe_server_span(span, method, path, template, status_holder[0])
        finally:
            otel_context.detach(ctx_token)
            elapsed = time.perf_counter() - started
            if template == "unmatched":  # the app raised: routing may still have matched
                template = _route_template(scope)
            self.metrics.observe_http(method, template, status_holder[0], elapsed)
            if logs_at(logging.INFO):
                _log.info(
                    "http_request",
                    method=method,
                    path=path,
                    route=template,
                    status=status_holder[0],
                    duration_ms=round(elapsed * 1000, 2),
                )
            reset_correlation_id(token)

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, bounded by the request timeout until its answer starts; an error it did not
        answer becomes a problem here, inside the request's correlation id (Starlette's
        outermost error middleware would answer after it is gone: no ``correlation_id`` in the
        body, no ``X-Correlation-ID`` header)."""
        started = False
        deadline = asyncio.timeout(self.request_timeout)

        async def tracking(message: Message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
                deadline.reschedule(None)  # a body being sent is not cut off
            await send(message)

        path = str(scope.get("path", ""))
        try:
            async with deadline:
                await self.app(scope, receive, tracking)
        except Exception as exc:
            if started:
                raise
            if isinstance(exc, TimeoutError) and deadline.expired():
                _log.warning("request_timeout", path=path, timeout=self.request_timeout)
                response = unavailable(
                    path,
                    f"the request did not complete within {self.request_timeout:g} s",
                    code="app.request_timeout",
                )
            else:
                response = unexpected_error(str(scope.get("method", "GET")), path, exc)
            await response(scope, receive, send)

    def _reject_413(self) -> Any:
        return problem_response(
            413,
            "app.body_too_large",
            f"the request body exceeds the limit of {self.max_body_bytes} bytes",
            extra={"limit": self.max_body_bytes},
        )

    def _headers_too_large(self, scope: Scope) -> Any:
        """431 when the parsed headers are too many or too large (before auth and the body)."""
        headers = scope.get("headers", ())
        size = sum(len(k) + len(v) + 4 for k, v in headers)
        if len(headers) <= self.max_headers and size <= self.max_header_bytes:
            return None
        return problem_response(
            431,
            HEADERS_TOO_LARGE,
            f"the request's headers exceed the limit of {self.max_header_bytes} bytes"
            f" or {self.max_headers} fields",
            extra={"limit_bytes": self.max_header_bytes, "limit_count": self.max_headers},
        )

    async def _too_big(self, scope: Scope, receive: Receive) -> Any:
        declared = _header(scope, b"content-length")
        if declared is None:
            return None
        try:
            length = int(declared)
        except ValueError:
            return problem_response(400, "app.bad_request", "Content-Length is not a number")
        if length > self.max_body_bytes:
            return self._reject_413()
        return None

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), False


def _control_in_url(scope: Scope) -> Any:
    raw_path = scope.get("raw_path") or str(scope.get("path", "")).encode("utf-8", "replace")
    where = "path" if control_chars.in_path(raw_path) else None
    where = where or control_chars.in_query(scope.get("query_string", b""))
    where = where or control_chars.in_headers(scope.get("headers", ()))
    return None if where is None else _control_refused(where)


def _control_refused(where: str) -> Any:
    return problem_response(
        400,
        control_chars.CODE,
        f"{where} contains a control character (NUL or another C0 control), which is refused",
        extra={"location": where},
    )


def _route_template(scope: Scope) -> str:
    return str(getattr(scope.get("route"), "path", "unmatched"))


def _describe_server_span(span: Span, method: str, path: str, template: str, status: int) -> None:
    if template != "unmatched":
        span.update_name(f"{method} {template}")
        span.set_attribute("http.route", template)
    span.set_attribute("url.path", path)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(StatusCode.ERROR)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
