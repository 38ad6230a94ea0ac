"""The HTTP server's own bounds on a request's head (SPEC §12 "Limits"), before the app sees it.

httptools (uvicorn's parser when installed) buffers a header line however long it is, so a
client could grow the server's memory without bound before any ASGI code runs. The protocol
here counts the bytes of each request's head as they arrive and, past ``CAIRN_MAX_HEADER_BYTES``,
answers ``431 Request Header Fields Too Large`` (problem+json) and closes the connection: the
head held is at most the limit plus one read. The h11 parser is bounded by uvicorn's
``h11_max_incomplete_event_size`` (set to the same limit by ``cairn serve``). The count and size
of the parsed headers are checked again by the request middleware, for every server.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The problem code of a 431.
HEADERS_TOO_LARGE = "app.headers_too_large"


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
