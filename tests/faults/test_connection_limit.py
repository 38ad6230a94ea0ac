"""The bound on concurrent connections of ``cairn serve`` (SPEC §12 "Limits",
``CAIRN_MAX_CONNECTIONS``): past it a request is answered 503 problem+json with Retry-After at
once, so a flood of connections costs the server neither tasks nor memory; below it again,
requests are served."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from e2e_server import Server

pytestmark = pytest.mark.faults
LIMIT = 8


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@contextmanager
def idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that sent half a request head and wait (each one held open)."""
    with ExitStack() as stack:
        held = []
        for _ in range(count):
            s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        yield held


def _status_line_and_body(port: int) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, module_pg_url: str) -> Iterator[Server]:
    srv = Server(
        module_pg_url,
        tmp_path_factory.mktemp("limit"),
        args=("--no-workers",),
        CAIRN_MAX_CONNECTIONS=str(LIMIT),
    )
    try:
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()


def test_a_request_past_the_connection_limit_is_a_503_problem_with_retry_after(
    server: Server,
) -> None:
    with idle_connections(server.port, LIMIT):
        r = httpx.get(f"{server.url}/healthz", timeout=10)
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "1"
    assert r.json()["code"] == "app.over_capacity"


def test_below_the_limit_again_requests_are_served(server: Server) -> None:
    with idle_connections(server.port, LIMIT):
        pass
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_a_flood_of_connections_is_refused_without_growing_the_server(server: Server) -> None:
    before = _rss_kib(server.proc.pid)
    with idle_connections(server.port, LIMIT):
        answers = [_status_line_and_body(server.port)[0].split(b"\r\n")[0] for _ in range(300)]
    grown_mib = (_rss_kib(server.proc.pid) - before) / 1024
    assert set(answers) == {b"HTTP/1.1 503 Service Unavailable"}
    assert grown_mib < 20, f"the server grew by {grown_mib:.1f} MiB"
