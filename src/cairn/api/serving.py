"""The HTTP server's own bounds (SPEC §12 "Limits"), before the app sees a request: the size of
a request's head, and the number of connections and requests handled at once.

httptools (uvicorn's parser when installed) buffers a header line however long it is, so a
client could grow the server's memory without bound before any ASGI code runs. The protocol
here counts the bytes of each request's head as they arrive and, past ``CAIRN_MAX_HEADER_BYTES``,
answers ``431 Request Header Fields Too Large`` (problem+json) and closes the connection: the
head held is at most the limit plus one read. The h11 parser is bounded by uvicorn's
``h11_max_incomplete_event_size`` (set to the same limit by ``cairn serve``). The count and size
of the parsed headers are checked again by the request middleware, for every server.

Concurrency: ``cairn serve`` passes ``CAIRN_MAX_CONNECTIONS`` to uvicorn as ``limit_concurrency``
(and ``CAIRN_BACKLOG`` as the listen backlog). Past it uvicorn answers a request with its own
plain-text 503; the protocol here answers the same refusal as the problem document every other
503 is, with ``Retry-After`` (``app.over_capacity``), and closes the connection. A request
refused so costs no task beyond the answer and no memory beyond its head.

Ports: :func:`listening_socket` binds one for a listener of the process (the worker's
``/metrics``; a probe of ``CAIRN_GRPC_PORT`` before ``cairn serve`` starts), so a port in use
is one ``app.port_unavailable`` line for the CLI, not an error inside a server's start-up.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cairn.errors import ApplicationError

#: The problem code of a 431.
HEADERS_TOO_LARGE = "app.headers_too_large"
#: The problem code of a request refused because the server is at its concurrency limit.
OVER_CAPACITY = "app.over_capacity"
_OVER_CAPACITY_BODY = json.dumps(
    {
        "type": f"https://cairn.dev/problems/{OVER_CAPACITY}",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "the server is handling as many connections as it is allowed to; retry later",
        "code": OVER_CAPACITY,
    },
    separators=(",", ":"),
).encode()


async def over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    """What a request past ``limit_concurrency`` gets instead of uvicorn's plain-text 503."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(_OVER_CAPACITY_BODY)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _OVER_CAPACITY_BODY, "more_body": False})


def headers_too_large_body(max_bytes: int, max_count: int) -> bytes:
    return json.dumps(
        {
            "type": f"https://cairn.dev/problems/{HEADERS_TOO_LARGE}",
            "title": "Request Header Fields Too Large",
            "status": 431,
            "detail": (
                f"the request's headers exceed the limit of {max_bytes} bytes or {max_count} fields"
            ),
            "code": HEADERS_TOO_LARGE,
            "limit_bytes": max_bytes,
            "limit_count": max_count,
        },
        separators=(",", ":"),
    ).encode()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a bound on the bytes of a request head (see the module)."""

    max_header_bytes = 16_384
    max_headers = 100

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._in_head = True
        self._head_bytes = 0
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still inside a head after this chunk was parsed, and past the limit: refuse.
        if self._in_head and self._head_bytes > self.max_header_bytes + 4:
            self._refuse()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # uvicorn chose its own 503 for a request past limit_concurrency: answer ours instead.
        chosen: Any = over_capacity if app is service_unavailable else app
        super()._start_asgi_task(cycle, chosen)

    def _refuse(self) -> None:
        if self.transport.is_closing():
            return
        body = headers_too_large_body(self.max_header_bytes, self.max_headers)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()


def bounded_protocol(max_header_bytes: int, max_headers: int) -> type[Any]:
    """A :class:`BoundedHttpToolsProtocol` with these limits, for ``uvicorn.Config(http=)``."""
    return type(
        "CairnHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_header_bytes": max_header_bytes, "max_headers": max_headers},
    )


def listening_socket(host: str, port: int, purpose: str) -> socket.socket:
    """A socket listening on ``host:port``, or ``app.port_unavailable`` naming ``purpose``
    (``"/metrics (CAIRN_WORKER_METRICS_PORT)"``) when the port is taken."""
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        raise ApplicationError(
            "app.port_unavailable",
            f"cannot listen on {host}:{port} for {purpose}: {exc.strerror or exc}",
        ) from exc
